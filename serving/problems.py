"""One error shape for every 4xx and 5xx: RFC 9457 problem details with a stable machine-readable `code`.

Partners branch on `code` (stable), people read `detail` (may change). Every answer, error or not, carries
`X-Request-ID`; problems repeat it as `request_id` so a partner can quote it to support.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("vicas.api")

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The code an error gets when the raiser names none; one per status, stable across releases.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered."""

    type: str = Field("about:blank", description="a URI naming the problem type")
    title: str
    status: int
    detail: str = Field(description="what went wrong and what to do, for people")
    code: str = Field(description="stable machine-readable code: branch on this, not on `detail`")
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="per field, for invalid input")


class ApiError(HTTPException):
    """An HTTPException with its own stable code (e.g. `queue_full`, `key_store_unreachable`)."""

    def __init__(self, status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)
        self.code = code


def problem_body(status: int, detail: str, code: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    body = Problem(
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code or CODES.get(status, "error"),
        request_id=request_id,
    )
    return body.model_dump(exclude_none=True)


def problem_response(
    status: int,
    detail: str,
    code: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = problem_body(status, detail, code, request_id)
    if errors is not None:
        body["errors"] = errors
    headers = dict(headers or {})
    if request_id:  # also on answers made outside the middleware that sets it (unhandled errors)
        headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def new_request_id(given: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, otherwise one made here."""
    return given if given and _CLIENT_ID.match(given) else uuid.uuid4().hex


def request_id_of(request: Request) -> str:
    """The request's id, made once and kept on the request (the outermost middleware may have set it)."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.state.request_id = rid
    return str(rid)


def install(app: FastAPI) -> None:
    """Answer HTTP errors, invalid input and unhandled exceptions as problem+json."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        code = getattr(exc, "code", None)
        return problem_response(exc.status_code, detail, code, request_id_of(request), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid input"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return problem_response(422, detail, "invalid_input", request_id_of(request), errors=errors)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        # an unreachable database is an outage to wait out, not a bug: 503 with Retry-After (and, unlike an
        # unhandled error, the connection stays open for the partner's next request)
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        return problem_response(
            503,
            "the database is unreachable; classification goes on, this answer needs the database: retry shortly",
            "database_unavailable",
            request_id_of(request),
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "an internal error; retry later and quote the request id", "internal_error", request_id_of(request)
        )


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the problem schema."""
    what = {
        401: "no key, or an unknown or revoked key",
        403: "the key lacks the scope this route needs",
        404: "not found",
        409: "conflict",
        413: "too large (body, text, image bytes or pixels, batch)",
        422: "invalid input",
        429: "rate limit reached; see Retry-After and the RateLimit headers",
        503: "unavailable for now (queue full, key store or database unreachable); see Retry-After",
    }
    return {s: {"description": what.get(s, TITLES.get(s, "error")), "model": Problem} for s in statuses}


def document(app: FastAPI) -> None:
    """Declare error answers as application/problem+json in the OpenAPI document (FastAPI says JSON)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[PROBLEM_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
