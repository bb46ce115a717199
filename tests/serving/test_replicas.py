"""Two API processes on loopback share PostgreSQL (review store) and Redis (rate limits)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest

from serving.db import make_engine, migrate
from serving.keys import create_key
from tests.serving.helpers import free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
REDIS_URL = os.environ.get("VICAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_ok() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except Exception:
        return False


def test_rate_limit_holds_across_two_replicas(tiny_pipeline, database_url, tmp_path):
    if database_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL")
    if not _redis_ok():
        if os.environ.get("VICAS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"Redis is required in CI but {REDIS_URL} is unreachable")
        pytest.skip(f"no Redis at {REDIS_URL}")
    import redis

    # the test's own Redis database, emptied: model versions now derive from their inputs, so the tiny model of an
    # earlier run has the same version and its cached results would be hits here (counted by the assertion below)
    redis.Redis.from_url(REDIS_URL).flushdb()
    migrate(database_url)
    db = make_engine(database_url)
    key = create_key(db, f"replicated-{uuid.uuid4().hex[:6]}", {"classify"}, rate_limit_per_minute=10)
    db.dispose()
    env = {
        **os.environ,
        "VICAS_MODEL_DIR": str(tiny_pipeline["model"]),
        "VICAS_DATABASE_URL": database_url,
        "VICAS_REDIS_URL": REDIS_URL,
        "VICAS_SPOOL_DIR": str(tmp_path / "spool"),
        "VICAS_FLAG_BAND": "P",
    }
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vicas.cli", "serve", "--port", str(p)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        for p in ports:
            wait_ready(f"http://127.0.0.1:{p}", 60)
        headers = {"Authorization": f"Bearer {key}"}
        codes = []
        for i in range(16):  # alternate replicas: the 10-per-minute budget is shared, not 10 each
            r = httpx.post(
                f"http://127.0.0.1:{ports[i % 2]}/v1/classify",
                json={"text": f"tin số {i}"},
                headers=headers,
                timeout=30,
            )
            codes.append(r.status_code)
        assert codes.count(200) == 10 and codes.count(429) == 6, codes
        db = make_engine(database_url)
        with db.connect() as conn:
            from sqlalchemy import func, select

            from serving.db import flagged_items

            n, distinct = conn.execute(
                select(func.count(), func.count(func.distinct(flagged_items.c.item_key))).select_from(flagged_items)
            ).one()
        db.dispose()
        assert n == distinct == 10  # every answered item stored exactly once, whichever replica took it
        # the result cache is shared too: content scored by one replica is not scored again by the other
        # the first key's budget is spent: a fresh key for the cache check
        db = make_engine(database_url)
        fresh = create_key(db, f"cache-{uuid.uuid4().hex[:6]}", {"classify"}, rate_limit_per_minute=100)
        db.dispose()
        key2 = {"Authorization": f"Bearer {fresh}"}
        text = f"nội dung chỉ chấm một lần {uuid.uuid4().hex}"
        a = httpx.post(f"http://127.0.0.1:{ports[0]}/v1/classify", json={"text": text}, headers=key2, timeout=30)
        b = httpx.post(f"http://127.0.0.1:{ports[1]}/v1/classify", json={"text": text}, headers=key2, timeout=30)
        assert a.json()["categories"] == b.json()["categories"]
        metrics = httpx.get(f"http://127.0.0.1:{ports[1]}/metrics", timeout=10).text
        assert 'vicas_cache_hits_total{cache="shared"} 1.0' in metrics
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
