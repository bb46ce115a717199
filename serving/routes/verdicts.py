"""The verdicts route: what the service last decided on a URL or a domain, for partners that filter by URL."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from serving.deps import DbDep, VerdictsPartner
from serving.problems import ApiError, openapi_responses
from serving.schemas import VerdictResponse
from serving.store import lookup_verdict
from serving.urls import UrlError

router = APIRouter()


@router.get(
    "/v1/verdicts",
    response_model=VerdictResponse,
    tags=["verdicts"],
    responses=openapi_responses(401, 403, 404, 422, 429, 503),
)
async def get_verdict(
    db: DbDep,
    partner: VerdictsPartner,
    url: Annotated[str | None, Query(max_length=4096)] = None,
    domain: Annotated[str | None, Query(max_length=255)] = None,
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
