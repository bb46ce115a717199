"""Appeal routes: a partner contests a verdict; reviewers decide it in the console (serving/review/)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException

from serving.deps import AppealsPartner, DbDep
from serving.problems import openapi_responses
from serving.review.service import ReviewError, create_appeal, get_appeal
from serving.schemas import AppealRequest, AppealResponse

router = APIRouter()


@router.post(
    "/v1/appeals",
    response_model=AppealResponse,
    status_code=201,
    tags=["appeals"],
    responses=openapi_responses(401, 403, 422, 429, 503),
)
async def appeal(body: AppealRequest, partner: AppealsPartner, db: DbDep) -> AppealResponse:
    """Appeal a verdict (by the stored item id or the URL); reviewers decide it in the console."""
    try:
        appeal_id = await asyncio.to_thread(
            create_appeal, db, partner.name if partner else None, body.reason, body.item_id, body.url
        )
    except ReviewError as e:
        raise HTTPException(422, str(e)) from e
    return AppealResponse(**(await asyncio.to_thread(get_appeal, db, appeal_id) or {}))


@router.get(
    "/v1/appeals/{appeal_id}",
    response_model=AppealResponse,
    tags=["appeals"],
    responses=openapi_responses(401, 403, 404, 422, 429, 503),
)
async def appeal_status(appeal_id: int, partner: AppealsPartner, db: DbDep) -> AppealResponse:
    """An appeal's status and, once decided, the outcome and band."""
    found = await asyncio.to_thread(get_appeal, db, appeal_id)
    if found is None or (partner is not None and found["partner"] != partner.name):
        raise HTTPException(404, "no such appeal for this key")
    return AppealResponse(**found)
