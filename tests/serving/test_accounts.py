"""Console accounts (issue #17 item 10, "Lockout and sessions"): parallel wrong passwords lock the account,
failed logins are limited per client address, and `vicas users ...` disables accounts, changes roles and
resets passwords, ending the account's live sessions; each action is in the audit log, no password is."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from serving.api import create_app
from serving.config import Settings
from serving.db import audit_log, login_throttle, make_engine, migrate, users
from serving.review import audit
from serving.review.accounts import (
    ADDRESS_WINDOW_MINUTES,
    MAX_ADDRESS_FAILURES,
    MAX_FAILURES,
    AccountError,
    authenticate,
    create_user,
)
from tests.serving.helpers import PASSWORD, login
from vicas import cli

pytestmark = pytest.mark.slow
SECRET = "test-secret-key-0123456789"
WRONG = "wrong username or password"
WRONG_PAGE = "Sai tên đăng nhập hoặc mật khẩu"  # what the login page says (Vietnamese by default)
LOCKED = "account locked"


@pytest.fixture
def db(database_url):
    migrate(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def console(tiny_pipeline, database_url, db, tmp_path):
    for name, role in (("rev1", "reviewer"), ("rev2", "reviewer"), ("adm", "admin")):
        create_user(db, name, PASSWORD, role)
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=database_url,
        spool_dir=tmp_path / "spool",
        secret_key=SECRET,
        reviewed_export_dir=tmp_path / "reviewed",
    )
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:  # client address: "testclient"
        yield app, client, db


@pytest.fixture
def shell(database_url, monkeypatch, capsys):
    """Run `vicas ...` against the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    monkeypatch.setenv("VICAS_SECRET_KEY", SECRET)  # audit entries signed like the app's

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as e:  # argparse: an unknown command or a bad choice
            code = int(e.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def signed_in(client: TestClient) -> bool:
    r = client.get("/console/", follow_redirects=False)
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


# --- 1. the lockout counter is atomic -----------------------------------------------------------------


def test_parallel_wrong_passwords_lock_the_account(db):
    create_user(db, "target", PASSWORD, "reviewer")
    n = 20
    start = threading.Barrier(n)

    def attempt(i: int) -> str:
        start.wait()
        try:
            authenticate(db, "target", f"guess number {i}")
        except AccountError as e:
            return str(e)
        return "signed in"

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(attempt, range(n)))
    assert "signed in" not in answers
    with db.connect() as conn:
        locked_until = conn.execute(select(users.c.locked_until).where(users.c.username == "target")).scalar_one()
    assert locked_until is not None, "20 wrong passwords at once did not lock the account"
    with pytest.raises(AccountError, match=LOCKED):  # even the right password, until the lock ends
        authenticate(db, "target", PASSWORD)
    # every attempt was counted before its check: no more than MAX_FAILURES passwords were tried, the rest refused
    assert 1 <= answers.count(WRONG) <= MAX_FAILURES, answers
    assert all(a == WRONG or a.startswith(LOCKED) for a in answers), answers


def test_a_success_clears_the_count_and_the_lock_ends(db):
    create_user(db, "u1", PASSWORD, "reviewer")
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(AccountError, match=WRONG):
            authenticate(db, "u1", "not the password")
    assert authenticate(db, "u1", PASSWORD).username == "u1"
    for _ in range(MAX_FAILURES - 1):  # counting starts again after a success
        with pytest.raises(AccountError, match=WRONG):
            authenticate(db, "u1", "not the password")
    with pytest.raises(AccountError, match=WRONG):
        authenticate(db, "u1", "not the password")
    with pytest.raises(AccountError, match=LOCKED):
        authenticate(db, "u1", PASSWORD)
    with db.begin() as conn:  # fifteen minutes later
        conn.execute(update(users).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert authenticate(db, "u1", PASSWORD).username == "u1"


# --- 2. failed logins per client address -------------------------------------------------------------


def test_login_route_limits_failed_logins_per_address(console):
    app, client, db = console
    for i in range(MAX_ADDRESS_FAILURES):  # one address, many usernames (rev1 stays under its own lockout)
        r = login(client, "rev1" if i < 2 else f"guess{i}", "not the password")
        assert r.status_code == 200 and WRONG_PAGE in r.text, i
    r = login(client, "rev2")  # the right password, but this address has used up its failures
    assert r.status_code == 429 and "Quá nhiều lần đăng nhập sai từ địa chỉ này" in r.text  # Vietnamese by default
    assert 0 < int(r.headers["retry-after"]) <= ADDRESS_WINDOW_MINUTES * 60
    assert not signed_in(client)
    client.get("/console/lang/en")
    r = login(client, "rev2")
    assert r.status_code == 429 and "too many failed logins from this address" in r.text
    with db.connect() as conn:  # the accounts themselves were not touched by the refused attempts
        rev2 = conn.execute(select(users).where(users.c.username == "rev2")).mappings().one()
    assert rev2["failed_logins"] == 0 and rev2["locked_until"] is None

    other = TestClient(app, base_url="https://testserver", client=("203.0.113.7", 40000))
    r = login(other, "rev2")  # another address is not affected
    assert r.status_code == 303 and signed_in(other)

    with db.begin() as conn:  # the window ends: the address may try again
        conn.execute(
            update(login_throttle)
            .where(login_throttle.c.address == "testclient")
            .values(window_start=datetime.now(UTC) - timedelta(minutes=ADDRESS_WINDOW_MINUTES, seconds=1))
        )
    r = login(client, "rev2")
    assert r.status_code == 303 and signed_in(client)


def test_successful_logins_do_not_use_up_the_address_budget(console):
    app, _, _ = console
    client = TestClient(app, base_url="https://testserver", client=("198.51.100.4", 40000))
    for i in range(MAX_ADDRESS_FAILURES - 1):
        assert WRONG_PAGE in login(client, f"guess{i}", "not the password").text
    for _ in range(3):  # a shared office address: colleagues signing in are not failures
        assert login(client, "rev2").status_code == 303
    assert WRONG_PAGE in login(client, "guess-last", "not the password").text  # the tenth failure is still allowed
    assert login(client, "rev2").status_code == 429  # the eleventh attempt is not


# --- 3. `vicas users ...` --------------------------------------------------------------------------


def _audit(db, action: str) -> list[dict]:
    return [e for e in audit.entries(db) if e["action"] == action]


def test_users_list_shows_accounts_without_secrets(console, shell):
    code, out, _ = shell("users", "list")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["username"], r["role"], r["disabled"]) for r in rows] == [
        ("rev1", "reviewer", False),
        ("rev2", "reviewer", False),
        ("adm", "admin", False),
    ]
    assert "argon2" not in out and "password" not in out
    assert shell("users", "disable", "--username", "rev2")[0] == 0
    rows = [json.loads(line) for line in shell("users", "list")[1].splitlines()]
    assert [r["disabled"] for r in rows] == [False, True, False]


def test_disable_ends_live_sessions_and_blocks_login_until_enabled(console, shell):
    _, client, db = console
    assert login(client, "rev1").status_code == 303 and signed_in(client)
    code, out, _ = shell("users", "disable", "--username", "rev1")
    assert code == 0 and "disabled rev1" in out
    assert not signed_in(client)  # the live session stopped working at once
    r = login(client, "rev1")
    assert r.status_code == 200 and "Tài khoản đã bị vô hiệu hoá" in r.text and not signed_in(client)
    assert login(client, "rev1", "not the password").status_code == 200 and not signed_in(client)
    [entry] = _audit(db, "user:disable")
    assert entry["target"] == "user:rev1" and entry["actor"].startswith("cli:")
    assert json.loads(entry["after"]) == {"disabled": True}

    assert shell("users", "enable", "--username", "rev1")[0] == 0
    assert login(client, "rev1").status_code == 303 and signed_in(client)
    assert len(_audit(db, "user:enable")) == 1
    code, _, err = shell("users", "disable", "--username", "nobody")
    assert code == 2 and "no user 'nobody'" in err
    assert audit.verify(db, SECRET).ok


def test_set_role_ends_sessions_and_changes_permissions(console, shell):
    _, client, db = console
    login(client, "rev1")
    assert client.get("/console/reports").status_code == 403
    code, out, _ = shell("users", "set-role", "--username", "rev1", "--role", "supervisor")
    assert code == 0 and "supervisor" in out
    assert not signed_in(client)  # the session opened as a reviewer is over
    assert login(client, "rev1").status_code == 303
    assert client.get("/console/reports").status_code == 200
    [entry] = _audit(db, "user:role")
    assert json.loads(entry["before"]) == {"role": "reviewer"} and json.loads(entry["after"]) == {"role": "supervisor"}
    assert shell("users", "set-role", "--username", "rev1", "--role", "root")[0] == 2  # not a role
    with db.connect() as conn:
        assert conn.execute(select(users.c.role).where(users.c.username == "rev1")).scalar_one() == "supervisor"


def test_reset_password_prints_a_new_one_clears_the_lockout_and_ends_sessions(console, shell):
    _, client, db = console
    login(client, "rev1")
    assert signed_in(client)
    for _ in range(MAX_FAILURES):  # someone else locks the account (not from this client's address)
        with pytest.raises(AccountError):
            authenticate(db, "rev1", "not the password")
    code, out, _ = shell("users", "reset-password", "--username", "rev1")
    assert code == 0 and "shown once" in out
    new_password = out.strip().rsplit(" / ", 1)[1]
    assert len(new_password) >= 12
    assert not signed_in(client)
    r = login(client, "rev1")  # the old password no longer works
    assert r.status_code == 200 and WRONG_PAGE in r.text
    r = login(client, "rev1", new_password)  # the new one does: the lockout was cleared
    assert r.status_code == 303 and signed_in(client)
    [entry] = _audit(db, "user:password-reset")
    assert entry["target"] == "user:rev1"
    with db.connect() as conn:
        logged = json.dumps([list(r) for r in conn.execute(select(audit_log)).all()], default=str)
    assert new_password not in logged and PASSWORD not in logged
    assert shell("users", "reset-password", "--username", "nobody")[0] == 2
