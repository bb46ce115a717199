"""audit chain: one head row advanced by every append; an HMAC per entry; session epochs of console users

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("mac", sa.String(64), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"))
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    conn = op.get_bind()
    last = conn.execute(sa.text("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")).first()
    count = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    op.bulk_insert(head, [{"id": 1, "hash": last[0] if last else GENESIS, "seq": int(count)}])


def downgrade() -> None:
    op.drop_table("audit_head")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("mac")
