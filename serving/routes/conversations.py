"""The live-conversation route: one message as it comes, the conversation's current grooming risk back.
The windows and their locks are serving/conversations.py; the thread stored for review is built in
serving/classification.py."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as FastPath

from serving.batcher import QueueFull
from serving.classification import NO_CONVERSATION_MODEL, thread_item
from serving.deps import (
    BatcherDep,
    ClassifyPartner,
    ConversationModelDep,
    MetricsDep,
    PolicyDep,
    SettingsDep,
    StoreDep,
    WindowLocksDep,
    WindowsDep,
)
from serving.metrics import NO_PARTNER
from serving.problems import ApiError, openapi_responses, request_id_of
from serving.schemas import LiveAnswer, LiveMessage
from vicas.combine import ItemPrediction
from vicas.conversation import apply_risk
from vicas.result import build_result

router = APIRouter()


@router.post(
    "/v1/conversations/{conversation_id}/messages",
    response_model=LiveAnswer,
    tags=["classify"],
    responses=openapi_responses(401, 403, 413, 422, 429, 503),
)
async def live_message(
    conversation_id: Annotated[str, FastPath(pattern=r"^[A-Za-z0-9._:-]{1,100}$")],
    body: LiveMessage,
    request: Request,
    partner: ClassifyPartner,
    model: ConversationModelDep,
    settings: SettingsDep,
    policy: PolicyDep,
    metrics: MetricsDep,
    store: StoreDep,
    windows: WindowsDep,
    locks: WindowLocksDep,
    batcher: BatcherDep,
) -> LiveAnswer:
    """One message of a live conversation, as it comes: the message's own harms and the conversation's
    current grooming risk over its latest 60 messages (kept per partner for
    `VICAS_CONVERSATION_TTL_SECONDS` after the last message). A conversation that first crosses the
    threshold is stored for review as a thread."""
    if model is None:
        raise ApiError(422, NO_CONVERSATION_MODEL, "no_conversation_model")
    if len(body.text) > settings.max_text_chars:
        limit = settings.max_text_chars
        raise ApiError(413, f"a message has {len(body.text)} characters; the limit is {limit}", "too_large")
    key = f"{partner.name if partner else '-'}:{conversation_id}"
    async with locks.of(key):  # messages of one conversation in order (per process)
        window = await asyncio.to_thread(windows.get, key)
        people = body.participants or {}
        window.participants.update({k: p.model_dump(exclude_none=True) for k, p in people.items()})
        if window.participants and body.sender not in window.participants:
            raise ApiError(422, f"sender {body.sender!r} is not among the participants", "invalid_input")
        try:
            (text_pred,) = await batcher.classify([body.text])
        except QueueFull as e:
            busy = f"the service is busy ({e}); retry shortly"
            raise ApiError(503, busy, "queue_full", {"Retry-After": "2"}) from e
        probs = await asyncio.to_thread(model.stage_probs, [body.text])  # CPU work: off the event loop
        window.add(body.sender, body.text, probs[0])
        conv = window.conversation()
        risk = await asyncio.to_thread(model.assess, conv, window.prob_array())
        pred, reading = apply_risk(ItemPrediction.from_text(text_pred), risk, [], model.version)
        version = f"{batcher.version}+{model.version}"
        res = build_result(pred, policy, version, None, batcher.engine.calibration)
        res.conversation = reading
        newly_flagged = reading.flagged and not window.flagged
        window.flagged = window.flagged or reading.flagged
        await asyncio.to_thread(windows.put, key, window)
    if newly_flagged:  # the whole thread, once, with the evidence messages marked
        item = thread_item(conv, risk, pred, partner, policy, version, model.version, settings.secret_key)
        outcome = await asyncio.to_thread(store.save, [item])
        metrics.flagged.labels(outcome).inc()
    metrics.items.labels(partner.name if partner else NO_PARTNER).inc()
    rid = request_id_of(request)
    return LiveAnswer(request_id=rid, conversation_id=conversation_id, messages=len(window.texts), **res.model_dump())
