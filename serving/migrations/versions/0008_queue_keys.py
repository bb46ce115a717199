"""review queue keys on flagged items: queue_rank, confidence, category_flags, and the queue's indexes

The console queue sorts, filters, counts and pages in SQL on keys computed once from an item's model band
and categories (serving/queue_keys.py). Existing rows are filled in here, in batches by id; the
computation is copied below so that this migration does what it did when it was written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

QUEUE_OPEN_SQL = "status IN ('open', 'awaiting_second')"
# the queue's order first; then columns that filters test inside the index, without reading the row
QUEUE_INDEX = ["queue_rank", "confidence", "created_at", "id", "band", "partner", "needs_review"]
# counts per band and category under any of the queue's filters, from the index alone (index-only scans)
QUEUE_COUNTS_INDEX = ["status", "band", "category_flags", "partner", "needs_review", "confidence", "created_at", "id"]
BATCH = 2000


def _number(value: Any, key: str) -> float:
    if not isinstance(value, dict):
        return 0.0
    try:
        return float(value.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def _keys(band: str, categories: str | None) -> dict[str, Any]:
    try:
        cats = json.loads(categories or "{}")
    except ValueError:
        cats = {}
    if not isinstance(cats, dict):
        cats = {}
    flagged = {c: v for c, v in cats.items() if _number(v, "severity") > 0}
    scores = [_number(v, "score") for v in (flagged or cats).values()]
    names = sorted(str(c) for c in flagged if "," not in str(c))
    return {
        "queue_rank": 2 * (band != "C") + (_number(cats.get("child_sexual"), "severity") <= 0),
        "confidence": max(scores, default=0.0),
        "category_flags": f",{','.join(names)}," if names else "",
    }


def upgrade() -> None:
    with op.batch_alter_table("flagged_items") as batch:
        batch.add_column(sa.Column("queue_rank", sa.SmallInteger, nullable=False, server_default="3"))
        batch.add_column(sa.Column("confidence", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("category_flags", sa.String(400), nullable=False, server_default=""))

    items = sa.table(
        "flagged_items",
        sa.column("id", sa.Integer),
        sa.column("band", sa.String),
        sa.column("categories", sa.Text),
        sa.column("queue_rank", sa.SmallInteger),
        sa.column("confidence", sa.Float),
        sa.column("category_flags", sa.String),
    )
    conn = op.get_bind()
    change = (
        sa.update(items)
        .where(items.c.id == sa.bindparam("b_id"))
        .values(
            queue_rank=sa.bindparam("b_rank"),
            confidence=sa.bindparam("b_confidence"),
            category_flags=sa.bindparam("b_flags"),
        )
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(items.c.id, items.c.band, items.c.categories)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        params = []
        for item_id, band, categories in rows:
            k = _keys(band, categories)
            params.append(
                {
                    "b_id": item_id,
                    "b_rank": k["queue_rank"],
                    "b_confidence": k["confidence"],
                    "b_flags": k["category_flags"],
                }
            )
        conn.execute(change, params)
        last = rows[-1][0]

    op.create_index(
        "ix_flagged_items_queue_open",
        "flagged_items",
        QUEUE_INDEX,
        postgresql_where=sa.text(QUEUE_OPEN_SQL),
        sqlite_where=sa.text(QUEUE_OPEN_SQL),
    )
    op.create_index("ix_flagged_items_queue", "flagged_items", QUEUE_INDEX)
    op.create_index("ix_flagged_items_queue_counts", "flagged_items", QUEUE_COUNTS_INDEX)


def downgrade() -> None:
    op.drop_index("ix_flagged_items_queue_counts", "flagged_items")
    op.drop_index("ix_flagged_items_queue", "flagged_items")
    op.drop_index("ix_flagged_items_queue_open", "flagged_items")
    with op.batch_alter_table("flagged_items") as batch:
        batch.drop_column("category_flags")
        batch.drop_column("confidence")
        batch.drop_column("queue_rank")
