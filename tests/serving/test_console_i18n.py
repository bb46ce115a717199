"""The console in Vietnamese first, English second (issue #18 item 1): gettext catalogues, names of ids,
HTML error pages, reports (charts, PDF, CSV with a BOM), local times (dd/MM/yyyy HH:mm, UTC+7) and decimal
commas. The walk signs in as an admin, visits every console page and report in Vietnamese with the
translator in strict mode, and fails on any string that has no Vietnamese translation."""

from __future__ import annotations

import csv
import gettext
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from PIL import Image
from selectolax.lexbor import LexborHTMLParser
from sqlalchemy import insert

from serving.api import create_app
from serving.config import Settings
from serving.db import hash_matches, make_engine, migrate
from serving.keys import create_key
from serving.review import i18n
from serving.review.accounts import create_user
from serving.review.images import item_thumbnails
from serving.review.reports import pdf_strings, report_csv, report_data
from serving.review.service import seal
from serving.store import FlaggedItem, FlagStore
from tests.serving.helpers import PASSWORD, csrf_token
from vicas.taxonomy import BAND_ORDER, CATEGORIES

pytestmark = pytest.mark.slow
SECRET = "test-secret-key-0123456789"
KNOWN_UTC = datetime(2026, 11, 30, 17, 5, tzinfo=UTC)  # 01/12/2026 00:05 in Hà Nội (UTC+7)
KNOWN_LOCAL = "01/12/2026 00:05"

# English words and ids that must not reach a Vietnamese reviewer as visible text (ids may stay in URLs,
# form values and attributes). Data (usernames, partner names, URLs, model versions) avoids these words.
ENGLISH = re.compile(
    r"\b(pending|open|awaiting_second|awaiting|reviewed|review|confirm|confirmed|false_positive|second_confirm|"
    r"change|upheld|overturned|appeal|decision|reviewer|supervisor|administrator|admin|"
    + "|".join(CATEGORIES)
    + r"|sexual|violence|hate|harassment|profanity|substances|gambling|scam|personal|"
    r"queue|filter|sign|items?|category|categories|band|status|partner|created|confidence|save|download|"
    r"reports?|audit|time|actor|action|target|after|data|flagged|precision|totals?|measure|value|week|"
    r"section|period|generated|not found|forbidden|invalid|missing|error|none|today|beginning)\b",
    re.IGNORECASE,
)
TIME = re.compile(r'<time datetime="([^"]+)">([^<]*)</time>')


def _item(key: str, band: str, cats: dict[str, int], created: datetime, **extra) -> FlaggedItem:
    return FlaggedItem(
        item_key=key,
        content_hash=key.ljust(64, "0"),
        partner="telco-a",
        url=extra.pop("url", None),
        domain=None,
        band=band,
        categories={c: {"score": 0.9 if cats.get(c) else 0.05, "severity": cats.get(c, 0)} for c in CATEGORIES},
        evidence=[{"category": next(iter(cats)), "start": 0, "end": 5, "text": "Bé Na", "score": 0.9}],
        text="Bé Na lớp 3A nhà ở [ẩn], mày ngu quá",
        model_version="vicas-text@test",
        policy_version="p1",
        created_at=created.isoformat(),
        **extra,
    )


@pytest.fixture
def console(tiny_pipeline, database_url, tmp_path):
    migrate(database_url)
    db = make_engine(database_url)
    for name, role in (("rev1", "reviewer"), ("sup", "supervisor"), ("adm", "admin")):
        create_user(db, name, PASSWORD, role)
    FlagStore(db, tmp_path / "spool").save(
        [
            _item("a:0", "T13", {"harassment": 2}, KNOWN_UTC, needs_review=True, under_rating_risk=0.2),
            _item("b:0", "C", {"child_sexual": 3, "sexual": 2}, KNOWN_UTC + timedelta(hours=1), url="https://x.vn/c"),
            _item(
                "c:0",
                "T16",
                {"gambling": 2, "personal_data": 2},
                KNOWN_UTC + timedelta(hours=2),
                url="https://cado.vn/p",
                private=seal("Bé Na lớp 3A nhà ở ngõ 12 Lê Lợi", SECRET),
            ),
            _item("d:0", "C", {"self_harm": 3, "substances": 3}, KNOWN_UTC + timedelta(hours=3)),
            _item("e:0", "T18", {"violence": 3, "hate": 2, "scam": 3, "dangerous_acts": 2}, KNOWN_UTC),
            _item(  # an image kept as a sealed thumbnail with its evidence boxes, a second one in a hash list
                "f:0",
                "C",
                {"child_sexual": 3, "sexual": 2},
                KNOWN_UTC,
                images=item_thumbnails(
                    [Image.new("RGB", (400, 200), (200, 120, 90))],
                    [(400, 200)],
                    [SimpleNamespace(category="sexual", source="image:0:nudity", boxes=[(10, 10, 100, 80)])],
                    [1],
                    [{"sexual": 2}],
                    {"sexual": 2},
                    SECRET,
                ),
            ),
        ]
    )
    with db.begin() as conn:
        conn.execute(
            insert(hash_matches).values(
                item_key="f:0", image=1, list_name="danh-sach-thu", list_version="v1", hash_type="md5", distance=0,
                partner="telco-a", created_at=KNOWN_UTC,
            )
        )  # fmt: skip
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


def _login(client: TestClient, user: str) -> None:
    client.post("/console/logout", data={"csrf": csrf_token(client, "/console/login")})
    r = client.post(
        "/console/login",
        data={"username": user, "password": PASSWORD, "csrf": csrf_token(client)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]


def _decide(client: TestClient, item_id: int, decision: str, **extra: str) -> str:
    token = csrf_token(client, f"/console/items/{item_id}")
    r = client.post(
        f"/console/items/{item_id}/decide",
        data={"decision": decision, "csrf": token, **extra},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return r.headers["location"]


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _history(client: TestClient, db) -> dict[str, str]:
    """Every kind of decision, appeal and audit entry; returns console paths that carry messages."""
    key = create_key(db, "telco-a", {"appeals", "verdicts"})
    partner = {"Authorization": f"Bearer {key}"}
    _login(client, "rev1")
    _decide(client, 1, "confirm", note="đúng")
    _decide(client, 2, "confirm")  # C: waits for a second reviewer
    error = _decide(client, 2, "second_confirm")  # the same reviewer: refused, with a message
    _decide(client, 5, "false_positive")
    _decide(client, 4, "change", sev_self_harm="2", sev_substances="1")
    _login(client, "sup")
    _decide(client, 2, "second_confirm")
    appeals = [
        client.post("/v1/appeals", json={"item_id": i, "reason": "đây là tin tức"}, headers=partner).json()["id"]
        for i in (3, 1, 5)
    ]
    token = csrf_token(client, "/console/appeals")
    client.post(f"/console/appeals/{appeals[1]}", data={"outcome": "upheld", "note": "giữ", "csrf": token})
    client.post(f"/console/appeals/{appeals[2]}", data={"outcome": "overturned", "band": "T13", "csrf": token})
    _login(client, "adm")
    client.post("/console/items/3/reveal", data={"csrf": csrf_token(client, "/console/items/3")})
    client.post("/console/items/6/images/0/unblur", data={"csrf": csrf_token(client, "/console/items/6")})
    token = csrf_token(client, "/console/admin")
    created = client.post(
        "/console/admin/users",
        data={"username": "rev9", "password": PASSWORD, "role": "reviewer", "csrf": token},
        follow_redirects=False,
    ).headers["location"]
    token = csrf_token(client, "/console/admin")
    refused = client.post(
        "/console/admin/users",
        data={"username": "rev8", "password": "short", "role": "reviewer", "csrf": token},
        follow_redirects=False,
    ).headers["location"]
    exported = client.post(
        "/console/export", data={"csrf": csrf_token(client, "/console/admin")}, follow_redirects=False
    ).headers["location"]
    return {"error": _path(error), "created": _path(created), "refused": _path(refused), "exported": _path(exported)}


def visible_text(page: str) -> str:
    """What a person reads: the page's text without tags, scripts, styles or attribute values."""
    tree = LexborHTMLParser(page)
    for node in tree.css("script, style"):
        node.decompose()
    return " ".join((tree.root.text(separator=" ") if tree.root else "").split())


def _english_in(text: str) -> list[str]:
    words = " ".join(w for w in text.split() if "/" not in w)  # file paths and URLs are data
    return sorted({m.group(0) for m in ENGLISH.finditer(words)})


PAGES = [
    "/console/login",
    "/console/",
    "/console/?status=all",
    "/console/?status=reviewed",
    "/console/?band=C&status=all",
    "/console/?category=self_harm&status=all",
    "/console/?source=review&status=all",
    "/console/?source=appeal&status=all",
    "/console/?max_confidence=0,95&status=all",
    "/console/?date_from=2026-11-30&date_to=2026-12-31&status=all",
    "/console/?view=review",
    "/console/?view=appeal",
    *[f"/console/items/{i}" for i in range(1, 7)],
    "/console/items/6?view=review",
    "/console/appeals",
    "/console/reports",
    "/console/reports?start=2026-11-01&end=2026-12-31",
    "/console/reports?start=2030-01-01&end=2030-01-31",  # an empty period
    "/console/blocklists",
    "/console/blocklists?min_band=C",
    "/console/audit",
    "/console/admin",
]
ERROR_PAGES = [
    ("/console/items/999", 404),
    ("/console/no-such-page", 404),
    ("/console/items/abc", 422),
    ("/console/?max_confidence=nhiều", 422),
    ("/console/?date_from=hôm-qua", 422),
    ("/console/reports?start=2026-13-45", 422),
    ("/console/reports?start=2026-12-31&end=2026-12-01", 422),
    ("/console/reports/export.xlsx", 404),
    ("/console/reports/chart/pie.png", 404),
    ("/console/blocklists?min_band=R21", 422),
    ("/console/logout", 405),  # a form's target opened as a page
    ("/console/items/6/images/1.jpg", 404),  # the image in the hash list: never kept
]


def test_no_english_string_reaches_a_vietnamese_reviewer(console, monkeypatch):
    client, db = console
    messages = _history(client, db)
    monkeypatch.setenv(i18n.STRICT_ENV, "1")
    i18n.clear_misses()
    seen: dict[str, str] = {}
    for path in [*PAGES, *messages.values()]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        seen[path] = r.text
    for path, status in ERROR_PAGES:
        r = client.get(path)
        assert r.status_code == status and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
        assert 'id="error-page"' in r.text and 'lang="vi"' in r.text, path
        seen[path] = r.text
    # a 403 and a 422 from a form, as a reviewer meets them
    _login(client, "rev1")
    for path in ("/console/admin", "/console/reports"):
        r = client.get(path)
        assert r.status_code == 403 and "Vai trò của bạn không được vào trang này" in r.text
        seen[f"403 {path}"] = r.text
    r = client.post("/console/items/1/decide", data={"csrf": csrf_token(client, "/console/")})  # no decision field
    assert r.status_code == 422 and "Thiếu mục “Quyết định”" in r.text
    seen["422 form"] = r.text
    r = client.post("/console/items/1/decide", data={"decision": "confirm", "csrf": "forged"})
    assert r.status_code == 403 and "CSRF" in r.text
    seen["403 csrf"] = r.text
    _login(client, "adm")

    # reports: the four charts, the CSV and the PDF
    for name in ("by_category", "by_band", "by_week", "precision"):
        r = client.get(f"/console/reports/chart/{name}.png", params={"start": "2026-11-01", "end": "2026-12-31"})
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), name
    r = client.get("/console/reports/export.csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Phần", "Chỉ tiêu", "Giá trị", "Mã phần", "Mã chỉ tiêu"]
    csv_text = "\n".join(" ".join(row[:3]) for row in rows)  # the last two columns are ids, for scripts
    pdf = client.get("/console/reports/export.pdf").content
    assert pdf.startswith(b"%PDF")
    pdf_text = _pdf_text(pdf, db)

    assert i18n.misses("vi") == [], "strings without a Vietnamese translation"
    english = {path: _english_in(visible_text(page)) for path, page in seen.items()}
    english["CSV"] = _english_in(csv_text)
    english["PDF"] = _english_in(pdf_text)
    assert {k: v for k, v in english.items() if v} == {}
    # names, not ids
    assert "Xâm hại tình dục trẻ em" in seen["/console/?status=all"]
    assert "Tự gây thương tích" in seen["/console/items/4"]
    assert "Quyết định: duyệt lần hai" in seen["/console/audit"] and "Quản trị viên" in seen["/console/admin"]
    assert "Tiếp nhận khiếu nại" in seen["/console/audit"] and "Khiếu nại: giữ nguyên" in seen["/console/audit"]
    assert "Lần duyệt thứ hai của quyết định nhóm C phải do một người duyệt khác" in seen[messages["error"]]
    assert "Đã tạo tài khoản rev9" in seen[messages["created"]]
    assert "Mật khẩu phải có ít nhất 12 ký tự" in seen[messages["refused"]]
    assert re.search(r"Đã xuất \d+ mục vào", seen[messages["exported"]])
    assert "Xâm hại tình dục trẻ em" in csv_text and "Số mục bị gắn cờ theo nhóm tuổi" in pdf_text
    assert "Xem ảnh không làm mờ" in seen["/console/audit"] and "Bỏ làm mờ (u)" in seen["/console/items/6"]
    assert "có trong danh sách mã băm danh-sach-thu" in seen["/console/items/6"]
    assert "Số mục nghiêm trọng mỗi người duyệt đã xem theo ngày" in seen["/console/reports"]
    assert 'id="view-review" aria-current="page"' in seen["/console/?view=review"]


def _pdf_text(pdf: bytes, db) -> str:
    """The PDF's text as a reader would copy it (pypdf), or else the strings its pages are drawn from."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return "\n".join(pdf_strings(report_data(db), None, "vi"))
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_times_are_shown_in_vietnam_time_as_dd_mm_yyyy(console):
    client, db = console
    _history(client, db)
    queue = client.get("/console/", params={"status": "all"}).text
    row = re.search(r'data-id="1">(.*?)</tr>', queue, re.S)
    assert row and KNOWN_LOCAL in row.group(1)  # stored 2026-11-30 17:05 UTC
    assert f'<time datetime="2026-11-30T17:05:00+00:00">{KNOWN_LOCAL}</time>' in queue
    item = client.get("/console/items/1").text
    assert KNOWN_LOCAL in item and "2026-11-30" not in visible_text(item)
    checked = 0
    for path in (
        "/console/",
        "/console/?status=all",
        "/console/items/1",
        "/console/items/2",
        "/console/appeals",
        "/console/audit",
    ):
        for utc, shown in TIME.findall(client.get(path).text):
            local = datetime.fromisoformat(utc).astimezone(UTC) + timedelta(hours=7)
            assert shown == local.strftime("%d/%m/%Y %H:%M"), (path, utc, shown)
            checked += 1
    assert checked >= 10
    rows = list(csv.reader(io.StringIO(client.get("/console/reports/export.csv").content.decode("utf-8-sig"))))
    generated = next(r[2] for r in rows if r[3:] == ["period", "generated_at"])
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", generated)


def test_decimal_commas_shown_and_both_marks_accepted(console):
    client, _ = console
    _login(client, "rev1")
    page = client.get("/console/").text
    assert "0,90" in page and "0.90" not in visible_text(page)
    comma = client.get("/console/", params={"max_confidence": "0,5", "status": "all"}).text
    point = client.get("/console/", params={"max_confidence": "0.5", "status": "all"}).text
    ids = re.compile(r'class="queue-row" data-id="(\d+)"')
    assert ids.findall(comma) == ids.findall(point) == []  # every item is at 0.9: none at most 0.5
    assert ids.findall(client.get("/console/", params={"max_confidence": "0,95", "status": "all"}).text)
    assert 'name="max_confidence" size="4" inputmode="decimal" value="0,5"' in comma
    assert "0,900" in client.get("/console/items/1").text  # the scores table


def test_csv_starts_with_a_bom_and_keeps_ids(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate(url)
    db = make_engine(url)
    data = report_data(db)
    db.dispose()
    for lang, header in (("vi", "Phần"), ("en", "Section")):
        text = report_csv(data, lang)
        assert text.startswith("\ufeff" + header)
        assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")


def test_english_still_works(console):
    client, db = console
    _history(client, db)
    client.get("/console/lang/en")
    queue = client.get("/console/", params={"status": "all"}).text
    assert 'lang="en"' in queue and "Child sexual abuse" in queue and "Filter" in queue and "0.90" in queue
    assert re.search(r"\d+ items", queue)
    assert (
        "Awaiting a second reviewer" in client.get("/console/items/4").text
        or "Reviewed" in client.get("/console/items/4").text
    )
    assert "Decision: second review" in client.get("/console/audit").text
    r = client.get("/console/items/999")
    assert r.status_code == 404 and "Not found" in r.text and "no such item" in r.text
    rows = list(csv.reader(io.StringIO(client.get("/console/reports/export.csv").content.decode("utf-8-sig"))))
    assert rows[0] == ["Section", "Measure", "Value", "Section code", "Measure code"]
    assert ["Items by category", "Child sexual abuse"] in [r[:2] for r in rows]
    assert any("Flagged items by band" in s for s in pdf_strings(report_data(db), None, "en"))
    client.get("/console/lang/vi")  # and back
    assert "Xâm hại tình dục trẻ em" in client.get("/console/", params={"status": "all"}).text


def test_a_crash_or_a_database_outage_is_a_page_in_the_reviewers_language(console, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import serving.review.web as web

    client, _ = console
    browser = TestClient(client.app, base_url="https://testserver", raise_server_exceptions=False)
    _login(browser, "sup")

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web, "list_appeals", crash)
    r = browser.get("/console/appeals")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "Lỗi hệ thống" in r.text and "a bug" not in r.text  # no internals shown
    assert r.headers["x-request-id"] in r.text  # the id to quote

    def outage(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(web, "list_appeals", outage)
    r = browser.get("/console/appeals")
    assert r.status_code == 503 and r.headers["retry-after"] == "5" and "cơ sở dữ liệu" in r.text


def test_the_partner_api_keeps_problem_json(console):
    client, db = console
    key = create_key(db, "telco-a", {"appeals"})
    r = client.get("/v1/appeals/999", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_found"
    r = client.get("/v1/no-such-route")
    assert r.headers["content-type"].startswith("application/problem+json")


# --- the catalogues themselves (no database) --------------------------------------------------------------

LOCALE = Path(i18n.LOCALE_DIR)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_catalogues_are_complete_and_compiled(lang):
    """Every message of the template is translated, and the committed .mo is the compiled .po."""
    with (LOCALE / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    translated = {m.id for m in catalog if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [1])}
    assert template - translated == set(), f"untranslated in {lang}"
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy entries are not used until reviewed"
    assert [(m.id, errors) for m, errors in catalog.check()] == []  # placeholders as in the message id
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    fresh = gettext.GNUTranslations(buf)
    with (LOCALE / lang / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        committed = gettext.GNUTranslations(f)
    assert committed._catalog == fresh._catalog, "messages.mo is stale: run pybabel compile (locale/README.md)"


def test_every_id_has_a_name_in_both_languages():
    for lang in i18n.LANGUAGES:
        cat = i18n.catalogue(lang)
        for names in (
            i18n.CATEGORY_NAMES,
            i18n.SEVERITY_NAMES,
            i18n.BAND_NAMES,
            i18n.ITEM_STATUSES,
            i18n.DECISIONS,
            i18n.ROLES,
            i18n.AUDIT_ACTIONS,
            i18n.POLICY_ACTIONS,
        ):
            assert all(cat.has(m) for m in names.values()), (lang, names)
        assert all(cat.has(m) for _, m, _ in i18n.MESSAGES), lang
    assert set(i18n.CATEGORY_NAMES) == set(CATEGORIES)
    assert set(i18n.BAND_NAMES) == {b.value for b in BAND_ORDER}
    assert i18n.category_name("vi", "self_harm") == "Tự gây thương tích, tự sát"
    assert i18n.category_name("en", "child_sexual") == "Child sexual abuse"
    assert i18n.band_label("vi", "T18") == "T18: Từ đủ 18 tuổi trở lên"


def test_messages_from_the_services_are_translated_with_their_parameters():
    t = i18n.translate_message
    assert t("vi", "no item 42") == "Không có mục 42."
    assert t("vi", "account locked after 5 failed attempts; try again later").startswith("Tài khoản bị khoá sau 5")
    assert "Tự gây thương tích" in t("vi", "severity 1 is not defined for 'self_harm'; allowed: [0, 3]")
    assert t("vi", "bad filter: could not convert string to float: 'x'") == "Bộ lọc không hợp lệ: không phải là số: 'x'"
    assert t("en", "no item 42") == "no item 42"
    assert t("vi", "a message nobody wrote") == "a message nobody wrote"  # unknown: shown as it is


def test_strict_mode_records_what_has_no_translation(monkeypatch):
    monkeypatch.setenv(i18n.STRICT_ENV, "1")
    i18n.clear_misses()
    assert i18n.gettext("vi", "Queue") == "Hàng chờ"
    assert i18n.gettext("vi", "A string nobody translated") == "A string nobody translated"
    i18n.translate_message("vi", "an unknown error")
    i18n.category_name("vi", "a_new_category")
    assert i18n.misses("vi") == ["A string nobody translated", "an unknown error", "category:a_new_category"]
    i18n.clear_misses()
    monkeypatch.delenv(i18n.STRICT_ENV)
    i18n.gettext("vi", "Another string nobody translated")
    assert i18n.misses() == []


def test_local_times_and_numbers():
    assert i18n.local_datetime("vi", KNOWN_UTC) == KNOWN_LOCAL
    assert i18n.local_datetime("vi", "2026-11-30T17:05:00") == KNOWN_LOCAL  # naive (SQLite) = UTC
    assert i18n.local_datetime("en", "2026-11-30T17:05:00+00:00") == KNOWN_LOCAL
    assert i18n.local_date("vi", "2026-12-01") == "01/12/2026"
    assert i18n.format_number("vi", 0.85) == "0,85" and i18n.format_number("en", 0.85) == "0.85"
    assert i18n.format_number("vi", 1234.5, 1) == "1.234,5"
    assert i18n.parse_number("0,5") == i18n.parse_number("0.5") == 0.5
    with pytest.raises(ValueError):
        i18n.parse_number("nửa")
    assert i18n.week_label("vi", "2026-W49") == "Tuần 49/2026"
