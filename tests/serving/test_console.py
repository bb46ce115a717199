"""The review console over HTTP: accounts and roles, CSRF, lockout, queue, decisions with four eyes,
reveal, appeals through the API, the audit chain, and the feedback export."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from serving.api import create_app
from serving.config import Settings
from serving.db import audit_log, flagged_items, item_views, make_engine, migrate
from serving.keys import create_key
from serving.review import audit
from serving.review.accounts import create_user
from serving.review.reports import report_data
from serving.review.service import seal
from serving.store import FlaggedItem, FlagStore
from tests.serving.helpers import PASSWORD, csrf_token, login
from training.data.adapters import read_reviewed
from vicas import cli

pytestmark = pytest.mark.slow
SECRET = "test-secret-key-0123456789"


def _item(
    key: str,
    band: str,
    cats: dict[str, int],
    url: str | None = None,
    minutes_ago: int = 0,
    score: float = 0.9,
    original: str | None = None,
    needs_review: bool = False,
) -> FlaggedItem:
    text_ = "Bé Na lớp 3A nhà ở [ẩn], mày ngu quá"
    return FlaggedItem(
        item_key=key,
        content_hash=key.ljust(64, "0"),
        partner="telco-a",
        url=url,
        domain=None,
        band=band,
        categories={
            c: {"score": score if cats.get(c) else 0.05, "severity": cats.get(c, 0)}
            for c in ("sexual", "child_sexual", "harassment", "personal_data", "gambling")
        },
        evidence=[{"category": "harassment", "start": 29, "end": 32, "text": "ngu", "score": 0.8}],
        text=text_,
        model_version="vicas-text@test",
        policy_version="p1",
        created_at=(datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
        private=seal(original, SECRET) if original else None,
        needs_review=needs_review,
        under_rating_risk=0.12 if needs_review else 0.01,
    )


@pytest.fixture
def console(tiny_pipeline, database_url, tmp_path):
    migrate(database_url)
    db = make_engine(database_url)
    for name, role in (("rev1", "reviewer"), ("rev2", "reviewer"), ("sup", "supervisor"), ("adm", "admin")):
        create_user(db, name, PASSWORD, role)
    FlagStore(db, tmp_path / "spool").save(
        [
            _item("a:0", "T13", {"harassment": 2}, minutes_ago=30, score=0.55, needs_review=True),
            _item("b:0", "C", {"child_sexual": 3, "sexual": 2}, url="https://x.example/c", minutes_ago=10),
            _item(
                "c:0",
                "T16",
                {"gambling": 2},
                url="https://cado.example/p",
                minutes_ago=20,
                score=0.97,
                original="Bé Na lớp 3A nhà ở ngõ 12 Lê Lợi, mày ngu quá",
            ),
        ]
    )
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=database_url,
        spool_dir=tmp_path / "spool",
        secret_key=SECRET,
        reviewed_export_dir=tmp_path / "reviewed",
    )
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client, db
    db.dispose()


def ids_in_queue(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'class="queue-row" data-id="(\d+)"', page)]


def test_login_csrf_and_lockout(console):
    client, _ = console
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/login"
    r = client.post("/console/login", data={"username": "rev1", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    for _ in range(5):
        assert "Sai tên đăng nhập hoặc mật khẩu" in login(client, "rev1", "not the password").text  # in Vietnamese
    r = login(client, "rev1")  # locked now, even with the right password
    assert r.status_code == 200 and "Tài khoản bị khoá" in r.text
    r = login(client, "rev2")
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie


def test_partner_keys_never_open_the_console_and_roles_are_enforced(console):
    client, db = console
    key = create_key(db, "telco-z", {"classify", "verdicts", "appeals"})
    r = client.get("/console/", headers={"Authorization": f"Bearer {key}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    login(client, "rev1")
    for page in ("/console/admin", "/console/audit", "/console/reports", "/console/blocklists", "/console/appeals"):
        assert client.get(page).status_code == 403, page
    assert client.get("/console/").status_code == 200


def test_queue_order_filters_and_counts(console):
    client, _ = console
    login(client, "rev1")
    page = client.get("/console/").text
    assert ids_in_queue(page) == [2, 1, 3]  # C / child_sexual first, then the least confident
    assert "3 mục" in page  # Vietnamese by default
    page = client.get("/console/", params={"category": "gambling"}).text
    assert ids_in_queue(page) == [3]
    assert ids_in_queue(client.get("/console/", params={"band": "T13"}).text) == [1]
    assert ids_in_queue(client.get("/console/", params={"max_confidence": "0.6"}).text) == [1]
    # the band decision's review outcome is its own queue, marked in the list
    review = client.get("/console/", params={"source": "review"}).text
    assert ids_in_queue(review) == [1]
    assert "Cần xem xét (mô hình không chắc)" in review and 'class="needs-review"' in review
    client.get("/console/lang/en")
    assert "3 items" in client.get("/console/").text


def _decide(client, item_id, decision, **extra):
    token = csrf_token(client, f"/console/items/{item_id}")
    return client.post(
        f"/console/items/{item_id}/decide", data={"decision": decision, "csrf": token, **extra}, follow_redirects=False
    )


def test_decisions_four_eyes_and_reviewed_verdicts(console):
    client, db = console
    login(client, "rev1")
    page = client.get("/console/items/1").text
    assert '<mark class="ev ev-harassment"' in page and "ngu</mark>" in page
    _decide(client, 1, "confirm", note="ok")
    _decide(client, 2, "confirm")
    assert 'data-status="awaiting_second"' in client.get("/console/items/2").text
    r = _decide(client, 2, "second_confirm")
    assert "another+reviewer" in r.headers["location"] or "another%20reviewer" in r.headers["location"]
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "rev2")  # another reviewer, but the second review is a supervisor's (the permission is checked)
    r = _decide(client, 2, "second_confirm")
    assert "supervisor" in unquote(r.headers["location"])
    item_page = client.get("/console/items/2").text
    assert 'data-status="awaiting_second"' in item_page and "Chờ người duyệt thứ hai" in item_page
    _decide(client, 3, "change", **{"sev_gambling": "3", "sev_sexual": "0"})
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")
    _decide(client, 2, "second_confirm")
    with db.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(select(flagged_items)).mappings()}
    assert rows[1]["status"] == "reviewed" and rows[1]["final_band"] == "T13"
    assert rows[2]["status"] == "reviewed" and rows[2]["final_band"] == "C"
    assert rows[3]["status"] == "awaiting_second" and rows[3]["final_band"] is None  # gambling 3 -> C: 4 eyes
    key = create_key(db, "filter-q", {"verdicts"})
    v = client.get("/v1/verdicts", params={"url": "https://x.example/c"}, headers={"Authorization": f"Bearer {key}"})
    assert v.json()["source"] == "reviewed" and v.json()["band"] == "C"
    actions = [e["action"] for e in audit.entries(db)]
    assert actions.count("decision:confirm") == 2 and "decision:second_confirm" in actions


def test_reveal_needs_the_role_and_is_logged(console):
    client, db = console
    login(client, "rev1")
    assert "reveal-button" not in client.get("/console/items/3").text
    assert client.post("/console/items/3/reveal", data={"csrf": csrf_token(client, "/console/")}).status_code == 403
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")
    page = client.get("/console/items/3").text
    assert "ngõ 12 Lê Lợi" not in page and "reveal-button" in page
    r = client.post("/console/items/3/reveal", data={"csrf": csrf_token(client, "/console/items/3")})
    assert "ngõ 12 Lê Lợi" in r.text
    assert [e for e in audit.entries(db) if e["action"] == "reveal" and e["actor"] == "sup"]


def test_appeal_from_partner_to_console_and_back(console):
    client, db = console
    key = create_key(db, "telco-a", {"appeals", "verdicts"})
    partner = {"Authorization": f"Bearer {key}"}
    r = client.post(
        "/v1/appeals", json={"item_id": 3, "reason": "đây là tin tức, không phải quảng cáo"}, headers=partner
    )
    assert r.status_code == 201 and r.json()["status"] == "open"
    appeal_id = r.json()["id"]
    assert client.post("/v1/appeals", json={"item_id": 999, "reason": "x"}, headers=partner).status_code == 422
    login(client, "sup")
    assert "đây là tin tức" in client.get("/console/appeals").text
    token = csrf_token(client, "/console/appeals")
    client.post(
        f"/console/appeals/{appeal_id}",
        data={"outcome": "overturned", "band": "T13", "note": "news report", "csrf": token},
    )
    got = client.get(f"/v1/appeals/{appeal_id}", headers=partner).json()
    assert got["status"] == "overturned" and got["decided_band"] == "T13"
    verdict = client.get("/v1/verdicts", params={"url": "https://cado.example/p"}, headers=partner).json()
    assert verdict["band"] == "T13" and verdict["source"] == "reviewed"


def test_audit_chain_detects_edits_and_deletions(console, monkeypatch, capsys, database_url):
    client, db = console
    login(client, "rev1")
    for item_id in (1, 2):
        _decide(client, item_id, "confirm")
    assert audit.verify(db).ok
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    assert cli.main(["audit", "verify"]) == 0
    with db.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == 1).values(actor="someone-else"))
    result = audit.verify(db)
    assert not result.ok and any("edited" in p for p in result.problems)
    assert cli.main(["audit", "verify"]) == 1
    with db.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 1"))
    assert any("deleted" in p or "does not follow" in p for p in audit.verify(db).problems)
    capsys.readouterr()


def test_reviewed_items_feed_the_ingest_stage(console, tmp_path):
    client, _db = console
    login(client, "rev1")
    _decide(client, 1, "change", **{"sev_harassment": "1"})
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "adm")
    r = client.post("/console/export", data={"csrf": csrf_token(client, "/console/admin")}, follow_redirects=False)
    assert "exported 1 items" in unquote(r.headers["location"])
    rows = list(read_reviewed(tmp_path / "reviewed"))
    assert len(rows) == 1 and rows[0].labels["harassment"] == (1, 1) and rows[0].split == "train"
    assert rows[0].labels["sexual"] == (0, 0)
    assert json.loads((tmp_path / "reviewed" / "reviewed.jsonl").read_text().splitlines()[0])["kind"] == "reviewed"


def test_admin_creates_accounts_from_the_console(console):
    client, db = console
    login(client, "adm")
    token = csrf_token(client, "/console/admin")
    r = client.post(
        "/console/admin/users",
        data={"username": "rev3", "password": "short", "role": "reviewer", "csrf": token},
        follow_redirects=False,
    )
    assert "12 characters" in unquote(r.headers["location"])
    client.post(
        "/console/admin/users", data={"username": "rev3", "password": PASSWORD * 2, "role": "reviewer", "csrf": token}
    )
    assert "user:create" in [e["action"] for e in audit.entries(db)]


def test_reports_and_blocklists_for_supervisors(console):
    from serving.review.blocklists import verify_checksum

    client, _db = console
    login(client, "rev1")
    _decide(client, 1, "false_positive")
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "rev2")
    _decide(client, 2, "confirm")
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")  # the second review of a C decision is a supervisor's
    _decide(client, 2, "second_confirm")
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")
    assert client.get("/console/reports").status_code == 200
    csv_text = client.get("/console/reports/export.csv").text
    header = csv_text.splitlines()[0]
    assert header.startswith("\ufeff") and "Phần" in header and "Xâm hại tình dục trẻ em" in csv_text  # BOM, Vietnamese
    assert "child_sexual" in csv_text  # the ids stay in the code columns for scripts
    pdf = client.get("/console/reports/export.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/console/reports/chart/by_band.png").content.startswith(b"\x89PNG")
    hosts = client.get("/console/blocklists/hosts", params={"min_band": "T18"}).text
    assert "x.example" in hosts and "cado.example" not in hosts and verify_checksum(hosts)
    rpz = client.get("/console/blocklists/rpz", params={"min_band": "C"}).text
    assert "x.example CNAME ." in rpz and verify_checksum(rpz)
    assert client.get("/console/blocklists/csv", params={"min_band": "R21"}).status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/console/blocklists", {"min_band": "X"}),
        ("/console/blocklists/hosts", {"min_band": "R21"}),
        ("/console/reports", {"start": "2026-13-45"}),
        ("/console/reports", {"end": "hôm qua"}),
        ("/console/reports/export.csv", {"start": "01/12/2026"}),
        ("/console/reports/export.pdf", {"end": "x"}),
        ("/console/reports/chart/by_band.png", {"start": "yesterday"}),
    ],
)
def test_bad_query_values_get_422_not_500(console, path, params):
    """Issue: a partner API that stays up, item 14: these answered 500 and reset the connection."""
    client, _ = console
    login(client, "sup")
    r = client.get(path, params=params)
    assert r.status_code == 422, (path, params, r.status_code)
    assert next(iter(params)) in r.text


def test_confidence_filter_accepts_a_decimal_comma(console):
    client, _ = console
    login(client, "rev1")
    assert ids_in_queue(client.get("/console/", params={"max_confidence": "0,6"}).text) == [1]


def _decide_appeal(client, appeal_id, outcome, band):
    token = csrf_token(client, "/console/appeals")
    return client.post(
        f"/console/appeals/{appeal_id}",
        data={"outcome": outcome, "band": band, "note": "n", "csrf": token},
        follow_redirects=False,
    )


def test_an_appeal_that_ends_at_c_waits_for_a_second_reviewer(console):
    """Issue: a partner API that stays up, item 9: one person could put an item at C through an appeal."""
    client, db = console
    key = create_key(db, "telco-a", {"appeals", "verdicts"})
    partner = {"Authorization": f"Bearer {key}"}
    appeal_id = client.post("/v1/appeals", json={"item_id": 1, "reason": "nặng hơn thế"}, headers=partner).json()["id"]
    login(client, "sup")
    _decide_appeal(client, appeal_id, "overturned", "C")
    with db.connect() as conn:
        item = conn.execute(select(flagged_items).where(flagged_items.c.id == 1)).mappings().one()
    assert item["status"] == "awaiting_second" and item["final_band"] is None  # not final on one person's word
    r = _decide(client, 1, "second_confirm")  # the same supervisor cannot be the second pair of eyes
    assert "another" in unquote(r.headers["location"])
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "adm")
    _decide(client, 1, "second_confirm")
    with db.connect() as conn:
        item = conn.execute(select(flagged_items).where(flagged_items.c.id == 1)).mappings().one()
    assert item["status"] == "reviewed" and item["final_band"] == "C"


def test_an_appeal_cannot_overrule_an_item_waiting_for_its_second_review(console):
    client, db = console
    key = create_key(db, "telco-a", {"appeals"})
    login(client, "rev1")
    _decide(client, 2, "confirm")  # C: waits for a second reviewer
    appeal = client.post(
        "/v1/appeals", json={"item_id": 2, "reason": "không phải"}, headers={"Authorization": f"Bearer {key}"}
    )
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")
    r = _decide_appeal(client, appeal.json()["id"], "overturned", "P")
    assert r.status_code == 422 and "duyệt lần hai" in r.text  # an HTML page in the session's language
    with db.connect() as conn:
        item = conn.execute(select(flagged_items).where(flagged_items.c.id == 2)).mappings().one()
    assert item["status"] == "awaiting_second"


def test_partners_cannot_appeal_or_read_each_others_items(console):
    """Item 8: partner B could appeal A's item by id and read its URL in the answer."""
    client, db = console
    other = create_key(db, "telco-b", {"appeals"})
    r = client.post("/v1/appeals", json={"item_id": 3, "reason": "x"}, headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 422 and "cado.example" not in r.text
    own = create_key(db, "telco-a2", {"appeals"})
    with db.begin() as conn:
        conn.execute(update(flagged_items).where(flagged_items.c.id == 3).values(partner="telco-a2"))
    r = client.post("/v1/appeals", json={"item_id": 3, "reason": "x"}, headers={"Authorization": f"Bearer {own}"})
    assert r.status_code == 201


def test_a_lower_model_verdict_never_replaces_a_higher_one(console):
    from serving.store import lookup_verdict, record_verdict

    _client, db = console
    url = "https://forum.example/thread/1"
    record_verdict(db, url, "C", "model", "h1", "m", "p")
    record_verdict(db, url, "P", "model", "h2", "m", "p")  # a harmless post at the same URL
    assert lookup_verdict(db, url=url)["band"] == "C"
    record_verdict(db, "https://forum.example/thread/2", "T13", "model", "h3", "m", "p")
    assert lookup_verdict(db, domain="forum.example")["band"] == "C"  # a domain: the maximum of its URLs
    record_verdict(db, url, "P", "reviewed", None, None, None)  # a reviewer may lower it
    assert lookup_verdict(db, url=url)["band"] == "P"


def test_a_session_cookie_stops_working_after_logout(console):
    """Item 10: a copied session cookie kept working after its owner logged out."""
    client, _ = console
    login(client, "rev1")
    stolen = dict(client.cookies)
    assert client.get("/console/", follow_redirects=False).status_code == 200
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    client.cookies.clear()
    for name, value in stolen.items():
        client.cookies.set(name, value)
    r = client.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_several_workers_refuse_to_start_without_a_secret_key(monkeypatch, capsys):
    monkeypatch.delenv("VICAS_SECRET_KEY", raising=False)
    monkeypatch.chdir("/")  # no .env to read
    assert cli.main(["serve", "--workers", "2"]) == 2
    assert "VICAS_SECRET_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("base_url", "secure_cookies", "logs_in", "secure_flag"),
    [
        ("http://127.0.0.1:8000", None, True, False),  # a laptop: the default works over plain HTTP
        ("https://console.example", None, True, True),  # over HTTPS the cookie is Secure
        ("http://127.0.0.1:8000", True, False, True),  # forced Secure over HTTP: a clear error, not "CSRF"
    ],
)
def test_console_cookies_over_http_and_https(tiny_pipeline, tmp_path, base_url, secure_cookies, logs_in, secure_flag):
    """Issue: partner API, item 14: the console login failed over plain HTTP on 127.0.0.1 with a CSRF message."""
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    migrate(url)
    db = make_engine(url)
    create_user(db, "rev1", PASSWORD, "reviewer")
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=url,
        spool_dir=tmp_path / "spool",
        secret_key=SECRET,
        secure_cookies=secure_cookies,
    )
    with TestClient(create_app(settings), base_url=base_url) as client:
        page = client.get("/console/login")
        assert ("secure" in page.headers["set-cookie"].lower()) is secure_flag
        r = login(client, "rev1")
        if logs_in:
            assert r.status_code == 303 and client.get("/console/").status_code == 200
        else:
            assert r.status_code == 403 and "VICAS_SECURE_COOKIES" in r.text
    db.dispose()


def test_a_slow_console_page_does_not_hold_up_partners(console, monkeypatch):
    """Issue: partner API, item 5: console handlers (queries, argon2, matplotlib) ran on the event loop.

    Ordered by events, not timed: the console page is held inside its handler until /healthz has answered.
    On the event loop the page would block /healthz until the hold times out (then `finished` is set first);
    in a worker thread /healthz answers while the page is still held, however loaded the machine is."""
    import threading

    import serving.review.web as web

    client, _ = console
    login(client, "sup")
    real = web.list_appeals
    inside, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow(*args, **kwargs):  # a heavy report or a slow database
        inside.set()
        release.wait(timeout=20)
        finished.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(web, "list_appeals", slow)
    page = threading.Thread(target=lambda: client.get("/console/appeals"))
    page.start()
    try:
        assert inside.wait(timeout=20), "the console page never reached its handler"
        assert client.get("/healthz").status_code == 200
        answered_while_held = not finished.is_set()
    finally:
        release.set()
        page.join(timeout=30)
    assert answered_while_held, "/healthz waited behind a console page held in its handler"


def test_the_item_page_shows_the_decision_as_it_was_made(console):
    """Issue: console, item 2: the item page recomputed the reasoning with today's policy and could
    contradict the stored band (band T16 beside 'gambling 2 -> T18')."""
    client, db = console
    decided = _item("d:0", "T16", {"gambling": 2}, minutes_ago=5)
    decided.decision = {
        "band": "T16",
        "actions": ["warn"],
        "reasons": [{"category": "gambling", "severity": 2, "band": "T16", "forced": True}],
        "policy_version": "2025.01-old",
        "needs_review": False,
    }
    FlagStore(db, Path(tempfile.mkdtemp())).save([decided])
    with db.connect() as conn:
        new_id = conn.execute(select(flagged_items.c.id).where(flagged_items.c.item_key == "d:0")).scalar_one()
    login(client, "rev1")
    page = client.get(f"/console/items/{new_id}").text
    reasons = page[page.index('id="reasons"') : page.index("</ul>", page.index('id="reasons"'))]
    assert "T16" in reasons and "T18" not in reasons and "2025.01-old" in page
    old = client.get("/console/items/3").text  # stored before decisions were kept: recomputed, and said so
    assert 'id="recomputed"' in old


def test_needs_review_is_a_queue_of_its_own_with_its_own_next_item(console):
    client, db = console
    FlagStore(db, Path(tempfile.mkdtemp()) / "spool").save(
        [_item("d:0", "T16", {"gambling": 2}, minutes_ago=5, score=0.98, needs_review=True)]
    )  # item 4
    login(client, "rev1")
    page = client.get("/console/").text
    assert 'id="nav-needs-review"' in page and 'id="view-pending" aria-current="page"' in page
    review = client.get("/console/", params={"view": "review"}).text
    assert 'id="view-review" aria-current="page"' in review
    assert ids_in_queue(review) == [1, 4] and "2 mục" in review  # only the model's unsure bands
    assert 'href="/console/items/1?view=review"' in review  # opened from this queue, it stays in it
    item = client.get("/console/items/1", params={"view": "review"}).text
    assert 'id="next-link" href="/console/items/4?view=review"' in item  # not item 2, next in the main queue
    assert 'id="next-link" href="/console/items/3"' in client.get("/console/items/1").text
    # a decision keeps the reviewer in the queue they came from
    token = csrf_token(client, "/console/items/1?view=review")
    r = client.post(
        "/console/items/1/decide?view=review", data={"decision": "confirm", "csrf": token}, follow_redirects=False
    )
    assert r.headers["location"] == "/console/items/1?view=review"
    assert ids_in_queue(client.get("/console/", params={"view": "review"}).text) == [4]


def test_the_report_counts_severe_items_each_reviewer_saw_per_day(console):
    client, db = console
    login(client, "rev1")
    for item_id in (2, 2, 1, 3):  # item 2 is child_sexual 3 (severe), opened twice; 1 and 3 are not severe
        assert client.get(f"/console/items/{item_id}").status_code == 200
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/")})
    login(client, "sup")
    client.get("/console/items/2")
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    with db.connect() as conn:
        views = conn.execute(select(item_views.c.reviewer, item_views.c.item_id, item_views.c.severe)).all()
    assert sorted(views) == [("rev1", 1, False), ("rev1", 2, True), ("rev1", 3, False), ("sup", 2, True)]
    data = report_data(db)
    assert data["severe_views"] == {"rev1": {today.isoformat(): 1}, "sup": {today.isoformat(): 1}}
    page = client.get("/console/reports").text
    section = page[page.index('data-section="severe_views"') :]
    assert "Số mục nghiêm trọng mỗi người duyệt đã xem theo ngày" in section
    assert f"rev1, {today:%d/%m/%Y}</td><td>1</td>" in section
    assert "Tất cả người duyệt, tất cả các ngày</td><td>2</td>" in section
    assert report_data(db, today + timedelta(days=1))["severe_views"] == {}  # the period selects view days
