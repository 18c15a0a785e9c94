"""Admin views that cost the same with a year of history: the paid invoices of a window are an
index range, and so are one webhook URL's deliveries of one status, newest first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_invoices_status_paid_at"), "invoices", ["status", "paid_at"], unique=False
    )
    op.create_index(
        op.f("ix_webhook_deliveries_url_status_id"),
        "webhook_deliveries",
        ["url", "status", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_url_status_id"), table_name="webhook_deliveries")
    op.drop_index(op.f("ix_invoices_status_paid_at"), table_name="invoices")
