"""Conversations through the API: grooming read over the whole conversation escalates to C with the hotline,
the evidence names the messages and never the child's, and flagged threads reach the review store redacted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.api import create_app
from serving.config import Settings
from serving.db import flagged_items, make_engine
from tests.tiny_model import CLASSROOM_SCRIPT, GROOMING_SCRIPT
from vicas.conversation import ConversationModel

pytestmark = pytest.mark.slow
PHONE = "0912345678"


def _conversation(script, extra: str = "") -> list[dict]:
    messages = [{"sender": s, "text": t} for s, t, _ in script]
    if extra:
        messages.append({"sender": "b", "text": extra})
    return messages


@pytest.fixture
def client(tiny_pipeline, tiny_conversations, tmp_path):
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=url,
        spool_dir=tmp_path / "spool",
        require_api_key=False,
        secret_key="conversation-test-secret-0123",
    )
    model = ConversationModel.load(tiny_conversations["model"])
    with TestClient(create_app(settings, conversation_model=model)) as c:
        yield c, url


def test_a_grooming_conversation_is_c_with_report_and_the_hotline(client):
    c, url = client
    body = {
        "conversation": _conversation(GROOMING_SCRIPT, f"so anh day {PHONE}"),
        "participants": {"a": {"age": 12}, "b": {}},
    }
    r = c.post("/v1/classify", json=body)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["band"] == "C" and "report" in res["actions"] and res["support"] is not None
    conv = res["conversation"]
    assert conv["flagged"] and conv["risk"] >= conv["threshold"]
    assert {e["sender"] for e in conv["evidence"]} == {"b"}, "the child's messages are never evidence"
    assert res["categories"]["child_sexual"]["severity"] == 3
    assert "+vicas-conversation@" in res["model_version"]
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(flagged_items.c.text)).scalar_one()
    engine.dispose()
    assert "b: em hoc lop may roi" in stored and PHONE not in stored, "stored as a thread, personal data masked"


def test_an_ordinary_classroom_conversation_is_not_read_as_grooming(client):
    c, _ = client
    people = {"a": {"age": 11}, "t": {"role": "teacher"}}
    body = {"conversation": _conversation(CLASSROOM_SCRIPT), "participants": people}
    res = c.post("/v1/classify", json=body).json()
    assert not res["conversation"]["flagged"]
    assert not any(e["category"] == "child_sexual" for e in res["evidence"])


def test_conversation_input_errors_are_clear(client, tiny_pipeline, tmp_path):
    c, _ = client
    bad = [
        {"conversation": [{"sender": "a", "text": "hi"}], "text": "x"},
        {"conversation": [{"sender": "z", "text": "hi"}], "participants": {"a": {}}},
        {"conversation": []},
        {"text": "x", "participants": {"a": {}}},
    ]
    for body in bad:
        r = c.post("/v1/classify", json=body)
        assert r.status_code == 422 and r.json()["code"] == "invalid_input", body
    batch = c.post(
        "/v1/classify/batch",
        json={"items": [{"text": "xin chào"}, {"conversation": _conversation(GROOMING_SCRIPT)}]},
    )
    assert batch.status_code == 200 and batch.json()["results"][1]["conversation"]["flagged"]
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=f"sqlite:///{tmp_path / 'none.db'}",
        spool_dir=tmp_path / "spool2",
        require_api_key=False,
        conversation_model_dir=tmp_path / "missing",
    )
    with TestClient(create_app(settings)) as without:
        r = without.post("/v1/classify", json={"conversation": _conversation(GROOMING_SCRIPT)})
        assert r.status_code == 422 and "train_conversations" in r.json()["detail"]


def test_live_messages_get_the_conversations_current_risk_and_a_thread_is_stored_once(client):
    c, url = client
    answers = []
    for i, (sender, text, _) in enumerate(GROOMING_SCRIPT * 2):  # the script, then more of the same
        body = {"sender": sender, "text": text}
        if i == 0:
            body["participants"] = {"a": {"age": 12}, "b": {}}
        r = c.post("/v1/conversations/zalo-123/messages", json=body)
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert answers[-1]["conversation"]["flagged"] and answers[-1]["band"] == "C"
    assert answers[-1]["messages"] == 2 * len(GROOMING_SCRIPT) and "report" in answers[-1]["actions"]
    first = next(i for i, a in enumerate(answers) if a["conversation"]["flagged"])
    assert first < len(GROOMING_SCRIPT), "flagged within the first telling of the script"
    engine = make_engine(url)
    with engine.connect() as conn:
        threads = conn.execute(select(flagged_items.c.text).where(flagged_items.c.item_key.like("live:%"))).all()
    engine.dispose()
    assert len(threads) == 1 and threads[0][0].startswith("b: em hoc lop may roi")
    other = c.post("/v1/conversations/zalo-456/messages", json={"sender": "b", "text": "em hoc lop may roi"})
    assert other.json()["messages"] == 1, "conversations are kept apart"
    stranger = c.post("/v1/conversations/zalo-123/messages", json={"sender": "zz", "text": "hi"})
    assert stranger.status_code == 422
    assert c.post("/v1/conversations/bad id!/messages", json={"sender": "b", "text": "x"}).status_code == 422
