"""The usage route: a partner's own requests and items per day, as counted for billing."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from serving.deps import AnyPartner, DbDep
from serving.keys import usage_by_name
from serving.problems import ApiError, openapi_responses
from serving.schemas import UsageDay, UsageResponse

router = APIRouter()


@router.get("/v1/usage", response_model=UsageResponse, tags=["keys"], responses=openapi_responses(401, 429, 503))
async def own_usage(partner: AnyPartner, db: DbDep, days: Annotated[int, Query(ge=1, le=366)] = 31) -> UsageResponse:
    """Your requests and items per day (UTC) over all your keys, oldest first; today is still counting."""
    if partner is None:
        raise ApiError(404, "usage is counted per key; this service runs without keys", "no_keys")
    rows = await asyncio.to_thread(usage_by_name, db, partner.name, days)
    return UsageResponse(partner=partner.name, days=[UsageDay.model_validate(r) for r in rows])
