"""Blocklist feed routes: the reviewed blocklist for DNS resolvers and filters, whole or as changes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from serving.db import as_utc
from serving.deps import BlocklistsPartner, DbDep
from serving.problems import openapi_responses
from serving.review.blocklists import (
    Entry,
    blocklist_entries,
    changes_since,
    csv_list,
    hosts_file,
    latest_change,
    rpz_zone,
)
from serving.schemas import BlocklistChanges, BlocklistEntry
from vicas.taxonomy import Band

router = APIRouter()

BLOCKLIST_FORMATS: dict[str, tuple[Callable[[list[Entry], Band, datetime], str], str]] = {
    "hosts": (hosts_file, "text/plain"),
    "rpz": (rpz_zone, "text/dns"),
    "csv": (csv_list, "text/csv"),
}


@router.get(
    "/v1/blocklists/changes",
    response_model=BlocklistChanges,
    tags=["blocklists"],
    responses=openapi_responses(401, 403, 422, 429, 503),
)
async def blocklist_changes(
    partner: BlocklistsPartner,
    db: DbDep,
    since: Annotated[datetime | None, Query(description="`version` of your last fetch (ISO 8601)")] = None,
    min_band: Band = Band.T18,
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


@router.get(
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
    partner: BlocklistsPartner,
    db: DbDep,
    min_band: Band = Band.T18,
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
