"""flagged items keep the policy's decision as it was made (band, actions, reasons, policy version)

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
    with op.batch_alter_table("flagged_items") as batch:
        batch.add_column(sa.Column("decision", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flagged_items") as batch:
        batch.drop_column("decision")
