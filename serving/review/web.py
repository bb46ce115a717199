"""The review console's pages: server-rendered (Jinja2) with a little JavaScript for keyboard shortcuts.

Only a console session (cookie, signed, HttpOnly, SameSite=Strict) opens these pages; partner API keys
never do. Every form carries a per-session CSRF token.
"""

from __future__ import annotations

import html
import json
import secrets
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from serving.config import Settings
from serving.review import audit
from serving.review.accounts import (
    ROLES,
    AccountError,
    LoginRateLimited,
    User,
    authenticate,
    create_user,
    end_sessions,
    get_user,
)
from serving.review.i18n import STRINGS, category_name, format_number, install_jinja, translator
from serving.review.service import (
    QueueCursor,
    QueueFilter,
    ReviewError,
    blurred_image,
    decide_appeal,
    export_reviewed,
    get_item,
    item_images,
    list_appeals,
    load_queue,
    next_item_id,
    record_decision,
    record_view,
    reveal,
    unblur_image,
)
from serving.review.spans import whole_words
from vicas.policy import Decision, Policy, decide
from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
install_jinja(TEMPLATES.env)  # gettext catalogues (jinja2.ext.i18n), names of ids, local times, numbers


class LoginRequired(Exception):
    pass


def highlight(text: str, evidence: list[dict[str, Any]], lang: str | None = None) -> str:
    """HTML of `text` with evidence spans wrapped in <mark> per category, each on the whole words it touches
    (a model token can end mid-word: serving/review/spans.py; overlaps keep the first); with `lang`, each
    mark's tooltip names its category and score in that language."""
    out, pos = [], 0
    spans = []
    for e in evidence:
        if e.get("start") is None or e.get("end") is None:  # visual and nudity evidence: no characters
            continue
        s, t = int(e["start"]), int(e["end"])
        if 0 <= s < t <= len(text):
            spans.append((*whole_words(text, s, t), e))
    for s, t, e in sorted(spans, key=lambda x: (x[0], -x[1])):
        if s < pos:
            continue
        out.append(html.escape(text[pos:s]))
        cat = html.escape(str(e["category"]))
        score = float(e.get("score", 0))
        name = str(e["category"])
        tip = f"{name} {score:.2f}" if lang is None else f"{category_name(lang, name)} {format_number(lang, score, 2)}"
        out.append(f'<mark class="ev ev-{cat}" title="{html.escape(tip)}">{html.escape(text[s:t])}</mark>')
        pos = t
    out.append(html.escape(text[pos:]))
    return "".join(out)


@pass_context
def _highlight_filter(context: Context, text: str, evidence: list[dict[str, Any]]) -> Markup:
    """`{{ item.text|highlight(item.evidence_list) }}`: the marks' tooltips in the page's language."""
    return Markup(highlight(text, evidence, context.get("lang")))  # highlight() escapes the text itself


TEMPLATES.env.filters["highlight"] = _highlight_filter

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}  # thumbnails: not kept by browsers
# The queue's own views (tabs): the band decision's review outcome ("needs review", the model unsure) and
# open appeals are queues of their own, each with its items in the queue's order and its own "next item"
# (an appeal is often against a reviewed item: that view shows every status)
VIEWS: dict[str, tuple[str, str]] = {"review": ("review", "pending"), "appeal": ("appeal", "all")}  # source, status


def _view_filter(view: str) -> QueueFilter:
    source, status = VIEWS[view]
    return QueueFilter(source=source, status=status)


def _view_param(view: str | None) -> list[tuple[str, str]]:
    return [("view", view)] if view in VIEWS else []


def build_router(settings: Settings, engine: Engine, policy: Policy) -> APIRouter:
    """The console's routes. Handlers are plain functions, which FastAPI runs in its thread pool: their
    database queries, Argon2 checks and matplotlib charts must never block the event loop partners share."""
    router = APIRouter(prefix="/console", include_in_schema=False)

    def user_of(request: Request) -> User:
        uid = request.session.get("uid")
        user = get_user(engine, int(uid)) if uid is not None else None
        if user is None or request.session.get("epoch") != user.session_epoch:
            raise LoginRequired  # unknown, or a session ended by logging out
        return user

    def require(request: Request, permission: str) -> User:
        user = user_of(request)
        if not user.can(permission):
            raise HTTPException(403, "your role cannot open this page")  # the error page translates it
        return user

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return str(token)

    def check_csrf(request: Request, token: str) -> None:
        if "csrf" not in request.session:  # the session cookie never came back
            raise HTTPException(
                403,
                "the console's session cookie did not come back: over plain HTTP with VICAS_SECURE_COOKIES=true "
                "the browser keeps it to itself (use HTTPS, or leave VICAS_SECURE_COOKIES unset); then reload",
            )
        if not token or not secrets.compare_digest(token, str(request.session.get("csrf", ""))):
            raise HTTPException(403, "invalid or missing CSRF token; reload the page and try again")

    def render(request: Request, name: str, user: User | None, **ctx: Any) -> HTMLResponse:
        lang = request.session.get("lang", "vi")
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "t": translator(lang),
                "lang": lang,
                "user": user,
                "csrf": csrf_token(request),
                "bands": [b.value for b in BAND_ORDER],
                "categories": CATEGORIES,
                **ctx,
            },
        )

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", None, error=None)

    @router.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request, username: str = Form(...), password: str = Form(...), csrf: str = Form("")
    ) -> Response:
        check_csrf(request, csrf)
        address = request.client.host if request.client else "unknown"  # failed logins are limited per address
        try:
            user = await run_in_threadpool(authenticate, engine, username, password, address)  # Argon2: off the loop
        except LoginRateLimited as e:
            page = render(request, "login.html", None, error=str(e))  # the page shows it in the session's language
            page.status_code = 429
            page.headers["Retry-After"] = str(e.retry_after)
            return page
        except AccountError as e:
            return render(request, "login.html", None, error=str(e))
        lang = request.session.get("lang", "vi")
        request.session.clear()  # a fresh session (and CSRF token) after signing in
        request.session.update({"uid": user.id, "epoch": user.session_epoch, "lang": lang})
        return RedirectResponse("/console/", status_code=303)

    @router.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        uid = request.session.get("uid")
        if uid is not None:
            end_sessions(engine, int(uid))  # a copy of this cookie must not outlive the logout
        request.session.clear()
        return RedirectResponse("/console/login", status_code=303)

    @router.get("/lang/{code}")
    def set_lang(request: Request, code: str) -> Response:
        if code in STRINGS:
            request.session["lang"] = code
        back = request.headers.get("referer", "/console/")
        return RedirectResponse(back if back.startswith(str(request.base_url)) else "/console/", status_code=303)

    @router.get("/", response_class=HTMLResponse)
    def queue_page(
        request: Request,
        band: str | None = None,
        category: str | None = None,
        partner: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        source: str | None = None,
        max_confidence: str | None = None,
        status: str = "pending",
        after: str | None = None,
        view: str | None = None,
    ) -> HTMLResponse:
        user = require(request, "review")
        if view in VIEWS:  # a queue of its own (the tabs): its filters, whatever else the address says
            preset = _view_filter(view)
            source, status = preset.source, preset.status
        else:
            view = None
        try:
            cursor = QueueCursor.decode(after) if after else None
            f = QueueFilter(
                band=band or None,
                category=category or None,
                partner=partner or None,
                date_from=date.fromisoformat(date_from) if date_from else None,
                date_to=date.fromisoformat(date_to) if date_to else None,
                source=source or None,
                max_confidence=float(max_confidence.replace(",", ".")) if max_confidence else None,
                status=status,
            )
        except ValueError as e:
            raise HTTPException(422, f"bad filter: {e}") from e
        page = load_queue(engine, f, after=cursor)
        # keyset pages: the link to the next one carries the same filters and the last item's sort key
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        next_url = f"/console/?{urlencode([*kept, ('after', page.next_after.encode())])}" if page.next_after else None
        first_url = (f"/console/?{urlencode(kept)}" if kept else "/console/") if cursor else None
        return render(
            request,
            "queue.html",
            user,
            items=page.items,
            counts=page.counts,
            f=f,
            next_url=next_url,
            first_url=first_url,
            view=view,
            view_query=f"?view={view}" if view else "",
        )

    @router.get("/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: int, revealed: str | None = None, view: str | None = None) -> HTMLResponse:
        user = require(request, "review")
        item = get_item(engine, item_id)
        if item is None:
            raise HTTPException(404, "no such item")
        record_view(engine, item, user.username)  # the supervisor's daily count of severe items seen
        stored = item["stored_decision"]
        if stored is not None:  # what was decided, as decided: a later policy does not rewrite it
            reasoning = Decision.model_validate(stored)
        else:  # items stored before decisions were kept: recomputed, and the page says so
            reasoning = decide({c: int(v.get("severity", 0)) for c, v in item["cats"].items()}, policy)
        view = view if view in VIEWS else None
        # the next one in the queue's order, in one query, within the view the reviewer came from
        next_id = next_item_id(engine, item, _view_filter(view) if view else None)
        return render(
            request,
            "item.html",
            user,
            item=item,
            images=item_images(engine, item["item_key"]),
            reasoning=reasoning,
            revealed=revealed,
            next_id=next_id,
            view=view,
            view_query=f"?view={view}" if view else "",
            error=request.query_params.get("e"),
        )

    @router.get("/items/{item_id}/images/{image}.jpg")
    def item_image(request: Request, item_id: int, image: int) -> Response:
        """A thumbnail as first shown: blurred on the server, so this address never gives the clear picture."""
        require(request, "review")
        try:
            data = blurred_image(engine, item_id, image, settings.secret_key)
        except ReviewError as e:
            raise HTTPException(404, str(e)) from e
        return Response(data, media_type="image/jpeg", headers=NO_STORE)

    @router.post("/items/{item_id}/images/{image}/unblur")
    def unblur(request: Request, item_id: int, image: int, csrf: str = Form("")) -> Response:
        """The clear thumbnail, for one click of a reviewer (written to the audit log)."""
        user = require(request, "review")
        check_csrf(request, csrf)
        try:
            data = unblur_image(engine, item_id, image, user, settings.secret_key)
        except ReviewError as e:
            raise HTTPException(404, str(e)) from e
        return Response(data, media_type="image/jpeg", headers=NO_STORE)

    @router.post("/items/{item_id}/decide")
    async def decide_item(
        request: Request,
        item_id: int,
        decision: str = Form(...),
        note: str = Form(""),
        band: str = Form(""),
        csrf: str = Form(""),
        view: str | None = None,
    ) -> Response:
        user = await run_in_threadpool(require, request, "review")
        check_csrf(request, csrf)
        form = await request.form()
        categories = None
        if decision == "change":
            categories = {c: int(str(form.get(f"sev_{c}") or 0)) for c in CATEGORIES}
        try:
            await run_in_threadpool(
                lambda: record_decision(
                    engine, item_id, user, decision, policy, note=note, categories=categories, band=band or None
                )
            )
        except (ReviewError, ValueError) as e:
            return RedirectResponse(
                f"/console/items/{item_id}?{urlencode([*_view_param(view), ('e', str(e))])}", status_code=303
            )
        back = urlencode(_view_param(view))
        return RedirectResponse(f"/console/items/{item_id}" + (f"?{back}" if back else ""), status_code=303)

    @router.post("/items/{item_id}/reveal", response_class=HTMLResponse)
    def reveal_item(request: Request, item_id: int, csrf: str = Form("")) -> Response:
        user = require(request, "reveal")
        check_csrf(request, csrf)
        try:
            original = reveal(engine, item_id, user, settings.secret_key)
        except ReviewError as e:
            return RedirectResponse(f"/console/items/{item_id}?e={html.escape(str(e))}", status_code=303)
        return item_page(request, item_id, revealed=original)

    @router.get("/appeals", response_class=HTMLResponse)
    def appeals_page(request: Request) -> HTMLResponse:
        user = require(request, "appeals")
        return render(
            request, "appeals.html", user, appeals=list_appeals(engine, "open"), decided=list_appeals(engine, None)
        )

    @router.post("/appeals/{appeal_id}")
    def appeal_decide(
        request: Request,
        appeal_id: int,
        outcome: str = Form(...),
        note: str = Form(""),
        band: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        user = require(request, "appeals")
        check_csrf(request, csrf)
        try:
            decide_appeal(engine, appeal_id, user, outcome, note, band or None)
        except (ReviewError, ValueError) as e:
            raise HTTPException(422, str(e)) from e
        return RedirectResponse("/console/appeals", status_code=303)

    @router.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request, start: str | None = None, end: str | None = None) -> HTMLResponse:
        from serving.review.reports import chart_titles, report_data, report_sections

        user = require(request, "reports")
        lang = request.session.get("lang", "vi")
        data = report_data(engine, *_period(start, end))
        return render(
            request,
            "reports.html",
            user,
            data=data,
            start=start or "",
            end=end or "",
            sections=report_sections(data, lang),
            charts=chart_titles(lang),
        )

    @router.get("/reports/export.{fmt}")
    def reports_export(request: Request, fmt: str, start: str | None = None, end: str | None = None) -> Response:
        from serving.review.reports import report_csv, report_data, report_pdf

        require(request, "reports")
        lang = request.session.get("lang", "vi")
        data = report_data(engine, *_period(start, end))
        if fmt == "csv":
            return Response(
                report_csv(data, lang),  # starts with a UTF-8 byte order mark: Excel reads Vietnamese right
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": "attachment; filename=vicas-report.csv"},
            )
        if fmt == "pdf":
            return Response(
                report_pdf(data, None, lang),
                media_type="application/pdf",
                headers={"Content-Disposition": "attachment; filename=vicas-report.pdf"},
            )
        if fmt == "json":  # the data behind the tables, with ids, for scripts
            return Response(
                json.dumps(data, ensure_ascii=False, indent=1, default=str),
                media_type="application/json",
                headers={"Content-Disposition": "attachment; filename=vicas-report.json"},
            )
        raise HTTPException(404, "formats: csv, pdf, json")

    @router.get("/reports/chart/{name}.png")
    def report_chart(request: Request, name: str, start: str | None = None, end: str | None = None) -> Response:
        from serving.review.reports import CHARTS, report_chart_png, report_data

        require(request, "reports")
        if name not in CHARTS:
            raise HTTPException(404, f"charts: {sorted(CHARTS)}")
        data = report_data(engine, *_period(start, end))
        return Response(report_chart_png(data, name, request.session.get("lang", "vi")), media_type="image/png")

    @router.get("/blocklists", response_class=HTMLResponse)
    def blocklists_page(request: Request, min_band: str = "T18") -> HTMLResponse:
        from serving.review.blocklists import blocklist_entries

        user = require(request, "blocklists")
        return render(
            request, "blocklists.html", user, min_band=min_band, entries=blocklist_entries(engine, _band(min_band))
        )

    @router.get("/blocklists/{fmt}")
    def blocklist_file(request: Request, fmt: str, min_band: str = "T18") -> Response:
        from serving.review.blocklists import blocklist_entries, csv_list, hosts_file, rpz_zone

        require(request, "blocklists")
        band = _band(min_band)
        entries = blocklist_entries(engine, band)
        makers = {"hosts": (hosts_file, "text/plain"), "rpz": (rpz_zone, "text/dns"), "csv": (csv_list, "text/csv")}
        if fmt not in makers:
            raise HTTPException(404, "formats: hosts, rpz, csv")
        make, media = makers[fmt]
        return PlainTextResponse(make(entries, band), media_type=f"{media}; charset=utf-8")

    @router.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> HTMLResponse:
        user = require(request, "admin")
        return render(request, "audit.html", user, entries=audit.entries(engine), result=audit.verify(engine))

    @router.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request) -> HTMLResponse:
        user = require(request, "admin")
        return render(request, "admin.html", user, roles=ROLES, message=request.query_params.get("m"))

    @router.post("/admin/users")
    def admin_create_user(
        request: Request,
        username: str = Form(...),
        password: str = Form(...),
        role: str = Form(...),
        csrf: str = Form(""),
    ) -> Response:
        user = require(request, "admin")
        check_csrf(request, csrf)
        try:
            create_user(engine, username, password, role)
        except AccountError as e:
            return RedirectResponse(f"/console/admin?m={html.escape(str(e))}", status_code=303)
        with engine.begin() as conn:
            audit.append(conn, user.username, "user:create", f"user:{username}", None, {"role": role})
        return RedirectResponse(f"/console/admin?m=created {html.escape(username)}", status_code=303)

    @router.post("/export")
    def export(request: Request, csrf: str = Form("")) -> Response:
        user = require(request, "admin")
        check_csrf(request, csrf)
        path, n = export_reviewed(engine, settings.reviewed_export_dir)
        with engine.begin() as conn:
            audit.append(conn, user.username, "export:reviewed", str(path), None, {"items": n})
        return RedirectResponse(f"/console/admin?m=exported {n} items to {path}", status_code=303)

    return router


def _day(value: str | None, name: str) -> date | None:
    """A query date (YYYY-MM-DD) or None; a bad one is the client's error (422), never a 500."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise HTTPException(422, f"{name} must be a date written YYYY-MM-DD, got {value!r}") from e


def _period(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    first, last = _day(start, "start"), _day(end, "end")
    if first is not None and last is not None and first > last:
        raise HTTPException(422, f"start {first} is after end {last}")
    return first, last


def _band(value: str) -> Band:
    try:
        return Band(value)
    except ValueError as e:
        raise HTTPException(422, f"min_band must be one of {[b.value for b in BAND_ORDER]}, got {value!r}") from e
