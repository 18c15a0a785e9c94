"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_status",
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("can_deposit", sa.Boolean(), nullable=False),
        sa.Column("min_deposit", sa.String(length=40), nullable=False),
        sa.Column("need_tag", sa.Boolean(), nullable=False),
        sa.Column("withdraw_fee", sa.String(length=40), nullable=True),
        sa.Column("withdraw_tick", sa.String(length=40), nullable=True),
        sa.Column("refreshed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", "chain", name=op.f("pk_chain_status")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "kv",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv")),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until", sa.BigInteger(), nullable=False),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index(
        op.f("ix_outbox_status_next_attempt_at"),
        "outbox",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "pool_addresses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("holder_invoice_id", sa.String(length=16), nullable=True),
        sa.Column("held_until", sa.BigInteger(), nullable=False),
        sa.Column("assigned_at", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_addresses")),
        sa.UniqueConstraint(
            "currency",
            "chain",
            "address",
            "tag",
            name=op.f("uq_pool_addresses_currency_chain_address_tag"),
        ),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("price_usd", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=True),
        sa.Column("rate", sa.String(length=40), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("base_units", sa.BigInteger(), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("topup_units", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exceptions", sa.String(length=160), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("monitor_until", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    op.create_index(
        op.f("ix_invoices_address_status"), "invoices", ["address", "status"], unique=False
    )
    op.create_index(
        op.f("ix_invoices_currency_status_base_units"),
        "invoices",
        ["currency", "status", "base_units"],
        unique=False,
    )
    op.create_index(
        op.f("ix_invoices_customer_id_status"), "invoices", ["customer_id", "status"], unique=False
    )
    op.create_index(
        op.f("ix_invoices_status_expires_at"), "invoices", ["status", "expires_at"], unique=False
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reminded_3d_for", sa.BigInteger(), nullable=True),
        sa.Column("reminded_1d_for", sa.BigInteger(), nullable=True),
        sa.Column("expired_for", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "customer_id", "plan_id", name=op.f("uq_subscriptions_customer_id_plan_id")
        ),
    )
    op.create_index(
        op.f("ix_subscriptions_status_ends_at"),
        "subscriptions",
        ["status", "ends_at"],
        unique=False,
    )
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("dep_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_claims_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
    )
    op.create_index(op.f("ix_claims_dep_id"), "claims", ["dep_id"], unique=False)
    op.create_index(op.f("ix_claims_invoice_id"), "claims", ["invoice_id"], unique=False)
    op.create_table(
        "deposits",
        sa.Column("dep_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.String(length=64), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=True),
        sa.Column("to_address", sa.String(length=200), nullable=False),
        sa.Column("tx_id", sa.String(length=200), nullable=False),
        sa.Column("from_wd_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=4), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("needs_decision", sa.Boolean(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=True),
        sa.Column("match_kind", sa.String(length=16), nullable=True),
        sa.Column("matched_amount", sa.String(length=64), nullable=True),
        sa.Column("matched_state", sa.String(length=8), nullable=True),
        sa.Column("candidate_invoice_id", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_deposits_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("dep_id", name=op.f("pk_deposits")),
    )
    op.create_index(
        op.f("ix_deposits_currency_amount_units"),
        "deposits",
        ["currency", "amount_units"],
        unique=False,
    )
    op.create_index(
        op.f("ix_deposits_disposition_ts"), "deposits", ["disposition", "ts"], unique=False
    )
    op.create_index(op.f("ix_deposits_from_wd_id"), "deposits", ["from_wd_id"], unique=False)
    op.create_index(op.f("ix_deposits_invoice_id"), "deposits", ["invoice_id"], unique=False)
    op.create_index(
        op.f("ix_deposits_needs_decision"), "deposits", ["needs_decision"], unique=False
    )
    op.create_index(op.f("ix_deposits_tx_id"), "deposits", ["tx_id"], unique=False)
    op.create_table(
        "reservations",
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("taken_at", sa.BigInteger(), nullable=False),
        sa.Column("held_until", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_reservations_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("currency", "amount_units", name=op.f("pk_reservations")),
    )
    op.create_index(
        op.f("ix_reservations_invoice_id"), "reservations", ["invoice_id"], unique=False
    )
    op.create_table(
        "subscription_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("credited_at", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_periods_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_periods")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_subscription_periods_invoice_id")),
    )
    op.create_index(
        op.f("ix_subscription_periods_subscription_id"),
        "subscription_periods",
        ["subscription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_subscription_periods_subscription_id"), table_name="subscription_periods"
    )
    op.drop_table("subscription_periods")
    op.drop_index(op.f("ix_reservations_invoice_id"), table_name="reservations")
    op.drop_table("reservations")
    op.drop_index(op.f("ix_deposits_tx_id"), table_name="deposits")
    op.drop_index(op.f("ix_deposits_needs_decision"), table_name="deposits")
    op.drop_index(op.f("ix_deposits_invoice_id"), table_name="deposits")
    op.drop_index(op.f("ix_deposits_from_wd_id"), table_name="deposits")
    op.drop_index(op.f("ix_deposits_disposition_ts"), table_name="deposits")
    op.drop_index(op.f("ix_deposits_currency_amount_units"), table_name="deposits")
    op.drop_table("deposits")
    op.drop_index(op.f("ix_claims_invoice_id"), table_name="claims")
    op.drop_index(op.f("ix_claims_dep_id"), table_name="claims")
    op.drop_table("claims")
    op.drop_index(op.f("ix_subscriptions_status_ends_at"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_invoices_status_expires_at"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_customer_id_status"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_currency_status_base_units"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_address_status"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("pool_addresses")
    op.drop_index(op.f("ix_outbox_status_next_attempt_at"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("leases")
    op.drop_table("kv")
    op.drop_table("customers")
    op.drop_table("chain_status")
