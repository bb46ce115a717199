"""initial schema: api keys, usage, flagged items, verdicts

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "usage",
        sa.Column("key_id", sa.Integer, primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
    )
    op.create_table(
        "flagged_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_key", sa.String(100), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(100), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("domain", sa.String(255), nullable=True),
        sa.Column("band", sa.String(4), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("item_key", name="uq_flagged_items_item_key"),
    )
    op.create_index("ix_flagged_items_content_hash", "flagged_items", ["content_hash"])
    op.create_index("ix_flagged_items_domain", "flagged_items", ["domain"])
    op.create_index("ix_flagged_items_band", "flagged_items", ["band"])
    op.create_index("ix_flagged_items_created_at", "flagged_items", ["created_at"])
    op.create_table(
        "verdicts",
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("band", sa.String(4), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("policy_version", sa.String(100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_verdicts_domain", "verdicts", ["domain"])


def downgrade() -> None:
    op.drop_table("verdicts")
    op.drop_table("flagged_items")
    op.drop_table("usage")
    op.drop_table("api_keys")
