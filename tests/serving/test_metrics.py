"""Prometheus metrics: conventional names, a per-partner label, the model in an info metric, promtool's
lint, and one scrape that counts every worker of `vicas serve --workers 2` (multiprocess mode)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import create_key
from tests.serving.helpers import free_port, wait_ready

pytestmark = pytest.mark.slow


def _samples(text: str, name: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name]


def test_metrics_names_labels_and_promtool(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    migrate(url)
    db = make_engine(url)
    key = create_key(db, "telco-a", {"classify"})
    db.dispose()
    settings = Settings(model_dir=tiny_pipeline["model"], database_url=url, spool_dir=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            client.post("/v1/classify", json={"text": "xin chào"}, headers={"Authorization": f"Bearer {key}"})
        client.post("/v1/classify", json={"text": "x"}, headers={"Authorization": "Bearer wrong"})
        text = client.get("/metrics").text
    ok = [s for s in _samples(text, "vicas_requests_total") if s.labels["route"] == "/v1/classify"]
    by_partner = {(s.labels["partner"], s.labels["status"]): s.value for s in ok}
    assert by_partner == {("telco-a", "200"): 3.0, ("-", "401"): 1.0}
    assert _samples(text, "http_request_duration_seconds_bucket"), "the conventional latency histogram"
    info = _samples(text, "vicas_model_info")
    assert len(info) == 1 and info[0].value == 1 and info[0].labels["text_model"].startswith("vicas-text@")
    assert _samples(text, "vicas_items_classified_total")[0].labels["partner"] == "telco-a"
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("VICAS_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is required here (VICAS_REQUIRE_PROMTOOL=1) but not installed")
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr


def test_one_scrape_counts_every_worker(tiny_pipeline, tmp_path):
    """Issue: partner API, item 13: with several workers a scrape saw only the worker that answered it."""
    port = free_port()
    env = {
        **os.environ,
        "VICAS_MODEL_DIR": str(tiny_pipeline["model"]),
        "VICAS_DATABASE_URL": f"sqlite:///{tmp_path / 'vicas.db'}",
        "VICAS_SPOOL_DIR": str(tmp_path / "spool"),
        "VICAS_REQUIRE_API_KEY": "false",
        "VICAS_SECRET_KEY": "metrics-test-secret-0123456789",
        "VICAS_OCR": "false",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vicas.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        n = 24
        for i in range(n):  # a new connection each time: the kernel spreads them over both workers
            with httpx.Client(timeout=30) as c:
                assert c.post(f"{base}/v1/classify", json={"text": f"tin số {i}"}).status_code == 200
        for _ in range(6):
            with httpx.Client(timeout=30) as c:
                text = c.get(f"{base}/metrics").text
            total = sum(s.value for s in _samples(text, "vicas_requests_total") if s.labels["route"] == "/v1/classify")
            assert total == n, f"a scrape saw {total} of {n} requests"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
