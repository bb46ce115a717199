"""Database schema (SQLAlchemy Core) and migrations (Alembic). SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    text,
)
from sqlalchemy.engine.default import DefaultExecutionContext

from serving.queue_keys import keys_for


def insert_ignoring(engine: Engine, table: Table, index_elements: list[str] | None = None) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the engine's dialect (PostgreSQL or SQLite): stores that may see the
    same row twice (a spooled write replayed, a view recorded again) insert once."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=index_elements)


metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, index=True),  # unique among active keys (migration 0006)
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

usage = Table(
    "usage",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("requests", Integer, nullable=False),
    Column("items", Integer, nullable=False),
)

# the statuses of the open queue, written out as literals: a partial index is used only for this exact condition
QUEUE_OPEN_SQL = "status IN ('open', 'awaiting_second')"
QUEUE_INDEX = ("queue_rank", "confidence", "created_at", "id", "band", "partner", "needs_review")
QUEUE_COUNTS_INDEX = ("status", "band", "category_flags", "partner", "needs_review", "confidence", "created_at", "id")


def _queue_key(name: str) -> object:
    """A column default for an insert that leaves a queue key out: computed from the row's band and categories."""

    def default(context: DefaultExecutionContext) -> object:
        row = context.get_current_parameters()  # type: ignore[no-untyped-call]
        return keys_for(str(row.get("band") or ""), row.get("categories"))[name]

    return default


flagged_items = Table(
    "flagged_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_key", String(100), nullable=False),  # request id + item index: stored exactly once
    Column("content_hash", String(64), nullable=False, index=True),
    Column("partner", String(100), nullable=True),
    Column("url", Text, nullable=True),
    Column("domain", String(255), nullable=True, index=True),
    Column("band", String(4), nullable=False, index=True),
    Column("categories", Text, nullable=False),  # JSON: category -> {score, severity}
    Column("evidence", Text, nullable=False),  # JSON: spans, personal data redacted
    Column("text", Text, nullable=False),  # redacted content
    Column("decision", Text, nullable=True),  # JSON: the policy's band, actions and reasons as decided
    Column("model_version", String(100), nullable=False),
    Column("policy_version", String(100), nullable=False),
    Column("status", String(20), nullable=False, default="open"),  # open | awaiting_second | reviewed
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("final_band", String(4), nullable=True),
    Column("final_categories", Text, nullable=True),  # JSON: category -> severity after review
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
    Column("private", Text, nullable=True),  # encrypted personal-data segments, revealed by role only
    # the band decision's review outcome (vicas.band): uncertain bands served stricter and queued here
    Column("needs_review", Boolean, nullable=False, default=False, server_default=false(), index=True),
    Column("under_rating_risk", Float, nullable=True),
    # the review queue's keys (serving.queue_keys, migration 0008), computed from band and categories when
    # the row is stored: the queue sorts, filters, counts and pages on them in SQL
    Column("queue_rank", SmallInteger, nullable=False, default=_queue_key("queue_rank"), server_default="3"),
    Column("confidence", Float, nullable=False, default=_queue_key("confidence"), server_default="0"),
    Column("category_flags", String(400), nullable=False, default=_queue_key("category_flags"), server_default=""),
    UniqueConstraint("item_key", name="uq_flagged_items_item_key"),
    # the queue's order (the first four columns; the others let filters skip rows without reading them): the
    # partial index serves the open queue (status pending), the other one the rest
    Index(
        "ix_flagged_items_queue_open",
        *QUEUE_INDEX,
        postgresql_where=text(QUEUE_OPEN_SQL),
        sqlite_where=text(QUEUE_OPEN_SQL),
    ),
    Index("ix_flagged_items_queue", *QUEUE_INDEX),
    # the queue's counts per band and category under any filter, read from the index alone
    Index("ix_flagged_items_queue_counts", *QUEUE_COUNTS_INDEX),
)

# Flagged items per (status, band, category set), kept by triggers on flagged_items (migration 0011) on every
# insert, update and delete: the queue's counts under no filter but its status read these few hundred rows
# instead of counting every item. A SQLite migration that recreates flagged_items must recreate the triggers.
queue_counts = Table(
    "queue_counts",
    metadata,
    Column("status", String(20), primary_key=True),
    Column("band", String(4), primary_key=True),
    Column("category_flags", String(400), primary_key=True),
    Column("n", Integer, nullable=False),  # 0 once every item of the group is gone
)

# --- what reviewers see and how much (migration 0011) ---------------------------------------------
# Per image of a flagged item, a small JPEG thumbnail (longest side THUMBNAIL_SIDE) sealed with VICAS_SECRET_KEY
# like the item's original text (serving.review.service.seal_bytes), and the evidence boxes (OCR words, detector
# boxes) scaled to it. Never for an image found in a hash list: that one is never kept in any form. Rows go
# with their item (`vicas purge`).
item_images = Table(
    "item_images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_key", String(100), nullable=False),  # the flagged item's
    Column("image", SmallInteger, nullable=False),  # the image's index in the item
    Column("width", SmallInteger, nullable=False),  # the thumbnail's size in pixels
    Column("height", SmallInteger, nullable=False),
    Column("thumbnail", Text, nullable=False),  # the JPEG, sealed (Fernet token, ASCII)
    Column("boxes", Text, nullable=False),  # JSON: [{"category", "source", "box": [left, top, width, height]}]
    Column("sensitive", Boolean, nullable=False, default=False),  # sexual or violent: blurred harder, labelled
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    UniqueConstraint("item_key", "image", name="uq_item_images_item_image"),  # a spooled item lands once
)

# Which items a reviewer opened, once per item and local day (Asia/Ho_Chi_Minh): the supervisor's report counts
# the severe ones per reviewer and day (serving.review.service.SEVERE_SEVERITY)
item_views = Table(
    "item_views",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reviewer", String(100), nullable=False),
    Column("item_id", Integer, nullable=False),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD in Vietnam's time: a reviewer's working day
    Column("severe", Boolean, nullable=False),
    Column("viewed_at", DateTime(timezone=True), nullable=False),  # the first view that day
    UniqueConstraint("reviewer", "item_id", "day", name="uq_item_views_reviewer_item_day"),
    Index("ix_item_views_day_reviewer", "day", "reviewer"),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("url", Text, primary_key=True),
    Column("domain", String(255), nullable=False, index=True),
    Column("band", String(4), nullable=False),
    Column("source", String(20), nullable=False),  # model | reviewed
    Column("content_hash", String(64), nullable=True),
    Column("model_version", String(100), nullable=True),
    Column("policy_version", String(100), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- review console (migration 0002) ---------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),  # reviewer | supervisor | admin
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # part of every console session: logging out moves it on, so a copied cookie stops working
    Column("session_epoch", Integer, nullable=False, default=0, server_default="0"),
    # set by `vicas users disable`: no login, and get_user no longer finds the account (migration 0005)
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

# Failed console logins per client address in the current window (serving.review.accounts, migration 0005)
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False, index=True),
    Column("failures", Integer, nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, nullable=False, index=True),
    Column("reviewer", String(100), nullable=False),
    Column("decision", String(20), nullable=False),  # confirm | change | false_positive | second_confirm
    Column("band", String(4), nullable=False),  # the band this decision sets
    Column("categories", Text, nullable=False),  # JSON: category -> severity decided
    Column("note", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

appeals = Table(
    "appeals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, nullable=True, index=True),
    Column("url", Text, nullable=True),
    Column("partner", String(100), nullable=True),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),  # open | upheld | overturned
    Column("decided_band", String(4), nullable=True),
    Column("decision_note", Text, nullable=True),
    Column("decided_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", String(40), nullable=False),  # ISO 8601, part of the hashed content
    Column("actor", String(100), nullable=False),
    Column("action", String(50), nullable=False),
    Column("target", String(200), nullable=False),
    Column("before", Text, nullable=False),  # JSON
    Column("after", Text, nullable=False),  # JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    # HMAC-SHA256 of `hash` under VICAS_SECRET_KEY, a key the database does not hold: whoever can write the
    # database can recompute the chain but not these (serving.review.audit)
    Column("mac", String(64), nullable=True),
)

# The chain's head in one row, advanced compare-and-swap by every append (no two entries follow the same one)
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
)

# What operators set for every worker to follow (the model folder to serve), read by each worker's loop
serving_state = Table(
    "serving_state",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_by", String(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- hash lists of known abuse material (serving.hashes, migration 0009) -----
# Lists as an authority (IWF, NCMEC, an HMA bank) sends them: `vicas hashes import` replaces a list of the
# same name in one transaction; every worker holds the entries in memory and reloads when this table changes
hash_lists = Table(
    "hash_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", String(100), nullable=False),
    Column("source", String(200), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    UniqueConstraint("name", name="uq_hash_lists_name"),
)

hash_entries = Table(
    "hash_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", Integer, ForeignKey("hash_lists.id"), nullable=False, index=True),
    Column("type", String(10), nullable=False),  # pdq | md5 | sha256
    Column("value", String(64), nullable=False),  # lowercase hex
    Index("ix_hash_entries_type_value", "type", "value"),  # exact lookups
)

# One row per matched image, written with its flagged item: the image's own hashes (never the image, never
# what was read in it), which list matched and how closely, for counts per partner and period
hash_matches = Table(
    "hash_matches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_key", String(100), nullable=False),  # the flagged item's
    Column("image", SmallInteger, nullable=False),  # the image's index in the item
    Column("list_name", String(100), nullable=False),
    Column("list_version", String(100), nullable=False),
    Column("hash_type", String(10), nullable=False),  # what matched: pdq | md5 | sha256
    Column("distance", SmallInteger, nullable=False),  # PDQ Hamming distance; 0 for an exact match
    Column("md5", String(32), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("pdq", String(64), nullable=True),
    Column("pdq_quality", SmallInteger, nullable=True),
    Column("partner", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("item_key", "image", name="uq_hash_matches_item_image"),  # a spooled write lands once
    Index("ix_hash_matches_created_at", "created_at"),
    Index("ix_hash_matches_partner_created_at", "partner", "created_at"),
)

MIGRATIONS = Path(__file__).parent / "migrations"


def as_utc(value: datetime) -> datetime:
    """A stored time in UTC with its zone: SQLite hands times back without one (they were written in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str) -> Engine:
    kwargs: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 3}  # an unreachable host must not hold a request for minutes
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


MIGRATION_LOCK_ID = 0x76696361  # PostgreSQL advisory lock key ("vica"), held while migrating


def migrate(url: str) -> None:
    """Bring the database to the newest schema (alembic upgrade head), one process at a time.

    Workers and replicas starting together would race on the same upgrade: on PostgreSQL the upgrade runs
    under a session advisory lock, on SQLite under an exclusive `flock` beside the database file. The
    second process then finds the schema at head and does nothing. Raises what the upgrade raises: an
    unreachable database (OperationalError) or a migration that fails.
    """
    import fcntl

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import pool, text

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = create_engine(url, poolclass=pool.NullPool)
    lock_file = None
    try:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            lock_file = open(f"{engine.url.database}.migrate.lock", "a")  # noqa: SIM115 (held to the end)
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
                conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                    conn.commit()
    finally:
        if lock_file is not None:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
            lock_file.close()
        engine.dispose()
