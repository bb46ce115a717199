"""The FastAPI application: /v1 classification, verdicts, taxonomy, health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import model_switch, problems
from serving.batcher import MicroBatcher, QueueFull, SharedCache, content_hash
from serving.config import Settings
from serving.conversations import make_windows
from serving.db import as_utc, make_engine, migrate
from serving.hashes import HashLists, MatchLog, MatchRecord
from serving.keys import (
    KeyStoreUnavailable,
    KeyVerifier,
    Partner,
    Quota,
    count_usage,
    make_rate_limiter,
    usage_by_name,
)
from serving.metrics import NO_PARTNER, Metrics
from serving.problems import ApiError, Problem, openapi_responses, request_id_of
from serving.review import audit
from serving.review.blocklists import (
    Entry,
    blocklist_entries,
    changes_since,
    csv_list,
    hosts_file,
    latest_change,
    rpz_zone,
)
from serving.review.errors import install_error_pages
from serving.review.service import ReviewError, create_appeal, get_appeal, seal
from serving.review.web import LoginRequired, build_router
from serving.store import FlaggedItem, FlagStore, domain_of, lookup_verdict, record_verdict, stored_url
from serving.urls import UrlError
from vicas.classifier import ContentItem, resolve_item
from vicas.combine import ImageReading, ItemPrediction, combine_predictions, texts_for
from vicas.conversation import (
    Conversation,
    ConversationModel,
    ConversationRisk,
    apply_risk,
    conversation_document,
)
from vicas.conversation import Message as ChatMessage
from vicas.engine import TextEngine
from vicas.hashes import (
    UNCROP_FRACTIONS,
    HashMatch,
    ImageHashes,
    apply_matches,
    file_digests,
    hash_image,
    matched_reading,
)
from vicas.image_reader import ImageReader, NamedImage
from vicas.images import ImageError, ImageLimits, PixelBudget, decode_base64, image_size, open_image
from vicas.inference import Evidence
from vicas.nudity import NudityDetector
from vicas.ocr import OcrConfig, ocr_available
from vicas.page import page_images
from vicas.policy import Policy, load_policy, taxonomy_document
from vicas.redact import redact
from vicas.result import ClassificationResult, ConversationResult, HashMatchResult, build_result
from vicas.taxonomy import Band
from vicas.visual import VisualEngine

log = logging.getLogger("vicas.api")


class ImageUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=300, description="a label for the image (file name, URL)")
    data: str = Field(min_length=1, description="the image file in base64, or a data:image/...;base64, URI")


class ConversationMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(min_length=1, max_length=100, description="a participant id")
    text: str = Field(min_length=1, description="what the sender wrote")
    time: datetime | None = Field(None, description="when it was sent (ISO 8601); order is the list's")


class ParticipantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    age: int | None = Field(None, ge=0, le=150, description="when known: a minor is the one protected")
    role: str | None = Field(None, max_length=30, description="child, teen, adult, parent, teacher, ...")


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="plain text to classify (a post, a caption)")
    conversation: list[ConversationMessageIn] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="a conversation, oldest message first: grooming and sextortion are read over the whole "
        "of it (the latest 60 messages), beside each message's own harms",
    )
    participants: dict[str, ParticipantIn] | None = Field(
        None,
        description="who the senders are: {'a': {'age': 12}, 'b': {}}; messages of minors are never "
        "read as grooming evidence",
    )
    html: str | None = Field(
        None, description="an HTML page: its visible text and its embedded (data: URI) images are classified"
    )
    images: list[ImageUpload] = Field(
        default_factory=list, description="images of the item (alone, beside a text, or a page's images)"
    )
    url: str | None = Field(None, max_length=4096, description="where the content was seen (never fetched)")
    audience_age: int | None = Field(None, ge=0, le=150, description="viewer age for the block decision")

    @model_validator(mode="after")
    def _some_content(self) -> ClassifyRequest:
        if self.conversation is not None:
            if self.text is not None or self.html is not None or self.images:
                raise ValueError("a 'conversation' comes alone, without 'text', 'html' or 'images'")
            unknown = {m.sender for m in self.conversation} - set(self.participants or {})
            if self.participants is not None and unknown:
                raise ValueError(f"senders {sorted(unknown)} are not in 'participants'")
            if any(not m.text.strip() for m in self.conversation):
                raise ValueError("a message of the conversation is empty")
            return self
        if self.participants is not None:
            raise ValueError("'participants' belong with a 'conversation'")
        if self.text is not None and self.html is not None:
            raise ValueError("give 'text' or 'html', not both")
        if self.text is None and self.html is None and not self.images:
            raise ValueError("give 'text', 'html', 'images' or 'conversation'")
        for content in (self.text, self.html):
            if content is not None and not content.strip():
                raise ValueError("the content is empty or only whitespace")
        return self


class ClassifyResponse(ClassificationResult):
    request_id: str


class LiveMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(min_length=1, max_length=100, description="a participant id")
    text: str = Field(min_length=1, description="the message")
    participants: dict[str, ParticipantIn] | None = Field(
        None, description="who the senders are; sent once (or whenever it changes), kept with the conversation"
    )


class LiveAnswer(ClassifyResponse):
    conversation_id: str
    messages: int = Field(description="messages in the conversation's window now")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ClassifyRequest] = Field(min_length=1)


class BatchItemError(BaseModel):
    """One batch item that could not be classified; the other items are answered as usual."""

    index: int
    error: Problem


class BatchResponse(BaseModel):
    request_id: str
    results: list[ClassifyResponse | BatchItemError] = Field(
        description="one entry per item, in order: a result, or an `error` (problem details) for that item"
    )


class VerdictResponse(BaseModel):
    url: str
    domain: str
    band: Band
    source: str = Field(description="'reviewed' (a reviewer decided) or 'model'")
    model_version: str | None
    policy_version: str | None
    updated_at: datetime = Field(description="ISO 8601, UTC, with its offset")


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: int | None = Field(None, ge=1, description="the stored item (from a flagged classification)")
    url: str | None = Field(None, max_length=4096, description="or the URL whose verdict is appealed")
    reason: str = Field(min_length=1, max_length=5000)


class AppealResponse(BaseModel):
    id: int
    item_id: int | None
    url: str | None
    status: str = Field(description="open | upheld | overturned")
    decided_band: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None


class BlocklistEntry(BaseModel):
    host: str = Field(description="the host to block by name (empty when the URL has none usable)")
    url: str
    band: Band
    updated_at: datetime


class BlocklistChanges(BaseModel):
    version: datetime = Field(description="send it as `since` next time")
    min_band: Band
    block: list[BlocklistEntry]
    unblock: list[BlocklistEntry]


BLOCKLIST_FORMATS: dict[str, tuple[Callable[[list[Entry], Band, datetime], str], str]] = {
    "hosts": (hosts_file, "text/plain"),
    "rpz": (rpz_zone, "text/dns"),
    "csv": (csv_list, "text/csv"),
}


class UsageDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD, UTC")
    requests: int
    items: int


class UsageResponse(BaseModel):
    partner: str
    days: list[UsageDay]


class BodyLimit:
    """Answer 413 to bodies over the limit, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(problems.REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        state = scope.setdefault("state", {})  # request.state, shared by every layer
        rid = state.get("request_id") or problems.new_request_id(given)
        state["request_id"] = rid
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send, rid)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(send, rid)

    async def _too_large(self, send: Send, request_id: str) -> None:
        detail = f"the request body is over {self.max_bytes} bytes (VICAS_MAX_BODY_BYTES)"
        body = json.dumps(problems.problem_body(413, detail, "body_too_large", request_id)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", problems.PROBLEM_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (problems.REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecureOverHttps:
    """Mark cookies Secure on answers to HTTPS requests: a console reached over HTTPS never sends its
    session over plain HTTP, and one reached over http://127.0.0.1 on a laptop still logs in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v + b"; secure" if k.lower() == b"set-cookie" and b"secure" not in v.lower() else v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, secure)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None,
    engine: TextEngine | None = None,
    image_reader: ImageReader | None = None,
    conversation_model: ConversationModel | None = None,
) -> FastAPI:
    """Build the app. `engine`, `image_reader` and `conversation_model` let tests inject models; otherwise
    settings name them."""
    settings = settings or Settings()
    policy = load_policy(settings.policy_path)
    metrics = Metrics()
    limiter = make_rate_limiter(settings.redis_url)
    db = make_engine(settings.database_url)
    store = FlagStore(db, settings.spool_dir)
    keys = KeyVerifier(db, settings.key_cache_seconds)
    hash_lists = HashLists(db)  # known-material hash lists, in memory, reloaded when they change
    match_log = MatchLog(db, settings.spool_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(migrate, settings.database_url)
            app.state.schema = "ok"
        except OperationalError as e:  # unreachable: classify anyway, spool flagged items, migrate when it returns
            log.error("database unreachable at start (%s): serving degraded, migration retried", e.__class__.__name__)
            app.state.schema = "pending: database unreachable at start"
        except Exception as e:  # a migration that fails is a broken deployment, not an outage
            raise RuntimeError(
                f"database migration failed ({e.__class__.__name__}: {e}); the service will not start on a "
                "half-migrated schema. Fix the database or the migration (alembic history), then restart."
            ) from e
        await asyncio.to_thread(_load_hash_lists, hash_lists)
        text_engine = engine or TextEngine(settings.model_dir, threads=settings.ort_threads)
        shared = SharedCache(settings.redis_url) if settings.redis_url else None
        batcher = MicroBatcher(
            text_engine,
            settings.max_batch_size,
            settings.batch_wait_ms,
            settings.cache_items,
            shared,
            settings.max_queue,
            on_cache_hit=lambda cache: metrics.cache_hits.labels(cache).inc(),
        )
        await batcher.start()
        app.state.batcher = batcher
        app.state.images = image_reader or make_image_reader(settings)
        app.state.refused_model, app.state.model_error = None, None
        app.state.conversations = conversation_model or load_conversation_model(settings.conversation_model_dir)
        _record_serving(app)
        flusher = asyncio.create_task(_maintenance_loop(maintenance_steps(app)))
        yield
        flusher.cancel()
        await batcher.stop()
        db.dispose()

    app = FastAPI(
        title="vicas classification API",
        version="1",
        description="Age bands and harm categories for Vietnamese web content. Partners authenticate with "
        "`Authorization: Bearer KEY` (created by `vicas keys create`). Every error is RFC 9457 problem+json "
        "with a stable `code`; every answer carries `X-Request-ID` (yours, when you send a sane one); keyed "
        "answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    audit.configure(settings.secret_key)
    session_secret = settings.secret_key or secrets.token_urlsafe(32)
    if not settings.secret_key:
        log.warning("VICAS_SECRET_KEY is not set: console sessions end on restart and originals are not sealed")
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie="vicas_console",
        max_age=8 * 3600,
        same_site="strict",
        https_only=bool(settings.secure_cookies),
    )
    if settings.secure_cookies is None:
        app.add_middleware(SecureOverHttps)
    app.include_router(build_router(settings, db, policy))
    install_error_pages(app, db)  # console paths: HTML error pages in the reviewer's language; /v1 keeps problem+json

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        rid = request_id_of(request)
        try:
            response = await call_next(request)
        except Exception:  # answered 500 by the problem handler outside this middleware: count it here
            _observe(request, "500", start)
            raise
        response.headers[problems.REQUEST_ID_HEADER] = rid
        _observe(request, str(response.status_code), start)
        return response

    def _observe(request: Request, status: str, start: float) -> None:
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        partner = getattr(request.state, "partner", None) or NO_PARTNER
        metrics.requests.labels(path, request.method, status, partner).inc()
        metrics.latency.labels(path, request.method).observe(time.perf_counter() - start)

    bearer = HTTPBearer(auto_error=False, description="a partner key from `vicas keys create`")

    def partner_for(scope: str | None) -> Callable[..., Partner | None]:
        """A dependency that verifies the key, checks `scope` (None: any valid key) and charges one item."""

        def dependency(
            request: Request,
            response: Response,
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
        ) -> Partner | None:
            if not settings.require_api_key:
                return None
            challenge = {"WWW-Authenticate": "Bearer"}
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise ApiError(401, "send your API key as 'Authorization: Bearer KEY'", "missing_key", challenge)
            try:
                partner = keys.verify(credentials.credentials.strip())
            except KeyStoreUnavailable as e:
                raise ApiError(
                    503, "the key store is unreachable; retry shortly", "key_store_unreachable", {"Retry-After": "5"}
                ) from e
            if partner is None:
                raise ApiError(401, "unknown or revoked API key", "invalid_key", challenge)
            request.state.partner = partner.name  # the per-partner label of the request metrics
            if scope is not None and scope not in partner.scopes:
                raise ApiError(403, f"this key lacks the '{scope}' scope", "missing_scope")
            charge(partner, 1, response)
            return partner

        return dependency

    def charge(partner: Partner, cost: int, response: Response) -> Quota:
        """Take `cost` items from the partner's rate limit; 429 when it is spent; headers on the answer."""
        quota = limiter.acquire(partner, cost)
        if quota.wait > 0:
            metrics.rate_limited.labels(partner.name).inc()
            raise ApiError(
                429,
                f"rate limit of {partner.rate_limit_per_minute} items per minute reached",
                "rate_limited",
                quota.headers(),
            )
        response.headers.update(quota.headers())
        return quota

    classify_key = Depends(partner_for("classify"))
    verdicts_key = Depends(partner_for("verdicts"))

    limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)

    def resolve(
        it: ClassifyRequest, uploads: list[NamedImage], reader: ImageReader | None, budget: PixelBudget
    ) -> _Resolved:
        """Decode images and pages (CPU work: runs in a worker thread); ImageError for what cannot be read.

        Images are counted, and their pixels added to the request's budget from their headers, before any
        is decoded: a few small files that decode to gigabytes are refused without being decoded.
        """
        if it.conversation is not None:
            conv = Conversation(
                [ChatMessage(m.sender, m.text) for m in it.conversation],
                {k: p.model_dump(exclude_none=True) for k, p in (it.participants or {}).items()},
            )
            document, spans = conversation_document(conv)
            if len(document) > settings.max_text_chars:
                raise ImageError(
                    f"the conversation has {len(document)} characters; the limit is {settings.max_text_chars}", 413
                )
            return _Resolved(it, document, [], conv, spans)
        embedded = [p for p in page_images(it.html) if p.embedded] if it.html is not None else []
        count = len(uploads) + len(it.images) + len(embedded)
        if count > settings.max_images_per_item:
            raise ImageError(f"{count} images in one item; the limit is {settings.max_images_per_item}", status=413)
        raw = []
        # the digests of each image's file, in the order resolve_item lists the images: uploads, base64, page
        digests: list[tuple[str, str] | None] = [u.digests if isinstance(u, _Upload) else None for u in uploads]
        for i, up in enumerate(it.images):
            name = up.name or f"image {i}"
            data = decode_base64(up.data, name)
            w, h = image_size(data, limits, name)
            budget.take(w * h, name)
            raw.append((name, data))
            digests.append(file_digests(data))
        for i, p in enumerate(embedded):
            name = p.label(i)
            data = decode_base64(p.src, name)
            w, h = image_size(data, limits, name)
            budget.take(w * h, name)
            digests.append(file_digests(data))
        images = list(uploads)
        images += [NamedImage(name, open_image(data, limits, name)) for name, data in raw]
        text, images = resolve_item(
            ContentItem(it.text, it.html, images), limits, settings.max_images_per_item, reader is not None
        )
        if text is not None and len(text) > settings.max_text_chars:
            raise ImageError(f"an item has {len(text)} characters; the limit is {settings.max_text_chars}", 413)
        hashes, matches = match_images(images, digests)
        return _Resolved(it, text, images, hashes=hashes, matches=matches)

    def match_images(
        images: list[NamedImage], digests: list[tuple[str, str] | None]
    ) -> tuple[list[ImageHashes], list[HashMatch]]:
        """Every image's hashes and its match in the hash lists, before any model reads it (nothing to do
        while no list is loaded). A matched image is then never read: see `read_unmatched`."""
        index = hash_lists.index  # one snapshot for the whole item: a reload swaps in a new index
        if not images or not len(index):
            return [], []
        uncrop = UNCROP_FRACTIONS if settings.pdq_uncrop else ()
        hashes = [hash_image(n.image, d, uncrop) for n, d in zip(images, digests, strict=True)]
        found = [index.match(k, h, settings.pdq_max_distance, settings.pdq_min_quality) for k, h in enumerate(hashes)]
        return hashes, [m for m in found if m is not None]

    async def classify_items(
        items: list[ClassifyRequest],
        partner: Partner | None,
        request_id: str,
        app_state: Any,
        uploads: list[NamedImage] | None = None,
    ) -> list[ClassifyResponse | BatchItemError]:
        """Classify items together; an item that cannot be read gets its own error, the others go on."""
        batcher: MicroBatcher = app_state.batcher
        reader: ImageReader | None = app_state.images
        resolved: list[tuple[int, _Resolved]] = []
        answers: list[ClassifyResponse | BatchItemError | None] = [None] * len(items)
        budget = PixelBudget(settings.max_request_pixels)
        try:
            for up in uploads or []:  # multipart files were decoded one by one under the per-image limits
                budget.take(up.image.width * up.image.height, up.name)
        except ImageError as e:
            raise ApiError(e.status, str(e), problems.CODES.get(e.status, "invalid_input")) from e
        for n, it in enumerate(items):
            try:
                if it.conversation is not None and app_state.conversations is None:
                    raise ImageError(NO_CONVERSATION_MODEL, 422)
                resolved.append((n, await asyncio.to_thread(resolve, it, uploads or [], reader, budget)))
            except ImageError as e:
                answers[n] = BatchItemError(
                    index=n,
                    error=Problem(**problems.problem_body(e.status, str(e), request_id=request_id)),
                )
        readings = [await asyncio.to_thread(read_unmatched, reader, r) for _, r in resolved]
        jobs = [texts_for(r.text, rd) for (_, r), rd in zip(resolved, readings, strict=True)]
        flat = [t for job in jobs for t in job]
        try:
            preds = await batcher.classify(flat) if flat else []
        except QueueFull as e:
            raise ApiError(503, f"the service is busy ({e}); retry shortly", "queue_full", {"Retry-After": "2"}) from e
        version = batcher.version
        review_risk = batcher.engine.calibration.review_risk
        store_key = uuid.uuid4().hex  # item keys are ours: a partner may reuse its request ids
        flagged, pos = [], 0
        matched: list[MatchRecord] = []
        for (i, r), rd, job in zip(resolved, readings, jobs, strict=True):
            pred = apply_matches(combine_predictions(r.text, rd, preds[pos : pos + len(job)]), r.matches)
            pos += len(job)
            item_version = f"{version}+{reader.version}" if r.images and reader else version
            reading = None
            if r.conversation is not None:
                pred, reading = await asyncio.to_thread(read_conversation, r, pred, app_state.conversations)
                item_version = f"{version}+{reading.model_version}"
            res = build_result(pred, policy, item_version, r.request.audience_age, review_risk)
            res.conversation = reading
            res.hash_matches = [HashMatchResult(**vars(m)) for m in r.matches]
            answers[i] = ClassifyResponse(request_id=request_id, **res.model_dump())
            metrics.bands.labels(res.band.value).inc()
            metrics.images.inc(len(r.images))
            digest = r.content_hash()
            if res.band >= settings.flag_band or res.band is Band.C or res.needs_review:
                flagged.append(_flagged_item(f"{store_key}:{i}", r, digest, partner, pred, res, settings.secret_key))
            for m in r.matches:  # band C: always flagged. What is logged names the list, never the image
                log.warning(
                    "item %s:%d image %d is in hash list %s (version %s, %s distance %d): blocked and reported",
                    store_key,
                    i,
                    m.image,
                    m.list_name,
                    m.list_version,
                    m.hash_type,
                    m.distance,
                )
                partner_name = partner.name if partner else None
                matched.append(MatchRecord.of(f"{store_key}:{i}", m, r.hashes[m.image], partner_name))
            if r.request.url:
                await asyncio.to_thread(
                    _safe_verdict,
                    db,
                    r.request.url,
                    res.band.value,
                    "model",
                    digest,
                    item_version,
                    res.policy_version,
                )
        metrics.items.labels(partner.name if partner else NO_PARTNER).inc(len(resolved))
        if flagged:
            outcome = await asyncio.to_thread(store.save, flagged)
            metrics.flagged.labels(outcome).inc(len(flagged))
        if matched:  # beside its flagged item; spooled like it while the database is unreachable
            await asyncio.to_thread(match_log.save, matched)
        if partner is not None:
            await asyncio.to_thread(_safe_usage, db, partner.id, len(resolved))
        return [a for a in answers if a is not None]

    @app.post(
        "/v1/classify",
        response_model=ClassifyResponse,
        tags=["classify"],
        openapi_extra=_classify_openapi(),
        responses=openapi_responses(401, 403, 413, 422, 429, 503),
    )
    async def classify(request: Request, partner: Partner | None = classify_key) -> ClassifyResponse:
        """Classify one item: a text, an HTML page (with its embedded images), images, or a text with images.

        Send JSON (`ClassifyRequest`, images in base64) or `multipart/form-data` with the same fields and
        image files (any file field). Answer: band, categories with evidence (each naming its source:
        the text, an image's OCR words with boxes, the visual model), per-image verdicts, actions, reasons.
        """
        body, uploads = await _read_classify_request(request, limits, settings.max_images_per_item)
        answer = (await classify_items([body], partner, request_id_of(request), request.app.state, uploads))[0]
        if isinstance(answer, BatchItemError):
            raise ApiError(answer.error.status, answer.error.detail, answer.error.code)
        return answer

    @app.post(
        "/v1/classify/batch",
        response_model=BatchResponse,
        tags=["classify"],
        responses=openapi_responses(401, 403, 413, 422, 429, 503),
    )
    async def classify_batch(
        body: BatchRequest, request: Request, response: Response, partner: Partner | None = classify_key
    ) -> BatchResponse:
        """Classify up to `VICAS_MAX_BATCH_ITEMS` items in one call; an item that cannot be read (a bad image,
        too many pixels) gets its own `error` entry and the others are classified."""
        if len(body.items) > settings.max_batch_items:
            raise HTTPException(413, f"{len(body.items)} items; the batch limit is {settings.max_batch_items}")
        if partner is not None and len(body.items) > 1:
            charge(partner, len(body.items) - 1, response)
        rid = request_id_of(request)
        return BatchResponse(request_id=rid, results=await classify_items(body.items, partner, rid, request.app.state))

    @app.get(
        "/v1/verdicts",
        response_model=VerdictResponse,
        tags=["verdicts"],
        responses=openapi_responses(401, 403, 404, 422, 429, 503),
    )
    async def get_verdict(
        url: Annotated[str | None, Query(max_length=4096)] = None,
        domain: Annotated[str | None, Query(max_length=255)] = None,
        partner: Partner | None = verdicts_key,
    ) -> VerdictResponse:
        """The latest verdict on a URL or a domain; reviewed verdicts take precedence over the model's."""
        if (url is None) == (domain is None):
            raise HTTPException(422, "give exactly one of 'url' or 'domain'")
        try:
            found = await asyncio.to_thread(lookup_verdict, db, url, domain)
        except UrlError as e:
            raise ApiError(422, str(e), "invalid_url") from e
        if found is None:
            raise HTTPException(404, "no verdict recorded for that URL or domain")
        return VerdictResponse(**{k: found[k] for k in VerdictResponse.model_fields})

    appeals_key = Depends(partner_for("appeals"))
    any_key = Depends(partner_for(None))

    @app.post(
        "/v1/appeals",
        response_model=AppealResponse,
        status_code=201,
        tags=["appeals"],
        responses=openapi_responses(401, 403, 422, 429, 503),
    )
    async def appeal(body: AppealRequest, partner: Partner | None = appeals_key) -> AppealResponse:
        """Appeal a verdict (by the stored item id or the URL); reviewers decide it in the console."""
        try:
            appeal_id = await asyncio.to_thread(
                create_appeal, db, partner.name if partner else None, body.reason, body.item_id, body.url
            )
        except ReviewError as e:
            raise HTTPException(422, str(e)) from e
        return AppealResponse(**(await asyncio.to_thread(get_appeal, db, appeal_id) or {}))

    @app.get(
        "/v1/appeals/{appeal_id}",
        response_model=AppealResponse,
        tags=["appeals"],
        responses=openapi_responses(401, 403, 404, 422, 429, 503),
    )
    async def appeal_status(appeal_id: int, partner: Partner | None = appeals_key) -> AppealResponse:
        """An appeal's status and, once decided, the outcome and band."""
        found = await asyncio.to_thread(get_appeal, db, appeal_id)
        if found is None or (partner is not None and found["partner"] != partner.name):
            raise HTTPException(404, "no such appeal for this key")
        return AppealResponse(**found)

    windows = make_windows(settings.redis_url, settings.conversation_ttl_seconds)
    # striped locks: messages of one conversation are handled in order, without a lock kept per conversation
    window_locks = [asyncio.Lock() for _ in range(256)]

    @app.post(
        "/v1/conversations/{conversation_id}/messages",
        response_model=LiveAnswer,
        tags=["classify"],
        responses=openapi_responses(401, 403, 413, 422, 429, 503),
    )
    async def live_message(
        conversation_id: Annotated[str, FastPath(pattern=r"^[A-Za-z0-9._:-]{1,100}$")],
        body: LiveMessage,
        request: Request,
        partner: Partner | None = classify_key,
    ) -> LiveAnswer:
        """One message of a live conversation, as it comes: the message's own harms and the conversation's
        current grooming risk over its latest 60 messages (kept per partner for
        `VICAS_CONVERSATION_TTL_SECONDS` after the last message). A conversation that first crosses the
        threshold is stored for review as a thread."""
        model: ConversationModel | None = request.app.state.conversations
        if model is None:
            raise ApiError(422, NO_CONVERSATION_MODEL, "no_conversation_model")
        if len(body.text) > settings.max_text_chars:
            limit = settings.max_text_chars
            raise ApiError(413, f"a message has {len(body.text)} characters; the limit is {limit}", "too_large")
        key = f"{partner.name if partner else '-'}:{conversation_id}"
        lock = window_locks[int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(window_locks)]
        async with lock:  # messages of one conversation in order (per process)
            window = await asyncio.to_thread(windows.get, key)
            people = body.participants or {}
            window.participants.update({k: p.model_dump(exclude_none=True) for k, p in people.items()})
            if window.participants and body.sender not in window.participants:
                raise ApiError(422, f"sender {body.sender!r} is not among the participants", "invalid_input")
            batcher: MicroBatcher = request.app.state.batcher
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
            res = build_result(pred, policy, version, None, batcher.engine.calibration.review_risk)
            res.conversation = reading
            newly_flagged = reading.flagged and not window.flagged
            window.flagged = window.flagged or reading.flagged
            await asyncio.to_thread(windows.put, key, window)
        if newly_flagged:  # the whole thread, once, with the evidence messages marked
            item = _thread_item(conv, risk, pred, partner, policy, version, model.version, settings.secret_key)
            outcome = await asyncio.to_thread(store.save, [item])
            metrics.flagged.labels(outcome).inc()
        metrics.items.labels(partner.name if partner else NO_PARTNER).inc()
        rid = request_id_of(request)
        return LiveAnswer(
            request_id=rid, conversation_id=conversation_id, messages=len(window.texts), **res.model_dump()
        )

    @app.get("/v1/usage", response_model=UsageResponse, tags=["keys"], responses=openapi_responses(401, 429, 503))
    async def own_usage(
        days: Annotated[int, Query(ge=1, le=366)] = 31, partner: Partner | None = any_key
    ) -> UsageResponse:
        """Your requests and items per day (UTC) over all your keys, oldest first; today is still counting."""
        if partner is None:
            raise ApiError(404, "usage is counted per key; this service runs without keys", "no_keys")
        rows = await asyncio.to_thread(usage_by_name, db, partner.name, days)
        return UsageResponse(partner=partner.name, days=[UsageDay.model_validate(r) for r in rows])

    blocklists_key = Depends(partner_for("blocklists"))

    @app.get(
        "/v1/blocklists/changes",
        response_model=BlocklistChanges,
        tags=["blocklists"],
        responses=openapi_responses(401, 403, 422, 429, 503),
    )
    async def blocklist_changes(
        since: Annotated[datetime | None, Query(description="`version` of your last fetch (ISO 8601)")] = None,
        min_band: Band = Band.T18,
        partner: Partner | None = blocklists_key,
    ) -> BlocklistChanges:
        """What changed in the reviewed blocklist since your last fetch: URLs to block, URLs to unblock (a
        reviewer lowered them below `min_band`), and the `version` to send as `since` next time."""
        start = as_utc(since) if since else datetime(1970, 1, 1, tzinfo=UTC)
        block, unblock = await asyncio.to_thread(changes_since, db, start, min_band)
        latest = await asyncio.to_thread(latest_change, db)
        return BlocklistChanges(
            version=max(latest, start) if latest else start,
            min_band=min_band,
            block=[BlocklistEntry(host=e.host, url=e.url, band=e.band, updated_at=e.updated_at) for e in block],
            unblock=[BlocklistEntry(host=e.host, url=e.url, band=e.band, updated_at=e.updated_at) for e in unblock],
        )

    @app.get(
        "/v1/blocklists/{fmt}",
        tags=["blocklists"],
        response_class=PlainTextResponse,
        responses={
            200: {"description": "the list, with ETag", "content": {"text/plain": {}}},
            304: {"description": "unchanged since the ETag sent in If-None-Match"},
            **openapi_responses(401, 403, 422, 429, 503),
        },
    )
    async def blocklist_feed(
        fmt: Literal["hosts", "rpz", "csv"],
        request: Request,
        min_band: Band = Band.T18,
        partner: Partner | None = blocklists_key,
    ) -> Response:
        """The reviewed blocklist as a hosts file, a DNS RPZ zone or CSV (see the README). Its version is the
        time of the last reviewed change, so an unchanged list is byte for byte the same: send the ETag
        back in If-None-Match and get 304 until it changes."""
        entries = await asyncio.to_thread(blocklist_entries, db, min_band)
        latest = await asyncio.to_thread(latest_change, db) or datetime(2000, 1, 1, tzinfo=UTC)
        make, media = BLOCKLIST_FORMATS[fmt]
        body = make(entries, min_band, latest)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=60", "Last-Modified": format_datetime(latest, True)}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return PlainTextResponse(body, media_type=f"{media}; charset=utf-8", headers=headers)

    @app.get("/v1/taxonomy", tags=["contract"])
    async def taxonomy() -> dict[str, Any]:
        """Bands, categories, allowed severities and the policy's bands."""
        return taxonomy_document(policy)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> JSONResponse:
        batcher: MicroBatcher | None = getattr(request.app.state, "batcher", None)
        db_ok = await asyncio.to_thread(_db_ok, db)
        spooled = store.spooled_count()
        degraded = []
        if not db_ok:
            degraded.append("database unreachable: keys verified lately are accepted, flagged items are spooled")
        elif spooled:
            degraded.append(f"{spooled} flagged items wait in the spool")
        if limiter.degraded:
            degraded.append("redis unreachable: rate limits are kept per process")
        if getattr(request.app.state, "model_error", None):
            degraded.append(request.app.state.model_error)
        if not hash_lists.loaded:
            degraded.append("hash lists not loaded yet (database unreachable): images are not matched against them")
        body = {
            "status": "unavailable" if batcher is None else "degraded" if degraded else "ok",
            "degraded": degraded,
            "model": batcher.version if batcher else None,
            "database": "ok" if db_ok else "unreachable",
            "schema": getattr(request.app.state, "schema", None),
            "spooled": spooled,
        }
        return JSONResponse(body, status_code=200 if batcher else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus(request: Request) -> Response:
        metrics.spooled.set(await asyncio.to_thread(store.spooled_count))
        return Response(await asyncio.to_thread(metrics.exposition), media_type=CONTENT_TYPE_LATEST)

    def maintenance_steps(app: FastAPI) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        async def migrate_if_pending() -> None:  # the start found the database unreachable
            if getattr(app.state, "schema", "ok") != "ok":
                await asyncio.to_thread(migrate, settings.database_url)
                app.state.schema = "ok"
                log.info("database reachable again: schema migrated")

        return [
            ("migration", migrate_if_pending),
            ("spool flush", lambda: flush_once(store, metrics)),
            ("key re-check", lambda: asyncio.to_thread(keys.recheck)),
            ("model switch", lambda: follow_model(app)),
            ("hash lists", lambda: asyncio.to_thread(hash_lists.refresh)),
            ("hash match spool", lambda: asyncio.to_thread(match_log.flush_spool)),
        ]

    async def follow_model(app: FastAPI) -> None:
        """Swap to the model an operator activated (`vicas models activate`), once; a refused one is
        reported in /readyz and not retried until another is activated."""
        want = await asyncio.to_thread(model_switch.requested, db)
        batcher: MicroBatcher = app.state.batcher
        if want is None or want == batcher.engine.folder.resolve() or want == app.state.refused_model:
            return
        try:
            model_switch.inside_root(settings.models_root, want)
            version = await batcher.swap(want, settings.ort_threads)
        except Exception as e:
            app.state.refused_model = want
            app.state.model_error = f"model {want} refused, still serving {batcher.version}: {e}"
            log.error("%s", app.state.model_error)
            return
        app.state.model_error = None
        _record_serving(app)
        log.info("now serving %s from %s", version, want)

    def _record_serving(app: FastAPI) -> None:
        reader: ImageReader | None = app.state.images
        metrics.serving(app.state.batcher.version, reader.version if reader else None, policy.version)

    problems.document(app)
    app.state.store = store
    app.state.keys = keys
    app.state.hash_lists = hash_lists
    app.state.match_log = match_log
    app.state.db = db
    app.state.settings = settings
    return app


@dataclass
class _Resolved:
    """One request item with its text and decoded images."""

    request: ClassifyRequest
    text: str | None
    images: list[NamedImage]
    conversation: Conversation | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)  # each message's text in `text`
    hashes: list[ImageHashes] = field(default_factory=list)  # per image, when hash lists are loaded
    matches: list[HashMatch] = field(default_factory=list)  # images found in a hash list: never read

    def content_hash(self) -> str:
        parts = [self.text or ""] + [hashlib.sha256(n.image.tobytes()).hexdigest() for n in self.images]
        return content_hash("\x00".join(parts))


@dataclass
class _Upload(NamedImage):
    """A multipart file, decoded, with the MD5 and SHA-256 of its bytes (the bytes are not kept)."""

    digests: tuple[str, str] | None = None


def _open_upload(data: bytes, limits: ImageLimits, name: str) -> _Upload:
    return _Upload(name, open_image(data, limits, name), file_digests(data))


def read_unmatched(reader: ImageReader | None, item: _Resolved) -> list[ImageReading]:
    """The image models' readings of an item's images, in order. An image found in a hash list is not read
    (no OCR, no visual model, no nudity detector): it stands as its size and a neutral name."""
    if not item.images or reader is None:
        return []
    matched = {m.image for m in item.matches}
    todo = [n for k, n in enumerate(item.images) if k not in matched]
    read = iter(reader.read(todo) if todo else [])
    return [
        matched_reading(k, n.image.width, n.image.height) if k in matched else next(read)
        for k, n in enumerate(item.images)
    ]


def _load_hash_lists(lists: HashLists) -> None:
    """The first load at start; while the database is unreachable the maintenance loop retries it."""
    try:
        lists.refresh()
    except Exception as e:
        log.error("hash lists not loaded (%s): images are not matched until they are", e.__class__.__name__)


def _thread_item(
    conv: Conversation,
    risk: ConversationRisk,
    pred: ItemPrediction,
    partner: Partner | None,
    policy: Policy,
    version: str,
    conversation_version: str,
    secret: str | None,
) -> FlaggedItem:
    """A live conversation that crossed the threshold, as the review store keeps it: the thread as one text,
    the evidence messages marked, personal data masked."""
    document, spans = conversation_document(conv)
    request = ClassifyRequest(conversation=[ConversationMessageIn(sender=m.sender, text=m.text) for m in conv.messages])
    thread = _Resolved(request, document, [], conv, spans)
    doc_pred, _ = apply_risk(
        ItemPrediction(dict(pred.severities), dict(pred.scores), []), risk, spans, conversation_version
    )
    doc_res = build_result(doc_pred, policy, version)
    return _flagged_item(f"live:{uuid.uuid4().hex}", thread, content_hash(document), partner, doc_pred, doc_res, secret)


def review_document(text: str | None, pred: ItemPrediction) -> tuple[str, dict[str, int]]:
    """What a reviewer reads for an item: its text, then per image a header, its findings and its OCR text.

    Images themselves are not stored (they may be abuse material); returns the document and, per
    evidence source, the offset at which that source's text starts in it.
    """
    doc, offsets = text or "", {"text": 0}
    for part in pred.images:
        found = ", ".join(f"{c} {v} ({'+'.join(part.sources.get(c, []))})" for c, v in part.severities.items() if v)
        header = f"[ảnh {part.index + 1}: {part.reading.name}; {found or 'không phát hiện'}]"
        doc += ("\n\n" if doc else "") + header + "\n"
        offsets[f"image:{part.index}:ocr"] = len(doc)
        doc += part.reading.ocr_text
    return doc, offsets


def _flagged_item(
    key: str,
    item: _Resolved,
    digest: str,
    partner: Partner | None,
    pred: ItemPrediction,
    res: ClassificationResult,
    secret: str | None,
) -> FlaggedItem:
    """What the review store keeps: personal data masked (evidence offsets moved onto the masked text),
    the original sealed with the secret key for roles allowed to reveal it."""
    doc, offsets = review_document(item.text, pred)
    placed = [
        (e, offsets[e.source] + e.start, offsets[e.source] + e.end)
        for e in res.evidence
        if e.start is not None and e.end is not None and e.source in offsets
    ]
    red = redact(doc, [Evidence(e.category, s, t, "", e.score) for e, s, t in placed], {"personal_data"})
    evidence = []
    for e, s0, t0 in placed:
        s, t = red.map_span(s0, t0)
        evidence.append({**e.model_dump(), "start": s, "end": t, "text": red.text[s:t]})
    evidence += [{**e.model_dump(), "text": e.text} for e in res.evidence if e.start is None]
    url = stored_url(item.request.url)  # no query string: a child's phone number travels there
    return FlaggedItem(
        item_key=key,
        content_hash=digest,
        partner=partner.name if partner else None,
        url=url,
        domain=domain_of(url),
        band=res.band.value,
        categories={c: v.model_dump() for c, v in res.categories.items()},
        evidence=evidence,
        text=red.text,
        model_version=res.model_version,
        policy_version=res.policy_version,
        created_at=datetime.now(UTC).isoformat(),
        private=seal(doc, secret) if red.replaced else None,
        needs_review=res.needs_review,
        under_rating_risk=res.under_rating_risk,
        decision={
            "band": res.band.value,
            "actions": list(res.actions),
            "reasons": [r.model_dump(mode="json") for r in res.reasons],
            "policy_version": res.policy_version,
            "needs_review": res.needs_review,
        },
    )


NO_CONVERSATION_MODEL = "conversations need the conversation model: run `dvc repro train_conversations`"


def load_conversation_model(folder: Path | None) -> ConversationModel | None:
    if folder is None or not (folder / "conversation.json").exists():
        log.warning("no conversation model in %s: conversations are refused (dvc repro train_conversations)", folder)
        return None
    return ConversationModel.load(folder)  # a damaged model stops the start


def read_conversation(
    item: _Resolved, pred: ItemPrediction, model: ConversationModel | None
) -> tuple[ItemPrediction, ConversationResult]:
    """The grooming reading of a conversation item, folded into its prediction."""
    if model is None or item.conversation is None:
        raise ImageError(NO_CONVERSATION_MODEL, 422)
    risk = model.assess(item.conversation)
    return apply_risk(pred, risk, item.spans, model.version)


def make_image_reader(settings: Settings) -> ImageReader | None:
    """OCR when Tesseract is installed, the image model when its folder exists, NudeNet when enabled."""
    visual = None
    folder = settings.image_model_dir
    if folder is not None and (folder / "manifest.json").exists():
        visual = VisualEngine(folder, threads=settings.ort_threads)  # a damaged artefact stops the start
    elif folder is not None:
        log.warning("no image model in %s: images are read by OCR only (run `dvc repro export_image`)", folder)
    ocr = None
    if settings.ocr:
        if ocr_available():
            ocr = OcrConfig()
        else:
            log.warning(
                "tesseract with Vietnamese data is not installed: no OCR (apt-get install %s)",
                "tesseract-ocr tesseract-ocr-vie",
            )
    nudity = NudityDetector() if settings.nudenet else None
    if visual is None and ocr is None and nudity is None:
        log.warning("no image reader: requests with images are refused (422)")
        return None
    return ImageReader(visual, ocr, nudity)


async def _read_classify_request(
    request: Request, limits: ImageLimits, max_images: int
) -> tuple[ClassifyRequest, list[NamedImage]]:
    """A JSON body, or a multipart form with the same fields plus image files."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=max_images, max_fields=20, max_part_size=limits.max_bytes)
        except Exception as e:  # malformed multipart, too many parts, a part too large
            raise HTTPException(422 if "limit" not in str(e).lower() else 413, f"unreadable form: {e}") from e
        fields: dict[str, Any] = {}
        files: list[tuple[str, bytes]] = []
        for key, value in form.multi_items():
            if isinstance(value, StarletteUpload):
                files.append((value.filename or key, await value.read()))
            elif key in ("text", "html", "url"):
                fields[key] = value
            elif key == "audience_age":
                fields[key] = value if value.strip() else None
            else:
                raise HTTPException(422, f"unknown form field {key!r} (text, html, url, audience_age, files)")
        try:
            # the uploaded files stand in for 'images' while the fields are validated; they are decoded below
            stand_in = [{"name": name[:300], "data": "-"} for name, _ in files]
            body = ClassifyRequest.model_validate({**fields, "images": stand_in}).model_copy(update={"images": []})
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from e
        if not files and body.text is None and body.html is None:
            raise HTTPException(422, "give 'text', 'html' or image files")
        uploads: list[NamedImage] = []
        for name, data in files:
            try:
                uploads.append(await asyncio.to_thread(_open_upload, data, limits, name))
            except ImageError as e:
                raise HTTPException(e.status, str(e)) from e
        return body, uploads
    try:
        raw = await request.json()
    except Exception as e:
        raise HTTPException(422, "the body must be JSON (or multipart/form-data with image files)") from e
    try:
        return ClassifyRequest.model_validate(raw), []
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from e


def _classify_openapi() -> dict[str, Any]:
    schema = ClassifyRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    form = {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "html": {"type": "string"},
            "url": {"type": "string", "maxLength": 4096},
            "audience_age": {"type": "integer", "minimum": 0, "maximum": 150},
            "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {k: v for k, v in schema.items() if k != "$defs"}},
                "multipart/form-data": {"schema": form},
            },
        }
    }


def _db_ok(db: Any) -> bool:
    try:
        with db.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return True
    except Exception:
        return False


def _safe_verdict(db: Any, *args: Any) -> None:
    try:
        record_verdict(db, *args)
    except Exception as e:
        log.warning("verdict not recorded: %s", e.__class__.__name__)


def _safe_usage(db: Any, partner_id: int, items: int) -> None:
    try:
        count_usage(db, partner_id, items)
    except Exception as e:
        log.warning("usage not counted: %s", e.__class__.__name__)


async def _maintenance_loop(steps: list[tuple[str, Callable[[], Awaitable[object]]]], every: float = 2.0) -> None:
    """Run every step each `every` seconds, for ever. A failing step is logged and tried again next round: a
    dead loop would leave flagged items in the spool, revoked keys in the cache and workers on an old model.
    While the database is down the round stops at the first step that needs it (one line, no traceback)."""
    while True:
        await asyncio.sleep(every)
        for name, step in steps:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except OperationalError as e:
                log.warning("database unreachable (%s): %s and what follows wait", e.__class__.__name__, name)
                break
            except Exception:
                log.exception("%s failed; retrying in %.0f s", name, every)


async def flush_once(store: FlagStore, metrics: Metrics) -> int:
    n = 0
    if await asyncio.to_thread(store.spooled_count):
        n = await asyncio.to_thread(store.flush_spool)
        if n:
            log.info("flushed %d spooled flagged items", n)
    metrics.spooled.set(await asyncio.to_thread(store.spooled_count))
    return n
