"""HTML error pages for the review console, in the session's language.

The partner API under /v1 answers every error as problem+json (serving/problems.py); a reviewer who follows a
bad link, lacks a permission or sends a bad filter in the console gets a page instead: the console's header,
the error in Vietnamese (or English), a way back, and the request id to quote. `install_error_pages` wraps the
app's problem handlers, so only paths under /console change.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from serving.problems import REQUEST_ID_HEADER, request_id_of
from serving.review.accounts import User, get_user
from serving.review.i18n import N_, gettext, normalise, translate_message, translator

log = logging.getLogger("vicas.console")

CONSOLE_PREFIX = "/console"
STATUS_TITLES: dict[int, str] = {
    400: N_("Bad request"),
    401: N_("Sign in needed"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed here"),
    409: N_("Conflict"),
    413: N_("Too large"),
    415: N_("Unsupported content"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
    503: N_("Service unavailable"),
}
INTERNAL_ERROR = N_("an internal error; try again later, and quote the request id below if it happens again")
DATABASE_DOWN = N_("the database cannot be reached just now; try again in a moment")

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_console(request: Request) -> bool:
    path = str(request.scope.get("path", ""))
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _session(request: Request) -> dict[str, Any]:
    return request.scope.get("session") or {}


def _user(engine: Engine, session: dict[str, Any]) -> User | None:
    uid = session.get("uid")
    if uid is None:
        return None
    try:
        user = get_user(engine, int(uid))
    except Exception:  # the page explains an error: it must not fail on a second one (a database outage)
        return None
    return user if user is not None and session.get("epoch") == user.session_epoch else None


def error_page(
    request: Request,
    engine: Engine | None,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The console's error page: `detail` is an English message id (translated here) or a plain message."""
    from serving.review.web import TEMPLATES

    session = _session(request)
    lang = normalise(session.get("lang"))
    user = _user(engine, session) if engine is not None else None
    title = STATUS_TITLES.get(status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    context = {
        "lang": lang,
        "t": translator(lang),
        "user": user,
        "csrf": session.get("csrf", ""),
        "status": status,
        "title": gettext(lang, title) if title else phrase,
        "detail": translate_message(lang, detail),
        "request_id": request_id_of(request),
    }
    page = TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)
    for name, value in (headers or {}).items():
        page.headers[name] = value
    page.headers[REQUEST_ID_HEADER] = context["request_id"]  # also on answers made outside the middleware
    return page


def _validation_detail(exc: RequestValidationError) -> str:
    """The first invalid field, as a message the catalogue knows."""
    errors = exc.errors()
    if not errors:
        return "invalid input"
    first = errors[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form"))
    if first.get("type") == "missing":
        return f"{field} is missing"
    return f"invalid value for {field}"


def install_error_pages(app: FastAPI, engine: Engine) -> None:
    """Console paths answer errors with an HTML page; every other path keeps the app's handlers."""
    previous: dict[Any, Handler] = dict(app.exception_handlers)

    def wrap(key: type[Exception], page: Callable[[Request, Any], HTMLResponse]) -> None:
        fallback = previous.get(key)

        async def handler(request: Request, exc: Any) -> Response:
            if is_console(request):
                return await run_in_threadpool(page, request, exc)
            if fallback is None:
                raise exc
            if inspect.iscoroutinefunction(fallback):
                return await fallback(request, exc)  # type: ignore[no-any-return]
            return await run_in_threadpool(fallback, request, exc)  # type: ignore[arg-type]

        app.add_exception_handler(key, handler)

    def http_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_page(request, engine, exc.status_code, detail, dict(exc.headers or {}))

    def invalid_page(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return error_page(request, engine, 422, _validation_detail(exc))

    def database_page(request: Request, exc: OperationalError) -> HTMLResponse:
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        return error_page(request, None, 503, DATABASE_DOWN, {"Retry-After": "5"})

    def internal_page(request: Request, exc: Exception) -> HTMLResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_page(request, None, 500, INTERNAL_ERROR)

    wrap(StarletteHTTPException, http_page)
    wrap(RequestValidationError, invalid_page)
    wrap(OperationalError, database_page)
    wrap(Exception, internal_page)
