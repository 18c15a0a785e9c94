"""The money path against an adversary: the candidates an ambiguous deposit had when it was
decided (a claim attaches it by itself only to one of them), when OKX stopped returning a
deposit record, and customers an admin blocked.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deposits", sa.Column("vanished_at", sa.BigInteger(), nullable=True))
    op.add_column("customers", sa.Column("blocked_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "deposit_candidates",
        sa.Column("dep_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["dep_id"],
            ["deposits.dep_id"],
            name=op.f("fk_deposit_candidates_dep_id_deposits"),
        ),
        sa.PrimaryKeyConstraint("dep_id", "invoice_id", name=op.f("pk_deposit_candidates")),
    )


def downgrade() -> None:
    op.drop_table("deposit_candidates")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("blocked_at")
    with op.batch_alter_table("deposits") as batch:
        batch.drop_column("vanished_at")
