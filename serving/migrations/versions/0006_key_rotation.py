"""api keys: a partner's name is unique among active keys only, so a key can be rotated or re-issued

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

ACTIVE = sa.text("revoked_at IS NULL")


def _api_keys(name_unique: bool) -> sa.Table:
    return sa.Table(
        "api_keys",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=name_unique),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("api_keys_name_key", "api_keys", type_="unique")
    else:  # SQLite cannot drop a constraint: the table is copied without it
        with op.batch_alter_table("api_keys", copy_from=_api_keys(name_unique=False), recreate="always"):
            pass
    op.create_index("ix_api_keys_name", "api_keys", ["name"])
    op.create_index(
        "uq_api_keys_active_name", "api_keys", ["name"], unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE
    )


def downgrade() -> None:
    op.drop_index("uq_api_keys_active_name", "api_keys")
    op.drop_index("ix_api_keys_name", "api_keys")
    if op.get_bind().dialect.name == "postgresql":
        op.create_unique_constraint("api_keys_name_key", "api_keys", ["name"])
    else:
        with op.batch_alter_table("api_keys", copy_from=_api_keys(name_unique=True), recreate="always"):
            pass
