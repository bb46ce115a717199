"""hash lists of known abuse material (lists, their entries) and the matches found with them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hash_lists",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.UniqueConstraint("name", name="uq_hash_lists_name"),
    )
    op.create_table(
        "hash_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("list_id", sa.Integer, sa.ForeignKey("hash_lists.id"), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
    )
    op.create_index("ix_hash_entries_list_id", "hash_entries", ["list_id"])
    op.create_index("ix_hash_entries_type_value", "hash_entries", ["type", "value"])
    op.create_table(
        "hash_matches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_key", sa.String(100), nullable=False),
        sa.Column("image", sa.SmallInteger, nullable=False),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("list_version", sa.String(100), nullable=False),
        sa.Column("hash_type", sa.String(10), nullable=False),
        sa.Column("distance", sa.SmallInteger, nullable=False),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("pdq_quality", sa.SmallInteger, nullable=True),
        sa.Column("partner", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("item_key", "image", name="uq_hash_matches_item_image"),
    )
    op.create_index("ix_hash_matches_created_at", "hash_matches", ["created_at"])
    op.create_index("ix_hash_matches_partner_created_at", "hash_matches", ["partner", "created_at"])


def downgrade() -> None:
    op.drop_table("hash_matches")
    op.drop_table("hash_entries")
    op.drop_table("hash_lists")
