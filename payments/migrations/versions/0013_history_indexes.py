"""Indexes that keep a poll and /pending from reading the whole history: the invoices still
watched on an address (``address, monitor_until``), the frozen invoices, and the duplicate or
after-close deposits (``match_kind, disposition``). At a million settled invoices the poll's
inexact candidates and /pending read every invoice without them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_invoices_address_monitor_until"), "invoices", ["address", "monitor_until"]
    )
    op.create_index(op.f("ix_invoices_frozen"), "invoices", ["frozen"])
    op.create_index(
        op.f("ix_deposits_match_kind_disposition"), "deposits", ["match_kind", "disposition"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deposits_match_kind_disposition"), table_name="deposits")
    op.drop_index(op.f("ix_invoices_frozen"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_address_monitor_until"), table_name="invoices")
