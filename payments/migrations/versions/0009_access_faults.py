"""Chat access under faults: a removal under way is stored (its unban is owed until done), and
so is the expulsion of someone who joined through another customer's link.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("memberships", sa.Column("removal_ended_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "access_expulsions",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("link", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("chat_id", "user_id", name=op.f("pk_access_expulsions")),
    )


def downgrade() -> None:
    op.drop_table("access_expulsions")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("removal_ended_at")
