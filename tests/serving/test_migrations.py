"""Migrations (issue: a partner API that stays up, item 3): workers starting together do not race on the
upgrade, and a migration that fails stops the service instead of looking like an outage."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate

pytestmark = pytest.mark.slow


def _migrate(url: str, start: mp.synchronize.Event, errors: mp.Queue) -> None:  # type: ignore[type-arg]
    start.wait()
    try:
        migrate(url)
    except Exception as e:  # reported to the test
        errors.put(f"{e.__class__.__name__}: {e}"[:300])


def test_workers_starting_together_migrate_once(database_url):
    ctx = mp.get_context("fork")
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_migrate, args=(database_url, start, errors)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    from alembic.script import ScriptDirectory

    from serving.db import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    assert "needs_review" in {c["name"] for c in inspect(engine).get_columns("flagged_items")}
    engine.dispose()


def test_a_failing_migration_stops_the_service(tiny_pipeline, database_url, tmp_path):
    migrate(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:  # a schema no migration knows: what a botched deploy leaves behind
        conn.execute(text("UPDATE alembic_version SET version_num = 'not-a-revision'"))
    engine.dispose()
    settings = Settings(model_dir=tiny_pipeline["model"], database_url=database_url, spool_dir=tmp_path / "spool")
    with pytest.raises(RuntimeError, match="database migration failed"), TestClient(create_app(settings)):
        pass


def test_an_unreachable_database_at_start_serves_degraded(tiny_pipeline, tmp_path):
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        spool_dir=tmp_path / "spool",
        require_api_key=False,
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["database"] == "unreachable" and ready["schema"].startswith("pending")
        assert client.post("/v1/classify", json={"text": "xin chào"}).status_code == 200
