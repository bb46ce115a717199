"""The review console in a real browser (Debian's Chromium driven by Playwright) against a real server, in
Vietnamese (issue #18 item 6).

A reviewer signs in, pages through a queue longer than one page, filters it, opens the needs-review queue,
reviews an item with the keyboard alone (note, labels, severity, save) and confirms a C item with its
shortcut; opens an image blurred and unblurs it with one click; a supervisor gives the second review of the
C item and reads the report; an admin reads the audit log and exports. On every page the test checks that
no English string of the console reaches the reviewer. Items come from the tiny model through the API and
from the store; screenshots go to the test's folder, or to VICAS_SCREENSHOT_DIR (the README's are made so).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from babel.messages.pofile import read_po
from PIL import Image, ImageDraw

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import create_key
from serving.review.accounts import create_user
from serving.review.i18n import LOCALE_DIR
from serving.review.images import item_thumbnails
from serving.store import FlaggedItem, FlagStore

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CHROMIUM = os.environ.get("VICAS_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PASSWORD = "correct horse battery"
SECRET = "e2e-secret"
FILLER = 215  # more than one queue page (200)
# what the tiny model reads through the API (its flags are a tiny model's: the point is the real path)
API_TEXTS = [
    "nạp 50k nhận 100k tài xỉu uy tín, link ở bio",
    "tang 9999 kim cuong free fire, nhap tai khoan mat khau",  # typed without accents
    "chán sống quá không ai hiểu mình",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _picture() -> Image.Image:
    """An invented banner: coloured blocks where an OCR would find words."""
    img = Image.new("RGB", (640, 360), (226, 232, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 640, 70), fill=(18, 60, 105))
    for k, x in enumerate((40, 230, 420)):
        draw.rectangle((x, 120, x + 170, 200), fill=(200 - 50 * k, 80 + 40 * k, 60))
    draw.ellipse((250, 230, 390, 340), fill=(240, 190, 60))
    return img


def _english_ui() -> list[str]:
    """The console's English strings that have a different Vietnamese translation (whole phrases of two
    words or more, placeholders cut out): none may be seen on a Vietnamese page."""
    with (LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    out = set()
    for m in catalog:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for msgid, msgstr in zip(ids, strings, strict=False):
            for part in re.split(r"%\(\w+\)s|%%|[():;,.]", msgid):
                part = part.strip()
                if len(part.split()) >= 2 and part not in msgstr:
                    out.add(part)
    return sorted(out)


@pytest.fixture
def server(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    migrate(url)
    db = make_engine(url)
    create_user(db, "reviewer1", PASSWORD, "reviewer")
    create_user(db, "supervisor1", PASSWORD, "supervisor")
    create_user(db, "admin1", PASSWORD, "admin")
    key = create_key(db, "telco-a", {"classify"}, rate_limit_per_minute=1000)
    now = datetime.now(UTC)

    def item(key: str, band: str, cats: dict[str, int], text: str, minutes: int = 0, **extra) -> FlaggedItem:
        first, score = text.split()[0], extra.pop("score", 0.9)
        return FlaggedItem(
            key,
            key.ljust(64, "0"),
            "telco-a",
            None,
            None,
            band,
            {c: {"score": score, "severity": s} for c, s in cats.items()},
            [{"category": next(iter(cats)), "start": 0, "end": len(first), "text": first, "score": 0.9}],
            text,
            "vicas-text@e2e",
            "p1",
            (now - timedelta(minutes=minutes)).isoformat(),
            **extra,
        )

    picture = _picture()
    words = [(40, 120, 170, 80), (230, 120, 170, 80)]  # where an OCR found the evidence, in the picture's pixels
    boxes = [SimpleNamespace(category="violence", source="image:0:ocr", boxes=words)]
    filler = [
        item(f"f:{i}", "T13", {"profanity": 1}, f"bình luận số {i} có từ tục", minutes=300 + i, score=0.95)
        for i in range(FILLER)
    ]
    FlagStore(db, tmp_path / "spool").save(
        [
            item("e:1", "T16", {"gambling": 2}, "Nạp 50k nhận 100k, tài xỉu uy tín", minutes=30),
            item("e:2", "C", {"child_sexual": 3}, "Em học lớp mấy, gửi anh ảnh, đừng kể với mẹ", minutes=20),
            item(
                "e:3",
                "T18",
                {"violence": 3},
                "Ảnh đánh nhau ở cổng trường, ai quen thì nhắn",
                minutes=10,
                needs_review=True,
                images=item_thumbnails(
                    [picture], [picture.size], boxes, [], [{"violence": 3}], {"violence": 3}, SECRET
                ),
            ),
            *filler,
        ]
    )
    db.dispose()
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=url,
        spool_dir=tmp_path / "spool",
        secret_key=SECRET,
        reviewed_export_dir=tmp_path / "reviewed",
        flag_band="P",  # every item the tiny model reads is stored: the queue holds real model output
    )
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    for text in API_TEXTS:
        r = httpx.post(f"{base}/v1/classify", json={"text": text}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


def _sign_in(page, server: str, user: str) -> None:
    page.goto(f"{server}/console/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-button")


def _assert_vietnamese(page, english: list[str]) -> None:
    """The page is in Vietnamese and shows no English string of the console."""
    assert page.get_attribute("html", "lang") == "vi"
    text = page.inner_text("body")
    seen = [s for s in english if s in text]
    assert seen == [], (page.url, seen)


def _row_ids(page) -> list[int]:
    return [int(r.get_attribute("data-id")) for r in page.locator(".queue-row").all()]


def _total(page) -> int:
    match = re.search(r"(\d+) mục", page.inner_text("#counts"))
    assert match, page.inner_text("#counts")
    return int(match.group(1))


def test_review_flow_in_a_real_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("VICAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required (VICAS_REQUIRE_BROWSER=1) but {CHROMIUM} does not exist")
        pytest.skip("no Chromium (apt-get install chromium, or set VICAS_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("VICAS_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    english = _english_ui()
    assert "Next page" in english and "Sign out" in english  # the check has teeth
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--lang=vi-VN",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 760}, locale="vi-VN")
        page.goto(f"{server}/console/")
        assert page.url.endswith("/console/login")
        _assert_vietnamese(page, english)
        page.screenshot(path=str(shots / "login.png"))
        _sign_in(page, server, "reviewer1")
        page.wait_for_selector("#queue")
        _assert_vietnamese(page, english)
        total = _total(page)
        assert total == FILLER + 3 + len(API_TEXTS)
        first = _row_ids(page)
        assert len(first) == 200 and first[0] == 2  # band C first
        page.screenshot(path=str(shots / "queue.png"))
        # page the queue: the second page holds the rest, none of the first page's items, then back
        page.click("#next-page")
        page.wait_for_selector("#first-page")
        _assert_vietnamese(page, english)
        second = _row_ids(page)
        assert len(second) == total - 200 and not set(first) & set(second)
        assert page.locator("#next-page").count() == 0  # the last page
        page.click("#first-page")
        page.wait_for_selector("#queue")
        assert _row_ids(page) == first
        # filter the queue
        page.select_option("select[name=category]", "gambling")
        page.click("#filter-button")
        page.wait_for_selector("#counts")
        _assert_vietnamese(page, english)
        rows = page.locator(".queue-row").all()
        assert _total(page) == len(rows) >= 1 and all("Cờ bạc" in r.inner_text() for r in rows)
        assert "Cờ bạc" in page.inner_text("#counts")
        # the needs-review queue, a view of its own
        page.click("#nav-needs-review")
        page.wait_for_selector("#view-review[aria-current]")
        _assert_vietnamese(page, english)
        assert 3 in _row_ids(page) and all(r.locator(".needs-review").count() for r in page.locator(".queue-row").all())
        # an image, blurred until one click unblurs it
        page.goto(f"{server}/console/items/3?view=review")
        img = page.locator("#image-0 img")
        assert "blurred" in img.get_attribute("class") and page.locator("#image-0 .box").count() == 2
        assert page.get_attribute("#image-0", "data-sensitive") == "true"
        _assert_vietnamese(page, english)
        page.screenshot(path=str(shots / "item.png"))
        page.click("#image-0 .unblur-button")
        page.wait_for_function("!document.querySelector('#image-0 img').classList.contains('blurred')")
        assert img.get_attribute("src").startswith("blob:")
        # a whole decision by keyboard: note, change labels, a severity, save
        page.goto(f"{server}/console/items/1")
        page.keyboard.press("/")
        page.keyboard.type("quảng cáo cờ bạc")
        page.keyboard.press("Enter")
        page.keyboard.press("l")
        assert page.evaluate("document.activeElement.name") == "sev_sexual"
        for _ in range(8):  # sexual ... gambling, the ninth category
            page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.name") == "sev_gambling"
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_selector("#decided")
        assert "quảng cáo cờ bạc" in page.inner_text("#reviews") and "Sửa nhãn → T13" in page.inner_text("#reviews")
        _assert_vietnamese(page, english)
        # confirm the C item by its key: it waits for four eyes
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("c")
        page.wait_for_selector("#second-form")
        page.click("text=Đăng xuất")
        # four eyes: another person gives the second review of the C item
        _sign_in(page, server, "supervisor1")
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("s")
        page.wait_for_selector("#decided")
        assert page.inner_text("#final-band") == "C"
        # a supervisor's report, read in Vietnamese: headings, section titles, severe items seen per reviewer
        page.goto(f"{server}/console/reports")
        page.wait_for_selector("#report-tables")
        _assert_vietnamese(page, english)
        assert page.inner_text("h2") == "Báo cáo"
        titles = [t.inner_text() for t in page.locator("#report-tables summary").all()]
        assert titles and not any(t.isascii() for t in titles), titles  # Vietnamese titles, not ids
        severe = page.inner_text('[data-section="severe_views"]')
        assert "Số mục nghiêm trọng" in severe and "reviewer1, " in severe and "supervisor1, " in severe
        page.screenshot(path=str(shots / "reports.png"), full_page=False)
        page.click("text=Đăng xuất")
        # the admin sees the audit entries (the unblur among them) and runs the export
        _sign_in(page, server, "admin1")
        page.goto(f"{server}/console/audit")
        _assert_vietnamese(page, english)
        assert "Chuỗi nguyên vẹn" in page.inner_text("#chain-status")
        assert page.locator('tr[data-action="decision:second_confirm"]').count() == 1
        assert page.locator('tr[data-action="image:unblur"]').count() == 1
        assert "Quyết định: duyệt lần hai" in page.inner_text("#audit")  # names, not ids
        page.screenshot(path=str(shots / "audit.png"))
        page.goto(f"{server}/console/admin")
        page.click("#export-button")
        page.wait_for_selector("#admin-message")
        assert "Đã xuất 2 mục" in page.inner_text("#admin-message")
        browser.close()
    exported = (tmp_path / "reviewed" / "reviewed.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(exported) == 2
    assert (shots / "item.png").stat().st_size > 1000
