"""Outbox order per recipient: a message waits while an earlier one to the same recipient is
still pending, a lookup by (audience, status, customer_id). And the admins an alert already
reached (``sent_to``), so whoever sends it next completes it rather than repeating it. And the
lease token each claim of a message or a webhook delivery was taken under (``claim_fence``), so
the next lease holder takes over a dead or paused holder's claims at once.

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
    for table in ("outbox", "webhook_deliveries"):
        op.add_column(
            table,
            sa.Column("claim_fence", sa.BigInteger(), nullable=False, server_default="0"),
        )
    op.create_index(
        op.f("ix_outbox_audience_status_customer_id"),
        "outbox",
        ["audience", "status", "customer_id"],
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("claim_fence")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claim_fence")
    op.drop_index(op.f("ix_outbox_audience_status_customer_id"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sent_to")
