"""Outbox order per recipient: a message waits while an earlier one to the same recipient is
still pending, a lookup by (audience, status, customer_id). And the admins an alert already
reached (``sent_to``), so whoever sends it next completes it rather than repeating it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("sent_to", sa.Text(), nullable=True))
    op.create_index(
        op.f("ix_outbox_audience_status_customer_id"),
        "outbox",
        ["audience", "status", "customer_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_audience_status_customer_id"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sent_to")
