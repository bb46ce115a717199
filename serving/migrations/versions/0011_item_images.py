"""item thumbnails (sealed), reviewers' item views, and the queue's counts kept up to date by triggers

- item_images: per image of a flagged item (never one found in a hash list), a small JPEG sealed with the
  secret key and the evidence boxes scaled to it (serving/review/images.py);
- item_views: which items a reviewer opened, once per item and day, for the daily count of severe items
  seen per reviewer in the supervisor's report;
- queue_counts: flagged items per (status, band, category set), kept by triggers on flagged_items (every
  insert, update and delete, whoever writes it), so that the queue's counts under no filter but its status
  are a read of a few hundred rows instead of a scan of every item (the "all" view counted 200,000 items
  in 111 ms). Filled in here from the existing rows, after the triggers exist: creating a trigger locks the
  table against writes until this migration commits, so no item is counted twice or missed.

On PostgreSQL the triggers run once per statement on its transition tables and change each counter once,
in key order (concurrent writers take the counter rows' locks in the same order, so they never deadlock); on
SQLite they run per row. A later SQLite migration that recreates flagged_items (batch mode "move and copy")
drops the triggers and must create them again (`create_queue_count_triggers`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KEYS = "status, band, category_flags"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION queue_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO queue_counts AS q ({KEYS}, n)
            SELECT {KEYS}, count(*) FROM new_rows GROUP BY {KEYS} ORDER BY {KEYS}
            ON CONFLICT ({KEYS}) DO UPDATE SET n = q.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO queue_counts AS q ({KEYS}, n)
            SELECT {KEYS}, -count(*) FROM old_rows GROUP BY {KEYS} ORDER BY {KEYS}
            ON CONFLICT ({KEYS}) DO UPDATE SET n = q.n + EXCLUDED.n;
    ELSE
        INSERT INTO queue_counts AS q ({KEYS}, n)
            SELECT {KEYS}, sum(d) FROM (
                SELECT {KEYS}, 1 AS d FROM new_rows
                UNION ALL
                SELECT {KEYS}, -1 AS d FROM old_rows
            ) AS changed
            GROUP BY {KEYS} HAVING sum(d) <> 0 ORDER BY {KEYS}
            ON CONFLICT ({KEYS}) DO UPDATE SET n = q.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$
"""
_PG_TRIGGERS = {
    "queue_counts_insert": "AFTER INSERT ON flagged_items REFERENCING NEW TABLE AS new_rows",
    "queue_counts_update": "AFTER UPDATE ON flagged_items REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "queue_counts_delete": "AFTER DELETE ON flagged_items REFERENCING OLD TABLE AS old_rows",
}


def _sqlite_add(row: str, step: str) -> str:
    return (
        f"INSERT INTO queue_counts ({KEYS}, n) VALUES ({row}.status, {row}.band, {row}.category_flags, {step}) "
        f"ON CONFLICT ({KEYS}) DO UPDATE SET n = n + ({step});"
    )


_SQLITE_TRIGGERS = {
    "queue_counts_insert": f"AFTER INSERT ON flagged_items BEGIN {_sqlite_add('NEW', '1')} END",
    "queue_counts_update": (
        "AFTER UPDATE OF status, band, category_flags ON flagged_items "
        "WHEN OLD.status IS NOT NEW.status OR OLD.band IS NOT NEW.band OR OLD.category_flags IS NOT NEW.category_flags "
        f"BEGIN {_sqlite_add('OLD', '-1')} {_sqlite_add('NEW', '1')} END"
    ),
    "queue_counts_delete": f"AFTER DELETE ON flagged_items BEGIN {_sqlite_add('OLD', '-1')} END",
}


def create_queue_count_triggers() -> None:
    """The triggers that keep queue_counts; also for a later migration that recreates flagged_items."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for name, when in _PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT EXECUTE FUNCTION queue_counts_apply()")
    else:
        for name, body in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    op.create_table(
        "item_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_key", sa.String(100), nullable=False),
        sa.Column("image", sa.SmallInteger, nullable=False),
        sa.Column("width", sa.SmallInteger, nullable=False),
        sa.Column("height", sa.SmallInteger, nullable=False),
        sa.Column("thumbnail", sa.Text, nullable=False),
        sa.Column("boxes", sa.Text, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("item_key", "image", name="uq_item_images_item_image"),
    )
    op.create_index("ix_item_images_created_at", "item_images", ["created_at"])
    op.create_table(
        "item_views",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("severe", sa.Boolean, nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("reviewer", "item_id", "day", name="uq_item_views_reviewer_item_day"),
    )
    op.create_index("ix_item_views_day_reviewer", "item_views", ["day", "reviewer"])
    op.create_table(
        "queue_counts",
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("band", sa.String(4), primary_key=True),
        sa.Column("category_flags", sa.String(400), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    create_queue_count_triggers()
    op.execute(f"INSERT INTO queue_counts ({KEYS}, n) SELECT {KEYS}, count(*) FROM flagged_items GROUP BY {KEYS}")


def downgrade() -> None:
    for name in _PG_TRIGGERS:  # the same names on both databases
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON flagged_items" if _is_pg() else ""))
    if _is_pg():
        op.execute("DROP FUNCTION IF EXISTS queue_counts_apply()")
    op.drop_table("queue_counts")
    op.drop_table("item_views")
    op.drop_table("item_images")


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"
