"""Helpers of the serving tests: real API processes on loopback, and signing in to the console."""

from __future__ import annotations

import re
import time

import httpx
from fastapi.testclient import TestClient

from benchmarks._local_services import free_port

__all__ = ["PASSWORD", "csrf_token", "free_port", "login", "wait_ready"]


def wait_ready(base: str, timeout: float = 90.0) -> None:
    """Wait until `base`/readyz answers 200; AssertionError after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} was not ready within {timeout:.0f} s")


# --- the review console over TestClient ------------------------------------------------------------------
PASSWORD = "correct horse battery"


def csrf_token(client: TestClient, path: str = "/console/login") -> str:
    """The CSRF token of a console page's form."""
    page = client.get(path)
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def login(client: TestClient, user: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_token(client, "/console/login")
    return client.post(
        "/console/login", data={"username": user, "password": password, "csrf": token}, follow_redirects=False
    )
