"""The Telegram Stars rail: orders for Stars (``star_invoices``) and every charge Telegram made
for them (``star_payments``, keyed by Telegram's charge id: a payment is recorded once).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "star_invoices",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("link", sa.String(300), nullable=True),
        sa.Column("first_charge_id", sa.String(200), nullable=True),
        sa.Column("renewal_off", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_star_invoices_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_star_invoices")),
    )
    op.create_index(
        op.f("ix_star_invoices_customer_id_status"), "star_invoices", ["customer_id", "status"]
    )
    op.create_table(
        "star_payments",
        sa.Column("charge_id", sa.String(200), nullable=False),
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("invoice_id", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("renewal", sa.Boolean(), nullable=False),
        sa.Column("subscription_ends_at", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("refunded_at", sa.BigInteger(), nullable=True),
        sa.Column("refund_source", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["star_invoices.id"],
            name=op.f("fk_star_payments_invoice_id_star_invoices"),
        ),
        sa.PrimaryKeyConstraint("charge_id", name=op.f("pk_star_payments")),
        sa.UniqueConstraint("id", name=op.f("uq_star_payments_id")),
    )
    op.create_index(op.f("ix_star_payments_invoice_id"), "star_payments", ["invoice_id"])
    op.create_index(
        op.f("ix_star_payments_customer_id_paid_at"), "star_payments", ["customer_id", "paid_at"]
    )
    op.create_index(op.f("ix_star_payments_paid_at"), "star_payments", ["paid_at"])


def downgrade() -> None:
    op.drop_table("star_payments")
    op.drop_table("star_invoices")
