"""The review console in a real browser (Debian's Chromium driven by Playwright) against a real server.

A reviewer signs in, switches to English, opens the most urgent item from the queue, confirms it with the
keyboard shortcut, and a supervisor gives the second review of a C item. Screenshots go to the test's folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.review.accounts import create_user
from serving.store import FlaggedItem, FlagStore

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CHROMIUM = os.environ.get("VICAS_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    migrate(url)
    db = make_engine(url)
    create_user(db, "reviewer1", PASSWORD, "reviewer")
    create_user(db, "supervisor1", PASSWORD, "supervisor")
    create_user(db, "admin1", PASSWORD, "admin")
    now = datetime.now(UTC).isoformat()

    def item(key: str, band: str, cats: dict[str, int], text: str) -> FlaggedItem:
        return FlaggedItem(
            key,
            key.ljust(64, "0"),
            "telco-a",
            None,
            None,
            band,
            {c: {"score": 0.9, "severity": s} for c, s in cats.items()},
            [{"category": next(iter(cats)), "start": 0, "end": 5, "text": text[:5], "score": 0.9}],
            text,
            "vicas-text@e2e",
            "p1",
            now,
        )

    FlagStore(db, tmp_path / "spool").save(
        [
            item("e:1", "T16", {"gambling": 2}, "Nạp 50k nhận 100k, tài xỉu uy tín"),
            item("e:2", "C", {"child_sexual": 3}, "Em học lớp mấy, gửi anh ảnh, đừng kể với mẹ"),
        ]
    )
    db.dispose()
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=url,
        spool_dir=tmp_path / "spool",
        secret_key="e2e-secret",
        reviewed_export_dir=tmp_path / "reviewed",
    )
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _sign_in(page, server: str, user: str) -> None:
    page.goto(f"{server}/console/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-button")


def test_review_flow_in_a_real_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("VICAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required (VICAS_REQUIRE_BROWSER=1) but {CHROMIUM} does not exist")
        pytest.skip("no Chromium (apt-get install chromium, or set VICAS_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("VICAS_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
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
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.goto(f"{server}/console/")
        assert page.url.endswith("/console/login")
        page.screenshot(path=str(shots / "login.png"))
        _sign_in(page, server, "reviewer1")
        page.click("#lang-en")
        page.wait_for_selector("#queue")
        assert "2 items" in page.inner_text("#counts")
        assert page.locator(".queue-row").first.get_attribute("data-id") == "2"  # band C first
        page.screenshot(path=str(shots / "queue.png"))
        # filter the queue
        page.select_option("select[name=category]", "gambling")
        page.click("#filter-button")
        page.wait_for_selector("#counts")
        assert "1 item" in page.inner_text("#counts") and "Gambling: 1" in page.inner_text("#counts")
        assert [r.get_attribute("data-id") for r in page.locator(".queue-row").all()] == ["1"]
        # review an item with the keyboard
        page.click("text=Open")
        assert page.locator("mark.ev-gambling").count() == 1
        page.screenshot(path=str(shots / "item.png"))
        page.keyboard.press("c")
        page.wait_for_selector("#decided")
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("c")
        page.wait_for_selector("#second-form")
        page.click("text=Sign out")
        # four eyes: another person gives the second review of the C item
        _sign_in(page, server, "supervisor1")
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("s")
        page.wait_for_selector("#decided")
        assert page.inner_text("#final-band") == "C"
        page.click("text=Đăng xuất")  # the supervisor's session is in Vietnamese
        # the admin sees the audit entries and runs the export
        _sign_in(page, server, "admin1")
        page.goto(f"{server}/console/audit")
        assert "Chuỗi nguyên vẹn" in page.inner_text("#chain-status")
        assert page.locator('tr[data-action="decision:second_confirm"]').count() == 1
        assert "Quyết định: duyệt lần hai" in page.inner_text("#audit")  # names, not ids
        page.screenshot(path=str(shots / "audit.png"))
        # a supervisor's report, read in Vietnamese: headings and section titles from the catalogue
        page.goto(f"{server}/console/reports")
        page.wait_for_selector("#report-tables")
        assert page.inner_text("h2") == "Báo cáo"
        titles = [t.inner_text() for t in page.locator("#report-tables summary").all()]
        assert titles and not any(t.isascii() for t in titles), titles  # Vietnamese titles, not ids
        page.screenshot(path=str(shots / "reports.png"))
        page.goto(f"{server}/console/admin")
        page.click("#export-button")
        page.wait_for_selector("#admin-message")
        assert "Đã xuất 2 mục" in page.inner_text("#admin-message")
        browser.close()
    exported = (tmp_path / "reviewed" / "reviewed.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(exported) == 2
    assert (shots / "item.png").stat().st_size > 1000
