"""Console accounts: Argon2 password hashes, three roles, lockout after repeated failures.

- **Lockout.** Every login attempt on an account is counted *before* its password is checked, by one
  `UPDATE users SET failed_logins = failed_logins + 1 ... RETURNING` (atomic on SQLite and PostgreSQL),
  and a success takes the count back to zero. Parallel wrong passwords therefore each count: the attempt
  that reaches MAX_FAILURES locks the account, and attempts beyond it are refused without being checked,
  so no more than MAX_FAILURES passwords are tried per lock period however many arrive at once.
- **Per address.** Failed logins are also counted per client address in the database (`login_throttle`,
  so every worker and replica sees the same count): after MAX_ADDRESS_FAILURES within
  ADDRESS_WINDOW_MINUTES an address is refused before any account is looked at, so one address cannot
  try many usernames. The count is taken before the check in the same way and given back on success.
- **Administration** (`vicas users ...`): disabling an account, changing its role or resetting its
  password ends its console sessions (the session epoch moves on) and is written to the audit log in the
  same transaction; passwords never are.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Connection, Engine, case, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from serving.db import as_utc, login_throttle, users
from serving.review import audit

ROLES = ("reviewer", "supervisor", "admin")
MAX_FAILURES: Final[int] = 5
LOCK_MINUTES: Final[int] = 15
MAX_ADDRESS_FAILURES: Final[int] = 10  # failed logins from one client address ...
ADDRESS_WINDOW_MINUTES: Final[int] = 15  # ... within this many minutes, from its first failure
RATE_LIMIT_MESSAGES: Final[dict[str, str]] = {  # shown on the login page in the session's language
    "vi": "Quá nhiều lần đăng nhập sai từ địa chỉ này; vui lòng thử lại sau {minutes} phút.",
    "en": "too many failed logins from this address; try again in {minutes} minutes",
}
_hasher = PasswordHasher()


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


class LoginRateLimited(AccountError):
    """Too many failed logins from one client address; `retry_after` seconds until the window ends."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(self.message("en"))

    def message(self, lang: str) -> str:
        template = RATE_LIMIT_MESSAGES.get(lang, RATE_LIMIT_MESSAGES["vi"])
        return template.format(minutes=max(1, math.ceil(self.retry_after / 60)))


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    session_epoch: int = 0

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


PERMISSIONS: dict[str, frozenset[str]] = {
    "reviewer": frozenset({"review"}),
    "supervisor": frozenset({"review", "reveal", "second_review", "reports", "appeals", "blocklists"}),
    "admin": frozenset({"review", "reveal", "second_review", "reports", "appeals", "blocklists", "admin"}),
}


def create_user(engine: Engine, username: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise AccountError(f"role must be one of {ROLES}, got {role!r}")
    if len(password) < 12:
        raise AccountError("passwords need at least 12 characters")
    try:
        with engine.begin() as conn:
            res = conn.execute(
                insert(users).values(
                    username=username,
                    password_hash=_hasher.hash(password),
                    role=role,
                    failed_logins=0,
                    locked_until=None,
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError as e:
        raise AccountError(f"user {username!r} already exists") from e
    return User(int(res.inserted_primary_key[0]), username, role)  # type: ignore[index]


def authenticate(engine: Engine, username: str, password: str, address: str | None = None) -> User:
    """The user, or AccountError with a message safe to show (rate limited, locked, disabled, or wrong name
    or password). With `address` (the client's), failed logins from it are limited too."""
    now = datetime.now(UTC)
    if address is not None:
        _count_address_attempt(engine, address[:64], now)
    user = _authenticate_account(engine, username, password, now)
    if address is not None:  # a success is not a failure: give back the attempt counted above
        with engine.begin() as conn:
            conn.execute(
                update(login_throttle)
                .where(login_throttle.c.address == address[:64], login_throttle.c.failures > 0)
                .values(failures=login_throttle.c.failures - 1)
            )
    return user


def _authenticate_account(engine: Engine, username: str, password: str, now: datetime) -> User:
    not_locked = or_(users.c.locked_until.is_(None), users.c.locked_until <= now)
    with engine.begin() as conn:  # count this attempt first: a single atomic statement
        row = (
            conn.execute(
                update(users)
                .where(users.c.username == username, not_locked)
                .values(failed_logins=users.c.failed_logins + 1)
                .returning(
                    users.c.id,
                    users.c.username,
                    users.c.password_hash,
                    users.c.role,
                    users.c.session_epoch,
                    users.c.failed_logins,
                    users.c.disabled_at,
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        with engine.connect() as conn:
            locked = conn.execute(select(users.c.locked_until).where(users.c.username == username)).first()
        if locked is not None and locked[0] is not None and as_utc(locked[0]) > now:
            raise AccountError(f"account locked after {MAX_FAILURES} failed attempts; try again later")
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
        raise AccountError("wrong username or password")
    attempts = int(row["failed_logins"])  # this one and any others still in flight
    if attempts > MAX_FAILURES:  # more attempts at once than the lockout allows: this one is not checked
        _lock(engine, int(row["id"]), now)
        raise AccountError(f"account locked after {MAX_FAILURES} failed attempts; try again later")
    try:
        _hasher.verify(row["password_hash"], password)
    except VerificationError:
        if attempts >= MAX_FAILURES:
            _lock(engine, int(row["id"]), now)
        raise AccountError("wrong username or password") from None
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == row["id"]).values(failed_logins=0, locked_until=None))
    if row["disabled_at"] is not None:
        raise AccountError("account disabled; ask an administrator")
    return User(int(row["id"]), str(row["username"]), str(row["role"]), int(row["session_epoch"]))


def _lock(engine: Engine, user_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(failed_logins=0, locked_until=now + timedelta(minutes=LOCK_MINUTES))
        )


def _count_address_attempt(engine: Engine, address: str, now: datetime) -> None:
    """Count a login attempt from `address` (atomic upsert); LoginRateLimited when it is one too many."""
    cutoff = now - timedelta(minutes=ADDRESS_WINDOW_MINUTES)
    expired = login_throttle.c.window_start <= cutoff
    values = {"address": address, "window_start": now, "failures": 1}
    counts = {
        "failures": case((expired, 1), else_=login_throttle.c.failures + 1),
        "window_start": case((expired, now), else_=login_throttle.c.window_start),
    }
    stmt: Any
    if engine.dialect.name == "postgresql":
        stmt = postgresql.insert(login_throttle).values(**values)
    else:
        stmt = sqlite.insert(login_throttle).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=[login_throttle.c.address], set_=counts).returning(
        login_throttle.c.failures, login_throttle.c.window_start
    )
    with engine.begin() as conn:
        failures, window_start = conn.execute(stmt).one()
    if failures == 1:  # a new window: forget addresses whose window is over (best effort)
        try:
            with engine.begin() as conn:
                conn.execute(delete(login_throttle).where(login_throttle.c.window_start <= cutoff))
        except DBAPIError:
            pass
    if failures > MAX_ADDRESS_FAILURES:
        ends = as_utc(window_start) + timedelta(minutes=ADDRESS_WINDOW_MINUTES)
        raise LoginRateLimited(max(1, math.ceil((ends - now).total_seconds())))


def get_user(engine: Engine, user_id: int) -> User | None:
    """The account behind a console session; None when it is unknown or disabled."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id, users.c.disabled_at.is_(None))).mappings().first()
    return User(int(row["id"]), str(row["username"]), str(row["role"]), int(row["session_epoch"])) if row else None


def end_sessions(engine: Engine, user_id: int) -> None:
    """Invalidate every console session of a user (logout): their cookies name the old epoch."""
    with engine.begin() as conn:
        _end_sessions(conn, user_id)


def _end_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1))


# --- administration (`vicas users ...`) ------------------------------------------------------------


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every account, without its password hash."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.id)).mappings().all()
    return [
        {
            "id": r["id"],
            "username": r["username"],
            "role": r["role"],
            "disabled": r["disabled_at"] is not None,
            "disabled_at": as_utc(r["disabled_at"]).isoformat() if r["disabled_at"] else None,
            "locked_until": (
                as_utc(r["locked_until"]).isoformat()
                if r["locked_until"] is not None and as_utc(r["locked_until"]) > now
                else None
            ),
            "failed_logins": r["failed_logins"],
            "created_at": as_utc(r["created_at"]).isoformat(),
        }
        for r in rows
    ]


def set_disabled(engine: Engine, username: str, disabled: bool, actor: str) -> None:
    """Disable an account (no login, its sessions end at once) or enable it again."""
    with engine.begin() as conn:
        row = _account(conn, username)
        was = row["disabled_at"] is not None
        conn.execute(
            update(users).where(users.c.id == row["id"]).values(disabled_at=datetime.now(UTC) if disabled else None)
        )
        if disabled:
            _end_sessions(conn, int(row["id"]))
        action = "user:disable" if disabled else "user:enable"
        audit.append(conn, actor, action, f"user:{username}", {"disabled": was}, {"disabled": disabled})


def set_role(engine: Engine, username: str, role: str, actor: str) -> None:
    """Give an account another role; its sessions end (they were opened under the old one)."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {ROLES}, got {role!r}")
    with engine.begin() as conn:
        row = _account(conn, username)
        conn.execute(update(users).where(users.c.id == row["id"]).values(role=role))
        _end_sessions(conn, int(row["id"]))
        audit.append(conn, actor, "user:role", f"user:{username}", {"role": row["role"]}, {"role": role})


def reset_password(engine: Engine, username: str, actor: str) -> str:
    """Set a new random password (returned, to be shown once), clear the lockout and end the sessions."""
    password = secrets.token_urlsafe(15)
    password_hash = _hasher.hash(password)
    with engine.begin() as conn:
        row = _account(conn, username)
        conn.execute(
            update(users)
            .where(users.c.id == row["id"])
            .values(password_hash=password_hash, failed_logins=0, locked_until=None)
        )
        _end_sessions(conn, int(row["id"]))
        audit.append(conn, actor, "user:password-reset", f"user:{username}", None, {"lockout_cleared": True})
    return password


def _account(conn: Connection, username: str) -> Any:
    row = conn.execute(select(users).where(users.c.username == username).with_for_update()).mappings().first()
    if row is None:
        raise AccountError(f"no user {username!r}")
    return row
