"""Operations routes: the taxonomy contract, liveness, readiness (with what is degraded) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine

from serving.batcher import MicroBatcher
from serving.deps import DbDep, HashListsDep, LimiterDep, MetricsDep, PolicyDep, StoreDep
from vicas.policy import taxonomy_document

router = APIRouter()


@router.get("/v1/taxonomy", tags=["contract"])
async def taxonomy(policy: PolicyDep) -> dict[str, Any]:
    """Bands, categories, allowed severities and the policy's bands."""
    return taxonomy_document(policy)


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
async def readyz(
    request: Request, db: DbDep, store: StoreDep, limiter: LimiterDep, hash_lists: HashListsDep
) -> JSONResponse:
    batcher: MicroBatcher | None = getattr(request.app.state, "batcher", None)  # None until the lifespan ran
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


@router.get("/metrics", tags=["operations"], response_class=Response)
async def prometheus(metrics: MetricsDep, store: StoreDep) -> Response:
    metrics.spooled.set(await asyncio.to_thread(store.spooled_count))
    return Response(await asyncio.to_thread(metrics.exposition), media_type=CONTENT_TYPE_LATEST)


def _db_ok(db: Engine) -> bool:
    try:
        with db.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return True
    except Exception:
        return False
