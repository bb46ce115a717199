"""A Redis that does not answer degrades the service (limits per process) instead of failing requests."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import Partner, RedisRateLimiter, create_key


def _dead_redis_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_rate_limiter_falls_back_to_the_process_when_redis_is_down():
    limiter = RedisRateLimiter(_dead_redis_url())
    partner = Partner(1, "telco-a", frozenset({"classify"}), rate_limit_per_minute=2)
    assert limiter.acquire(partner).wait == 0 and limiter.acquire(partner).wait == 0
    assert limiter.degraded
    assert limiter.acquire(partner).wait > 0, "the in-process bucket must still limit"


@pytest.mark.slow
def test_classify_goes_on_and_readiness_says_redis_is_down(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    settings = Settings(
        model_dir=tiny_pipeline["model"], database_url=url, spool_dir=tmp_path / "spool", redis_url=_dead_redis_url()
    )
    migrate(url)
    db = make_engine(url)
    key = create_key(db, "telco-a", {"classify"})
    db.dispose()
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/classify", json={"text": "xin chào"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded"
        assert any("redis" in d for d in ready["degraded"])
