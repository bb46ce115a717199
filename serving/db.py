"""Database schema (SQLAlchemy Core) and migrations (Alembic). SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
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
    Column("status", String(20), nullable=False, default="open"),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
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

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    kwargs: dict[str, object] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def migrate(url: str) -> None:
    """Bring the database to the newest schema (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
