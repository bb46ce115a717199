"""Database schema (SQLAlchemy Core) and migrations (Alembic). SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
)

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
    UniqueConstraint("item_key", name="uq_flagged_items_item_key"),
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

MIGRATIONS = Path(__file__).parent / "migrations"


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
