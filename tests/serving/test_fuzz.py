"""A bounded schemathesis run against the OpenAPI document: no input may produce a server error."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from serving.api import create_app
from serving.config import Settings

schemathesis = pytest.importorskip("schemathesis")
pytestmark = pytest.mark.slow


def test_no_input_produces_a_server_error(tiny_pipeline, tmp_path):
    app = create_app(
        Settings(
            model_dir=tiny_pipeline["model"],
            database_url=f"sqlite:///{tmp_path / 'f.db'}",
            spool_dir=tmp_path / "spool",
            require_api_key=False,
            max_batch_items=8,
        )
    )
    with TestClient(app):  # runs the lifespan: model loaded, database migrated
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [op.ok() for op in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/v1/classify", "/v1/classify/batch", "/v1/verdicts"}
        failures: list[str] = []
        statuses: list[int] = []
        for operation in operations:

            @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):  # type: ignore[no-untyped-def]
                response = case.call()
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]}")
                elif response.status_code >= 400 and case.path.startswith("/v1"):  # the one error shape
                    raw = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
                    ctype = raw[0] if isinstance(raw, list) else raw
                    body = response.json() if ctype.startswith("application/problem+json") else {}
                    if not body.get("code") or body.get("status") != response.status_code:
                        failures.append(f"{case.method} {case.path} -> not problem+json: {response.text[:200]}")

            run()
        assert failures == []
        assert len(statuses) >= 50 and 200 in statuses and any(400 <= s < 500 for s in statuses)
