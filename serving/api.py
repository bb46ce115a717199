"""The FastAPI application's assembly: state, middleware, error handlers, routers, lifespan and maintenance.

The routes are in serving/routes/ (one router per resource), their models in serving/schemas.py, their
shared dependencies in serving/deps.py (read from `app.state`, which `create_app` fills), and the work of a
classification in serving/classification.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import OperationalError
from starlette.middleware.sessions import SessionMiddleware

from serving import model_switch, problems
from serving.batcher import MicroBatcher, SharedCache
from serving.classification import load_conversation_model
from serving.config import Settings
from serving.conversations import WindowLocks, make_windows
from serving.db import make_engine, migrate
from serving.hashes import HashLists, MatchLog
from serving.keys import KeyVerifier, make_rate_limiter
from serving.metrics import NO_PARTNER, Metrics
from serving.middleware import BodyLimit, SecureOverHttps
from serving.problems import request_id_of
from serving.review import audit
from serving.review.errors import install_error_pages
from serving.review.web import LoginRequired, build_router
from serving.routes import ROUTERS
from serving.store import FlagStore
from vicas.conversation import ConversationModel
from vicas.engine import TextEngine
from vicas.hashes import MatchSettings
from vicas.image_reader import ImageReader
from vicas.nudity import NudityDetector
from vicas.ocr import OcrConfig, ocr_available
from vicas.policy import load_policy
from vicas.visual import VisualEngine

log = logging.getLogger("vicas.api")


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
    db = make_engine(settings.database_url)
    hash_lists = HashLists(db)  # known-material hash lists, in memory, reloaded when they change

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
    # what serving/deps.py hands the routes; the lifespan adds batcher, images, conversations and model state
    app.state.settings = settings
    app.state.policy = policy
    app.state.metrics = metrics
    app.state.db = db
    app.state.store = FlagStore(db, settings.spool_dir)
    app.state.keys = KeyVerifier(db, settings.key_cache_seconds)
    app.state.limiter = make_rate_limiter(settings.redis_url)
    app.state.hash_lists = hash_lists
    app.state.match_settings = MatchSettings(settings.pdq_max_distance, settings.pdq_min_quality, settings.pdq_uncrop)
    app.state.match_log = MatchLog(db, settings.spool_dir)
    app.state.windows = make_windows(settings.redis_url, settings.conversation_ttl_seconds)
    app.state.window_locks = WindowLocks()

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

    for router in ROUTERS:
        app.include_router(router)
    problems.document(app)
    return app


def maintenance_steps(app: FastAPI) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """What the maintenance loop does each round, in order: the steps after the migration need the database."""
    state = app.state

    async def migrate_if_pending() -> None:  # the start found the database unreachable
        if getattr(state, "schema", "ok") != "ok":
            await asyncio.to_thread(migrate, state.settings.database_url)
            state.schema = "ok"
            log.info("database reachable again: schema migrated")

    return [
        ("migration", migrate_if_pending),
        ("spool flush", lambda: flush_once(state.store, state.metrics)),
        ("key re-check", lambda: asyncio.to_thread(state.keys.recheck)),
        ("model switch", lambda: follow_model(app)),
        ("hash lists", lambda: asyncio.to_thread(state.hash_lists.refresh)),
        ("hash match spool", lambda: asyncio.to_thread(state.match_log.flush_spool)),
    ]


async def follow_model(app: FastAPI) -> None:
    """Swap to the model an operator activated (`vicas models activate`), once; a refused one is
    reported in /readyz and not retried until another is activated."""
    settings: Settings = app.state.settings
    want = await asyncio.to_thread(model_switch.requested, app.state.db)
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
    app.state.metrics.serving(app.state.batcher.version, reader.version if reader else None, app.state.policy.version)


def _load_hash_lists(lists: HashLists) -> None:
    """The first load at start; while the database is unreachable the maintenance loop retries it."""
    try:
        lists.refresh()
    except Exception as e:
        log.error("hash lists not loaded (%s): images are not matched until they are", e.__class__.__name__)


def make_image_reader(settings: Settings) -> ImageReader | None:
    """OCR when Tesseract is installed, the image model (and its ImageNet cues) when its folder exists, open_nsfw
    unless turned off (VICAS_OPEN_NSFW=false), NudeNet when enabled."""
    from vicas.image_reader import build_image_reader

    visual = None
    folder = settings.image_model_dir
    if folder is not None and (folder / "manifest.json").exists():
        visual = VisualEngine(folder, threads=settings.ort_threads)  # a damaged artefact stops the start
    elif folder is not None:
        log.warning(
            "no image model in %s: images are read without its heads and ImageNet cues (run `dvc repro export_image`)",
            folder,
        )
    ocr = None
    if settings.ocr:
        if ocr_available(engine=settings.ocr_engine):
            ocr = OcrConfig(engine=settings.ocr_engine)
        else:
            log.warning(
                "tesseract with Vietnamese data is not installed: no OCR (apt-get install %s)",
                "tesseract-ocr tesseract-ocr-vie",
            )
    nudity = NudityDetector() if settings.nudenet else None
    reader = build_image_reader(
        visual,
        ocr,
        nudity,
        open_nsfw=settings.open_nsfw,
        imagenet_cues=settings.imagenet_cues,
        threads=settings.ort_threads,
    )
    if reader is None:
        log.warning("no image reader: requests with images are refused (422)")
    return reader


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
