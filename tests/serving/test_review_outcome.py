"""The band decision's review outcome through the API, the CLI and bulk scoring (issue: ratings a
child-protection programme can trust): uncertain items are served stricter, marked, and stored for review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.api import create_app
from serving.config import Settings
from serving.db import flagged_items, make_engine, migrate
from serving.keys import create_key
from vicas import cli
from vicas.policy import DEFAULT_POLICY_PATH
from vicas.taxonomy import BAND_ORDER

pytestmark = pytest.mark.slow
TEXTS = ["hôm nay đi học vui", "đm thằng kia ngu vcl", "nạp 50k nhận 100k tài xỉu"]


def policy_with_review_risk(tmp_path: Path, risk: float) -> Path:
    """The default policy with an explicit review threshold (~0 sends every uncertain item to review) and
    costs that make the automatic band lenient, so the tiny model's uncertain readings stay below C."""
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["version"] = f"test-review-{risk}"
    raw["decision"].update({"review_risk": risk, "under_cost": 1.0, "over_cost": 9.0})
    path = tmp_path / f"policy-{risk}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _check_result(body: dict[str, object], expect_review: bool) -> None:
    assert body["needs_review"] is expect_review
    assert ("review" in body["actions"]) is expect_review  # type: ignore[operator]
    probs = body["band_probabilities"]
    assert isinstance(probs, dict) and list(probs) == [b.value for b in BAND_ORDER]
    values = list(probs.values())
    assert probs["P"] == 1.0 and values == sorted(values, reverse=True)
    assert 0.0 <= float(body["under_rating_risk"]) <= 1.0  # type: ignore[arg-type]


@pytest.mark.parametrize(("risk", "expect_review"), [(1e-6, True), (1.0, False)])
def test_api_serves_the_review_outcome_and_stores_it(tiny_pipeline, database_url, tmp_path, risk, expect_review):
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=database_url,
        spool_dir=tmp_path / "spool",
        policy_path=policy_with_review_risk(tmp_path, risk),
        flag_band="C",
    )
    migrate(database_url)
    db = make_engine(database_url)
    key = create_key(db, "telco-r", {"classify"}, rate_limit_per_minute=1000)
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        r = client.post("/v1/classify", json={"text": TEXTS[1], "audience_age": 12})
        assert r.status_code == 200, r.text
        body = r.json()
        _check_result(body, expect_review)
        if expect_review:  # served with the stricter band: the one whose risk is under the threshold
            assert body["band_probabilities"][body["band"]] > 0
            later = BAND_ORDER[[b.value for b in BAND_ORDER].index(body["band"]) + 1 :]
            assert all(body["band_probabilities"][b.value] <= risk for b in later)
        batch = client.post("/v1/classify/batch", json={"items": [{"text": t} for t in TEXTS]})
        assert [x["needs_review"] for x in batch.json()["results"]] == [expect_review] * 3
    with db.connect() as conn:
        rows = conn.execute(select(flagged_items)).mappings().all()
    # items to review are stored for the console whatever their band; the rest only from the flag band (C)
    if expect_review:
        assert len(rows) == 4 and all(row["needs_review"] for row in rows)
        assert all(row["under_rating_risk"] is not None for row in rows)
    else:
        assert body["band"] != "C" and rows == []
    db.dispose()


def test_cli_and_bulk_carry_the_review_outcome(tiny_pipeline, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "out.jsonl"
    policy = policy_with_review_risk(tmp_path, 1e-6)
    args = ["classify", "--model", str(tiny_pipeline["model"]), "--input", str(inp), "--output", str(out)]
    assert cli.main([*args, "--policy", str(policy)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    for row in rows:
        _check_result(row, expect_review=True)

    from serving.bulk import BulkJob, merged_rows, run

    scored = tmp_path / "scored"
    run(BulkJob(input=inp, output=scored, model=tiny_pipeline["model"], policy=policy, block_size=10, ocr=False))
    bulk_rows = merged_rows(scored)
    assert [r["needs_review"] for r in bulk_rows] == [True] * 3
    assert [r["band"] for r in bulk_rows] == [r["band"] for r in rows]  # one decision, whoever asks
