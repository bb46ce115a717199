"""review outcome of the band decision on flagged items: needs_review, under_rating_risk

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flagged_items") as batch:
        batch.add_column(sa.Column("needs_review", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("under_rating_risk", sa.Float, nullable=True))
        batch.create_index("ix_flagged_items_needs_review", ["needs_review"])


def downgrade() -> None:
    with op.batch_alter_table("flagged_items") as batch:
        batch.drop_index("ix_flagged_items_needs_review")
        batch.drop_column("under_rating_risk")
        batch.drop_column("needs_review")
