"""The classification API against a real model folder and real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.api import create_app
from serving.config import Settings
from serving.db import flagged_items, make_engine, migrate, usage
from serving.keys import create_key, revoke_key
from serving.store import lookup_verdict, record_verdict
from vicas.taxonomy import CATEGORIES

pytestmark = pytest.mark.slow


def make_client(tiny_pipeline, database_url, tmp_path, **overrides):
    settings = Settings(
        model_dir=tiny_pipeline["model"], database_url=database_url, spool_dir=tmp_path / "spool", **overrides
    )
    return TestClient(create_app(settings)), settings


@pytest.fixture
def api(tiny_pipeline, database_url, tmp_path):
    client, _settings = make_client(
        tiny_pipeline, database_url, tmp_path, flag_band="P", max_batch_items=4, max_body_bytes=20_000
    )
    migrate(database_url)
    db = make_engine(database_url)
    key = create_key(db, "telco-a", {"classify", "verdicts"}, rate_limit_per_minute=1000)
    with client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, db, key
    db.dispose()


def test_classify_returns_the_contract_result(api):
    client, db, _ = api
    r = client.post(
        "/v1/classify", json={"text": "Nạp 50k nhận 100k tài xỉu uy tín, sđt 0912 345 678", "audience_age": 12}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["band"] in ("P", "K", "T13", "T16", "T18", "C")
    assert set(body["categories"]) == set(CATEGORIES)
    assert all(0.0 <= v["score"] <= 1.0 and 0 <= v["severity"] <= 3 for v in body["categories"].values())
    assert body["audience"]["age"] == 12
    assert body["actions"] and body["model_version"].startswith("vicas-text@") and body["policy_version"]
    assert len(body["request_id"]) == 32
    # every item is flagged here (flag band P): stored once, phone number redacted
    with db.connect() as conn:
        rows = conn.execute(select(flagged_items)).mappings().all()
    assert len(rows) == 1
    assert "0912" not in rows[0]["text"] and "[ẩn]" in rows[0]["text"]
    assert rows[0]["partner"] == "telco-a"


def test_html_is_reduced_to_visible_text(api):
    client, _, _ = api
    page = "<html><head><title>Trang</title><script>var x='đm'</script></head><body><p>Xin chào</p></body></html>"
    assert client.post("/v1/classify", json={"html": page, "url": "https://vi.example.org/a"}).status_code == 200
    r = client.post("/v1/classify", json={"html": "<script>alert(1)</script>"})
    assert r.status_code == 422 and "no visible text" in r.text


def test_batch_and_its_limit(api):
    client, _, _ = api
    items = [{"text": t} for t in ("hôm nay đi học", "đm thằng kia", "tặng kim cương free fire")]
    r = client.post("/v1/classify/batch", json={"items": items})
    assert r.status_code == 200
    assert len(r.json()["results"]) == 3
    assert client.post("/v1/classify/batch", json={"items": items * 2}).status_code == 413
    assert client.post("/v1/classify/batch", json={"items": []}).status_code == 422


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "   \n "}, 422),
        ({"text": "a", "html": "<p>b</p>"}, 422),
        ({"text": "a", "colour": "red"}, 422),
        ({"text": "a", "audience_age": 999}, 422),
        ({"text": "a", "audience_age": -3}, 422),
        ({"text": 5}, 422),
        ({}, 422),
    ],
)
def test_bad_input_gets_a_clear_4xx(api, payload, status):
    client, _, _ = api
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == status
    assert "detail" in r.json()


def test_malformed_bodies(api):
    client, _, _ = api
    headers = {"content-type": "application/json"}
    assert client.post("/v1/classify", content=b"{not json", headers=headers).status_code == 422
    assert client.post("/v1/classify", content=b'{"text": "\xff\xfe"}', headers=headers).status_code in (400, 422)
    big = json.dumps({"text": "a" * 30_000})
    assert client.post("/v1/classify", content=big, headers=headers).status_code == 413


def test_keys_scopes_and_revocation(api, tiny_pipeline):
    client, db, _ = api
    anon = {"Authorization": ""}
    assert client.post("/v1/classify", json={"text": "a"}, headers=anon).status_code == 401
    assert client.post("/v1/classify", json={"text": "a"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    reader = create_key(db, "filter-b", {"verdicts"})
    r = client.post("/v1/classify", json={"text": "a"}, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403 and "classify" in r.text
    revoke_key(db, "filter-b")
    r = client.get("/v1/verdicts", params={"domain": "x.vn"}, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 401


def test_rate_limit_answers_429_with_retry_after(api):
    client, db, _ = api
    key = create_key(db, "small-partner", {"classify"}, rate_limit_per_minute=2)
    headers = {"Authorization": f"Bearer {key}"}
    codes = [client.post("/v1/classify", json={"text": f"xin chào {i}"}, headers=headers).status_code for i in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    r = client.post("/v1/classify", json={"text": "lần nữa"}, headers=headers)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_usage_is_counted_per_key_per_day(api):
    client, db, _ = api
    client.post("/v1/classify", json={"text": "một"})
    client.post("/v1/classify/batch", json={"items": [{"text": "hai"}, {"text": "ba"}]})
    with db.connect() as conn:
        rows = conn.execute(select(usage)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["requests"] == 2 and rows[0]["items"] == 3


def test_verdicts_by_url_and_domain_reviewed_first(api):
    client, db, _ = api
    url = "https://www.truyen-vui.vn/chuong-1"
    assert client.get("/v1/verdicts", params={"url": url}).status_code == 404
    client.post("/v1/classify", json={"text": "chương một", "url": url})
    r = client.get("/v1/verdicts", params={"url": url})
    assert r.status_code == 200 and r.json()["source"] == "model"
    assert (
        client.get("/v1/verdicts", params={"domain": "truyen-vui.vn"}).json()["url"] == "https://truyen-vui.vn/chuong-1"
    )
    record_verdict(db, url, "T18", "reviewed", None, None, None)
    client.post("/v1/classify", json={"text": "chương một sửa lại", "url": url})  # a model verdict comes later
    got = client.get("/v1/verdicts", params={"url": url}).json()
    assert got["source"] == "reviewed" and got["band"] == "T18"
    assert lookup_verdict(db, domain="www.truyen-vui.vn")["source"] == "reviewed"
    assert client.get("/v1/verdicts").status_code == 422


def test_operations_endpoints(api):
    client, _, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    tax = client.get("/v1/taxonomy").json()
    assert tax["categories"]["gambling"]["bands"] == {"1": "T13", "2": "T18", "3": "C"}
    client.post("/v1/classify", json={"text": "xin chào"})
    metrics = client.get("/metrics").text
    assert "vicas_items_classified_total" in metrics and "http_request_duration_seconds_bucket" in metrics
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]


def test_same_content_is_served_from_the_cache(api):
    client, _, _ = api
    a = client.post("/v1/classify", json={"text": "bài hát hay quá"}).json()
    b = client.post("/v1/classify", json={"text": "bài hát hay quá"}).json()
    assert a["categories"] == b["categories"] and a["request_id"] != b["request_id"]
    assert client.app.state.batcher.cache_hits >= 1
