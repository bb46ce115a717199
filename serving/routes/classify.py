"""Classification routes: one item (JSON, or multipart with image files) and batches. The work itself is in
serving/classification.py."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from serving.classification import open_upload
from serving.deps import ClassifierDep, ClassifyPartner, LimiterDep, MetricsDep, charge
from serving.problems import ApiError, openapi_responses, request_id_of
from serving.schemas import BatchItemError, BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse
from vicas.image_reader import NamedImage
from vicas.images import ImageError, ImageLimits

router = APIRouter()


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
                uploads.append(await asyncio.to_thread(open_upload, data, limits, name))
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


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    tags=["classify"],
    openapi_extra=_classify_openapi(),
    responses=openapi_responses(401, 403, 413, 422, 429, 503),
)
async def classify(request: Request, partner: ClassifyPartner, classifier: ClassifierDep) -> ClassifyResponse:
    """Classify one item: a text, an HTML page (with its embedded images), images, or a text with images.

    Send JSON (`ClassifyRequest`, images in base64) or `multipart/form-data` with the same fields and
    image files (any file field). Answer: band, categories with evidence (each naming its source:
    the text, an image's OCR words with boxes, the visual model), per-image verdicts, actions, reasons.
    """
    body, uploads = await _read_classify_request(request, classifier.limits, classifier.settings.max_images_per_item)
    answer = (await classifier.classify_items([body], partner, request_id_of(request), uploads))[0]
    if isinstance(answer, BatchItemError):
        raise ApiError(answer.error.status, answer.error.detail, answer.error.code)
    return answer


@router.post(
    "/v1/classify/batch",
    response_model=BatchResponse,
    tags=["classify"],
    responses=openapi_responses(401, 403, 413, 422, 429, 503),
)
async def classify_batch(
    body: BatchRequest,
    request: Request,
    response: Response,
    partner: ClassifyPartner,
    classifier: ClassifierDep,
    limiter: LimiterDep,
    metrics: MetricsDep,
) -> BatchResponse:
    """Classify up to `VICAS_MAX_BATCH_ITEMS` items in one call; an item that cannot be read (a bad image,
    too many pixels) gets its own `error` entry and the others are classified."""
    settings = classifier.settings
    if len(body.items) > settings.max_batch_items:
        raise HTTPException(413, f"{len(body.items)} items; the batch limit is {settings.max_batch_items}")
    if partner is not None and len(body.items) > 1:
        charge(limiter, metrics, partner, len(body.items) - 1, response)
    rid = request_id_of(request)
    return BatchResponse(request_id=rid, results=await classifier.classify_items(body.items, partner, rid))
