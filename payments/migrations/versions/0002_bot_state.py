"""State the Telegram layer keeps in the database: invoice photo messages, claim waits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_messages",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_messages_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("chat_id", "message_id", name=op.f("pk_invoice_messages")),
    )
    op.create_index(
        op.f("ix_invoice_messages_invoice_id"), "invoice_messages", ["invoice_id"], unique=False
    )
    op.create_table(
        "claim_waits",
        sa.Column("customer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_claim_waits")),
    )


def downgrade() -> None:
    op.drop_table("claim_waits")
    op.drop_index(op.f("ix_invoice_messages_invoice_id"), table_name="invoice_messages")
    op.drop_table("invoice_messages")
