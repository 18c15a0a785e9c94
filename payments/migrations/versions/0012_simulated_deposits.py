"""Test mode: the deposits an admin simulated (OKX_MODE=simulated), so a rehearsal survives a
restart like real deposits in OKX's history do. A live shop never writes a row here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "simulated_deposits",
        sa.Column("dep_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Text(), nullable=False),
        sa.Column("to_address", sa.Text(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("tx_id", sa.String(length=100), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dep_id", name=op.f("pk_simulated_deposits")),
    )
    op.create_index(op.f("ix_simulated_deposits_ts"), "simulated_deposits", ["ts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_simulated_deposits_ts"), table_name="simulated_deposits")
    op.drop_table("simulated_deposits")
