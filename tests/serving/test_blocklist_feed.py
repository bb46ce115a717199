"""The reviewed blocklists as an authenticated partner feed: ETag/304 and incremental changes.
Issue: partner API, item 12 (the lists were only a console download)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import create_key
from serving.review.blocklists import verify_checksum
from serving.store import record_verdict

pytestmark = pytest.mark.slow


@pytest.fixture
def feed(tiny_pipeline, database_url, tmp_path):
    migrate(database_url)
    db = make_engine(database_url)
    key = create_key(db, "dns-filter", {"blocklists"})
    other = create_key(db, "telco-b", {"classify"})
    settings = Settings(model_dir=tiny_pipeline["model"], database_url=database_url, spool_dir=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, db, other
    db.dispose()


def test_the_feed_answers_304_until_a_reviewed_verdict_changes(feed):
    client, db, other = feed
    record_verdict(db, "https://cado-vui.vn/ban", "T18", "reviewed", None, None, None)
    record_verdict(db, "https://Ví-dụ.vn./p", "C", "reviewed", None, None, None)
    record_verdict(db, "https://model-only.vn/x", "C", "model", None, None, None)  # never blocks
    first = client.get("/v1/blocklists/hosts")
    assert first.status_code == 200 and verify_checksum(first.text)
    assert "0.0.0.0 cado-vui.vn" in first.text and "0.0.0.0 xn--v-d-rma6749a.vn" in first.text
    assert "model-only" not in first.text
    etag = first.headers["ETag"]
    again = client.get("/v1/blocklists/hosts", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    time.sleep(0.01)
    record_verdict(db, "https://cado-vui.vn/ban", "T13", "reviewed", None, None, None)  # a reviewer lowers it
    changed = client.get("/v1/blocklists/hosts", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag and "cado-vui.vn" not in changed.text
    rpz = client.get("/v1/blocklists/rpz", params={"min_band": "C"})
    assert rpz.status_code == 200 and "xn--v-d-rma6749a.vn CNAME ." in rpz.text
    assert client.get("/v1/blocklists/pdf").status_code == 422
    assert client.get("/v1/blocklists/hosts", params={"min_band": "X"}).status_code == 422
    denied = client.get("/v1/blocklists/hosts", headers={"Authorization": f"Bearer {other}"})
    assert denied.status_code == 403 and denied.json()["code"] == "missing_scope"


def test_incremental_changes_since_a_version(feed):
    client, db, _ = feed
    record_verdict(db, "https://a-site.vn/1", "T18", "reviewed", None, None, None)
    everything = client.get("/v1/blocklists/changes").json()
    assert [e["host"] for e in everything["block"]] == ["a-site.vn"] and everything["unblock"] == []
    version = everything["version"]
    quiet = client.get("/v1/blocklists/changes", params={"since": version}).json()
    assert quiet["block"] == [] and quiet["unblock"] == [] and quiet["version"] == version
    time.sleep(0.01)
    record_verdict(db, "https://a-site.vn/1", "K", "reviewed", None, None, None)
    record_verdict(db, "https://b-site.vn/2", "C", "reviewed", None, None, None)
    delta = client.get("/v1/blocklists/changes", params={"since": version}).json()
    assert [e["url"] for e in delta["block"]] == ["https://b-site.vn/2"]
    assert [e["url"] for e in delta["unblock"]] == ["https://a-site.vn/1"]
    assert delta["version"] > version
