"""What partners expect of the API's envelope: one error shape, request ids, rate-limit headers, OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import serving.routes.verdicts as verdicts_module
from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import create_key

pytestmark = pytest.mark.slow
PROBLEM = "application/problem+json"


@pytest.fixture
def contract(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=url,
        spool_dir=tmp_path / "spool",
        max_batch_items=4,
        max_body_bytes=20_000,
        max_queue=2,
    )
    migrate(url)
    db = make_engine(url)
    key = create_key(db, "telco-a", {"classify", "verdicts"}, rate_limit_per_minute=5)
    db.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def _is_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["code"] == code and body["title"] and body["detail"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    return body


def test_every_error_is_problem_json_with_a_stable_code(contract):
    c = contract
    wrong = {"Authorization": "Bearer nope"}
    _is_problem(c.post("/v1/classify", json={"text": "x"}, headers=wrong), 401, "invalid_key")
    _is_problem(c.post("/v1/classify", json={"text": "x"}, headers={"Authorization": ""}), 401, "missing_key")
    body = _is_problem(c.post("/v1/classify", json={"txt": "x"}), 422, "invalid_input")
    assert body["errors"] and "txt" in body["detail"]
    _is_problem(c.post("/v1/classify", content=b"{" + b" " * 30_000), 413, "body_too_large")
    _is_problem(c.get("/v1/verdicts", params={"url": "https://nowhere.example/"}), 404, "not_found")
    _is_problem(c.post("/v1/appeals", json={"reason": "x", "item_id": 1}), 403, "missing_scope")


def test_a_full_inference_queue_answers_503_with_retry_after(contract):
    r = contract.post("/v1/classify/batch", json={"items": [{"text": "a"}, {"text": "b"}, {"text": "c"}]})
    _is_problem(r, 503, "queue_full")
    assert int(r.headers["Retry-After"]) >= 1


def test_rate_limit_headers_and_429(contract):
    r = contract.post("/v1/classify", json={"text": "xin chào"})
    assert r.status_code == 200
    assert r.headers["RateLimit-Limit"] == "5" and r.headers["RateLimit-Remaining"] == "4"
    assert r.headers["RateLimit-Policy"] == "5;w=60" and int(r.headers["RateLimit-Reset"]) >= 1
    for _ in range(4):
        contract.post("/v1/classify", json={"text": "xin chào"})
    r = contract.post("/v1/classify", json={"text": "xin chào"})
    _is_problem(r, 429, "rate_limited")
    assert r.headers["RateLimit-Remaining"] == "0" and int(r.headers["Retry-After"]) >= 1


def test_request_ids_are_echoed_or_made(contract):
    r = contract.post("/v1/classify", json={"text": "xin chào"}, headers={"X-Request-ID": "telco-a.123"})
    assert r.headers["X-Request-ID"] == "telco-a.123" and r.json()["request_id"] == "telco-a.123"
    r = contract.get("/healthz", headers={"X-Request-ID": "bad id with spaces;" + "x" * 200})
    assert len(r.headers["X-Request-ID"]) == 32  # not echoed: one of ours


def test_a_handler_that_raises_is_a_problem_and_is_counted(contract, monkeypatch):
    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(verdicts_module, "lookup_verdict", broken)
    r = contract.get("/v1/verdicts", params={"url": "https://a.example/"})
    _is_problem(r, 500, "internal_error")
    assert "boom" not in r.text  # no internals leak to partners
    metrics = contract.get("/metrics").text
    assert 'route="/v1/verdicts",status="500"' in metrics


def test_openapi_declares_the_bearer_scheme_and_problem_answers(contract):
    spec = contract.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    op = spec["paths"]["/v1/classify"]["post"]
    assert op["security"]
    for status in ("401", "403", "413", "422", "429", "503"):
        assert PROBLEM in op["responses"][status]["content"], status


def test_partners_read_their_own_usage(contract):
    for _ in range(2):
        assert contract.post("/v1/classify", json={"text": "xin chào"}).status_code == 200
    r = contract.get("/v1/usage")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["partner"] == "telco-a" and body["days"][-1]["requests"] == 2 and body["days"][-1]["items"] == 2
