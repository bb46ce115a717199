"""The FastAPI application: /v1 classification, verdicts, taxonomy, health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.batcher import MicroBatcher, SharedCache, content_hash
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import KeyStoreUnavailable, KeyVerifier, Partner, count_usage, make_rate_limiter
from serving.review import audit
from serving.review.service import ReviewError, create_appeal, get_appeal, seal
from serving.review.web import LoginRequired, build_router
from serving.store import FlaggedItem, FlagStore, domain_of, lookup_verdict, record_verdict
from vicas.classifier import ContentItem, resolve_item
from vicas.combine import ItemPrediction, combine_predictions, texts_for
from vicas.engine import TextEngine
from vicas.image_reader import ImageReader, NamedImage
from vicas.images import ImageError, ImageLimits, PixelBudget, decode_base64, image_size, open_image
from vicas.inference import Evidence
from vicas.nudity import NudityDetector
from vicas.ocr import OcrConfig, ocr_available
from vicas.page import page_images
from vicas.policy import load_policy, taxonomy_document
from vicas.redact import redact
from vicas.result import ClassificationResult, build_result
from vicas.taxonomy import Band
from vicas.visual import VisualEngine

log = logging.getLogger("vicas.api")


class ImageUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=300, description="a label for the image (file name, URL)")
    data: str = Field(min_length=1, description="the image file in base64, or a data:image/...;base64, URI")


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="plain text to classify (a post, a caption)")
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
        if self.text is not None and self.html is not None:
            raise ValueError("give 'text' or 'html', not both")
        if self.text is None and self.html is None and not self.images:
            raise ValueError("give 'text', 'html' or 'images'")
        for content in (self.text, self.html):
            if content is not None and not content.strip():
                raise ValueError("the content is empty or only whitespace")
        return self


class ClassifyResponse(ClassificationResult):
    request_id: str


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ClassifyRequest] = Field(min_length=1)


class BatchResponse(BaseModel):
    request_id: str
    results: list[ClassifyResponse]


class VerdictResponse(BaseModel):
    url: str
    domain: str
    band: Band
    source: str = Field(description="'reviewed' (a reviewer decided) or 'model'")
    model_version: str | None
    policy_version: str | None
    updated_at: str


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


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_dir: str


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vicas_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "vicas_request_seconds",
            "request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.items = Counter("vicas_items_classified_total", "items classified", registry=self.registry)
        self.images = Counter(
            "vicas_images_classified_total", "images read (OCR, visual model)", registry=self.registry
        )
        self.bands = Counter("vicas_items_by_band_total", "items by band", ["band"], registry=self.registry)
        self.flagged = Counter("vicas_flagged_items_total", "flagged items", ["outcome"], registry=self.registry)
        self.spooled = Gauge("vicas_spooled_items", "flagged items waiting in the spool", registry=self.registry)
        self.rate_limited = Counter("vicas_rate_limited_total", "429 answers", registry=self.registry)
        self.cache_hits = Gauge("vicas_cache_hits", "results served from the cache", ["cache"], registry=self.registry)


class BodyLimit:
    """Answer 413 to bodies over the limit, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
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
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = b'{"detail":"request body too large"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None, engine: TextEngine | None = None, image_reader: ImageReader | None = None
) -> FastAPI:
    """Build the app. `engine` and `image_reader` let tests inject models; otherwise settings name them."""
    settings = settings or Settings()
    policy = load_policy(settings.policy_path)
    metrics = Metrics()
    limiter = make_rate_limiter(settings.redis_url)
    db = make_engine(settings.database_url)
    store = FlagStore(db, settings.spool_dir)
    keys = KeyVerifier(db, settings.key_cache_seconds)

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
        text_engine = engine or TextEngine(settings.model_dir, threads=settings.ort_threads)
        shared = SharedCache(settings.redis_url) if settings.redis_url else None
        batcher = MicroBatcher(
            text_engine, settings.max_batch_size, settings.batch_wait_ms, settings.cache_items, shared
        )
        await batcher.start()
        app.state.batcher = batcher
        app.state.images = image_reader or make_image_reader(settings)
        flusher = asyncio.create_task(
            _flush_loop(store, metrics, app=app, database_url=settings.database_url, keys=keys)
        )
        yield
        flusher.cancel()
        await batcher.stop()
        db.dispose()

    app = FastAPI(
        title="vicas classification API",
        version="1",
        description="Age bands and harm categories for Vietnamese web content. Partners authenticate with "
        "`Authorization: Bearer KEY` (created by `vicas keys create`).",
        lifespan=lifespan,
    )
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
        https_only=settings.secure_cookies,
    )
    app.include_router(build_router(settings, db, policy))

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response

    def partner_for(scope: str, cost: int = 1) -> Callable[..., Partner | None]:
        def dependency(authorization: Annotated[str | None, Header()] = None) -> Partner | None:
            if not settings.require_api_key:
                return None
            if not authorization or not authorization.startswith("Bearer "):
                raise HTTPException(
                    401, "send your API key as 'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"}
                )
            try:
                partner = keys.verify(authorization.removeprefix("Bearer ").strip())
            except KeyStoreUnavailable as e:
                raise HTTPException(
                    503, "the key store is unreachable; retry shortly", headers={"Retry-After": "5"}
                ) from e
            if partner is None:
                raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
            if scope not in partner.scopes:
                raise HTTPException(403, f"this key lacks the '{scope}' scope")
            wait = limiter.acquire(partner, cost)
            if wait > 0:
                metrics.rate_limited.inc()
                raise HTTPException(
                    429,
                    f"rate limit of {partner.rate_limit_per_minute} items per minute reached",
                    headers={"Retry-After": str(max(1, int(wait + 0.999)))},
                )
            return partner

        return dependency

    classify_key = Depends(partner_for("classify"))
    verdicts_key = Depends(partner_for("verdicts"))
    admin_key = Depends(partner_for("admin"))

    limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)

    def resolve(
        it: ClassifyRequest, uploads: list[NamedImage], reader: ImageReader | None, budget: PixelBudget
    ) -> _Resolved:
        """Decode images and pages (CPU work: runs in a worker thread); ImageError for what cannot be read.

        Images are counted, and their pixels added to the request's budget from their headers, before any
        is decoded: a few small files that decode to gigabytes are refused without being decoded.
        """
        embedded = [p for p in page_images(it.html) if p.embedded] if it.html is not None else []
        count = len(uploads) + len(it.images) + len(embedded)
        if count > settings.max_images_per_item:
            raise ImageError(f"{count} images in one item; the limit is {settings.max_images_per_item}", status=413)
        raw = []
        for i, up in enumerate(it.images):
            name = up.name or f"image {i}"
            data = decode_base64(up.data, name)
            w, h = image_size(data, limits, name)
            budget.take(w * h, name)
            raw.append((name, data))
        for i, p in enumerate(embedded):
            name = p.label(i)
            w, h = image_size(decode_base64(p.src, name), limits, name)
            budget.take(w * h, name)
        images = list(uploads)
        images += [NamedImage(name, open_image(data, limits, name)) for name, data in raw]
        text, images = resolve_item(
            ContentItem(it.text, it.html, images), limits, settings.max_images_per_item, reader is not None
        )
        if text is not None and len(text) > settings.max_text_chars:
            raise ImageError(f"an item has {len(text)} characters; the limit is {settings.max_text_chars}", 413)
        return _Resolved(it, text, images)

    async def classify_items(
        items: list[ClassifyRequest],
        partner: Partner | None,
        request_id: str,
        app_state: Any,
        uploads: list[NamedImage] | None = None,
    ) -> list[ClassifyResponse]:
        batcher: MicroBatcher = app_state.batcher
        reader: ImageReader | None = app_state.images
        resolved = []
        budget = PixelBudget(settings.max_request_pixels)
        try:
            for up in uploads or []:  # multipart files were decoded one by one under the per-image limits
                budget.take(up.image.width * up.image.height, up.name)
        except ImageError as e:
            raise HTTPException(e.status, str(e)) from e
        for n, it in enumerate(items):
            try:
                resolved.append(await asyncio.to_thread(resolve, it, uploads or [], reader, budget))
            except ImageError as e:
                where = f"items[{n}]: " if len(items) > 1 else ""
                raise HTTPException(e.status, where + str(e)) from e
        readings = [await asyncio.to_thread(reader.read, r.images) if r.images and reader else [] for r in resolved]
        jobs = [texts_for(r.text, rd) for r, rd in zip(resolved, readings, strict=True)]
        flat = [t for job in jobs for t in job]
        preds = await batcher.classify(flat) if flat else []
        version = batcher.version
        review_risk = batcher.engine.calibration.review_risk
        results, flagged, pos = [], [], 0
        for i, (r, rd, job) in enumerate(zip(resolved, readings, jobs, strict=True)):
            pred = combine_predictions(r.text, rd, preds[pos : pos + len(job)])
            pos += len(job)
            item_version = f"{version}+{reader.version}" if r.images and reader else version
            res = build_result(pred, policy, item_version, r.request.audience_age, review_risk)
            results.append(ClassifyResponse(request_id=request_id, **res.model_dump()))
            metrics.bands.labels(res.band.value).inc()
            metrics.images.inc(len(r.images))
            digest = r.content_hash()
            if res.band >= settings.flag_band or res.band is Band.C or res.needs_review:
                flagged.append(_flagged_item(f"{request_id}:{i}", r, digest, partner, pred, res, settings.secret_key))
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
        metrics.items.inc(len(items))
        if flagged:
            outcome = await asyncio.to_thread(store.save, flagged)
            metrics.flagged.labels(outcome).inc(len(flagged))
        if partner is not None:
            await asyncio.to_thread(_safe_usage, db, partner.id, len(items))
        return results

    @app.post(
        "/v1/classify",
        response_model=ClassifyResponse,
        tags=["classify"],
        openapi_extra=_classify_openapi(),
        responses={
            413: {"description": "too large (body, text, image bytes or pixels)"},
            422: {"description": "bad input"},
        },
    )
    async def classify(request: Request, partner: Partner | None = classify_key) -> ClassifyResponse:
        """Classify one item: a text, an HTML page (with its embedded images), images, or a text with images.

        Send JSON (`ClassifyRequest`, images in base64) or `multipart/form-data` with the same fields and
        image files (any file field). Answer: band, categories with evidence (each naming its source:
        the text, an image's OCR words with boxes, the visual model), per-image verdicts, actions, reasons.
        """
        body, uploads = await _read_classify_request(request, limits, settings.max_images_per_item)
        return (await classify_items([body], partner, uuid.uuid4().hex, request.app.state, uploads))[0]

    @app.post("/v1/classify/batch", response_model=BatchResponse, tags=["classify"])
    async def classify_batch(
        body: BatchRequest, request: Request, partner: Partner | None = classify_key
    ) -> BatchResponse:
        """Classify up to `VICAS_MAX_BATCH_ITEMS` items in one call."""
        if len(body.items) > settings.max_batch_items:
            raise HTTPException(413, f"{len(body.items)} items; the batch limit is {settings.max_batch_items}")
        if partner is not None and len(body.items) > 1:
            wait = limiter.acquire(partner, len(body.items) - 1)
            if wait > 0:
                metrics.rate_limited.inc()
                raise HTTPException(429, "rate limit reached", headers={"Retry-After": str(max(1, int(wait + 1)))})
        rid = uuid.uuid4().hex
        return BatchResponse(request_id=rid, results=await classify_items(body.items, partner, rid, request.app.state))

    @app.get(
        "/v1/verdicts",
        response_model=VerdictResponse,
        tags=["verdicts"],
        responses={404: {"description": "no verdict for that URL or domain"}},
    )
    async def get_verdict(
        url: Annotated[str | None, Query(max_length=4096)] = None,
        domain: Annotated[str | None, Query(max_length=255)] = None,
        partner: Partner | None = verdicts_key,
    ) -> VerdictResponse:
        """The latest verdict on a URL or a domain; reviewed verdicts take precedence over the model's."""
        if (url is None) == (domain is None):
            raise HTTPException(422, "give exactly one of 'url' or 'domain'")
        found = await asyncio.to_thread(lookup_verdict, db, url, domain)
        if found is None:
            raise HTTPException(404, "no verdict recorded for that URL or domain")
        return VerdictResponse(**{k: found[k] for k in VerdictResponse.model_fields})

    appeals_key = Depends(partner_for("appeals"))

    @app.post("/v1/appeals", response_model=AppealResponse, status_code=201, tags=["appeals"])
    async def appeal(body: AppealRequest, partner: Partner | None = appeals_key) -> AppealResponse:
        """Appeal a verdict (by the stored item id or the URL); reviewers decide it in the console."""
        try:
            appeal_id = await asyncio.to_thread(
                create_appeal, db, partner.name if partner else None, body.reason, body.item_id, body.url
            )
        except ReviewError as e:
            raise HTTPException(422, str(e)) from e
        return AppealResponse(**(await asyncio.to_thread(get_appeal, db, appeal_id) or {}))

    @app.get("/v1/appeals/{appeal_id}", response_model=AppealResponse, tags=["appeals"])
    async def appeal_status(appeal_id: int, partner: Partner | None = appeals_key) -> AppealResponse:
        """An appeal's status and, once decided, the outcome and band."""
        found = await asyncio.to_thread(get_appeal, db, appeal_id)
        if found is None or (partner is not None and found["partner"] != partner.name):
            raise HTTPException(404, "no such appeal for this key")
        return AppealResponse(**found)

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
        metrics.spooled.set(store.spooled_count())
        batcher: MicroBatcher | None = getattr(request.app.state, "batcher", None)
        if batcher is not None:
            metrics.cache_hits.labels("local").set(batcher.cache_hits)
            metrics.cache_hits.labels("shared").set(batcher.shared_hits)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/admin/reload", tags=["operations"])
    async def reload(body: ReloadRequest, request: Request, _: Partner | None = admin_key) -> dict[str, str]:
        """Load a new exported model and switch to it atomically; a bad artefact is refused (409)."""
        batcher: MicroBatcher = request.app.state.batcher
        old = batcher.version
        try:
            new = await batcher.swap(Path(body.model_dir), settings.ort_threads)
        except Exception as e:
            raise HTTPException(409, f"model refused, still serving {old}: {e}") from e
        return {"previous": old, "serving": new}

    app.state.store = store
    app.state.keys = keys
    app.state.db = db
    app.state.settings = settings
    return app


@dataclass
class _Resolved:
    """One request item with its text and decoded images."""

    request: ClassifyRequest
    text: str | None
    images: list[NamedImage]

    def content_hash(self) -> str:
        parts = [self.text or ""] + [hashlib.sha256(n.image.tobytes()).hexdigest() for n in self.images]
        return content_hash("\x00".join(parts))


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
    url = item.request.url
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
    )


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
        uploads = []
        for name, data in files:
            try:
                uploads.append(NamedImage(name, await asyncio.to_thread(open_image, data, limits, name)))
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


async def _flush_loop(
    store: FlagStore,
    metrics: Metrics,
    every: float = 2.0,
    app: FastAPI | None = None,
    database_url: str = "",
    keys: KeyVerifier | None = None,
) -> None:
    """Drain the spool for ever: an error in one round is logged and the next round tries again (a dead
    loop would leave every later flagged item in the spool). A migration the start could not run (database
    unreachable) is run first, once the database answers; cached API keys are re-checked for revocation."""
    while True:
        await asyncio.sleep(every)
        try:
            if app is not None and getattr(app.state, "schema", "ok") != "ok":
                await asyncio.to_thread(migrate, database_url)
                app.state.schema = "ok"
                log.info("database reachable again: schema migrated")
            await flush_once(store, metrics)
            if keys is not None:
                await asyncio.to_thread(keys.recheck)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("spool flush failed; retrying in %.0f s", every)


async def flush_once(store: FlagStore, metrics: Metrics) -> int:
    n = 0
    if await asyncio.to_thread(store.spooled_count):
        n = await asyncio.to_thread(store.flush_spool)
        if n:
            log.info("flushed %d spooled flagged items", n)
    metrics.spooled.set(await asyncio.to_thread(store.spooled_count))
    return n
