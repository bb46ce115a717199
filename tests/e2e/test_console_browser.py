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
        model_dir=tiny_pipeline["model"], database_url=url, spool_dir=tmp_path / "spool", secret_key="e2e-secret"
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


def test_reviewer_and_supervisor_in_a_real_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("VICAS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required (VICAS_REQUIRE_BROWSER=1) but {CHROMIUM} does not exist")
        pytest.skip("no Chromium (apt-get install chromium, or set VICAS_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
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
        page = browser.new_page()
        page.goto(f"{server}/console/")
        assert page.url.endswith("/console/login")
        page.fill("#username", "reviewer1")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.click("#lang-en")
        page.wait_for_selector("#queue")
        assert "2 items" in page.inner_text("#counts")
        rows = page.locator(".queue-row")
        assert rows.first.get_attribute("data-id") == "2"  # band C first
        page.screenshot(path=str(tmp_path / "queue.png"))
        page.goto(f"{server}/console/items/1")
        assert page.locator("mark.ev-gambling").count() == 1
        page.keyboard.press("c")  # confirm with the shortcut
        page.wait_for_selector("#decided")
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("c")
        page.wait_for_selector("#second-form")
        page.screenshot(path=str(tmp_path / "awaiting_second.png"))
        page.click("text=Sign out")
        page.fill("#username", "supervisor1")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.goto(f"{server}/console/items/2")
        page.keyboard.press("s")
        page.wait_for_selector("#decided")
        assert page.inner_text("#final-band") == "C"
        page.screenshot(path=str(tmp_path / "decided.png"))
        browser.close()
    assert (tmp_path / "decided.png").stat().st_size > 1000
