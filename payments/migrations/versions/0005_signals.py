"""Signals between replicas: a standby's "check now" reaches the lease holder.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("raised", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_signals")),
    )


def downgrade() -> None:
    op.drop_table("signals")
