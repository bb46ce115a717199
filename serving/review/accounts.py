"""Console accounts: Argon2 password hashes, three roles, lockout after repeated failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from serving.db import users

ROLES = ("reviewer", "supervisor", "admin")
MAX_FAILURES = 5
LOCK_MINUTES = 15
_hasher = PasswordHasher()


class AccountError(ValueError):
    """An account operation that cannot be done; the message says why."""


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


def authenticate(engine: Engine, username: str, password: str) -> User:
    """The user, or AccountError with a message safe to show (locked, or wrong name or password)."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
        raise AccountError("wrong username or password")
    locked = row["locked_until"]
    if locked is not None and _aware(locked) > now:
        raise AccountError(f"account locked after {MAX_FAILURES} failed attempts; try again later")
    try:
        _hasher.verify(row["password_hash"], password)
    except VerificationError:
        failures = int(row["failed_logins"]) + 1
        values: dict[str, object] = {"failed_logins": failures}
        if failures >= MAX_FAILURES:
            values = {"failed_logins": 0, "locked_until": now + timedelta(minutes=LOCK_MINUTES)}
        with engine.begin() as conn:  # committed before the error is raised
            conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
        raise AccountError("wrong username or password") from None
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == row["id"]).values(failed_logins=0, locked_until=None))
    return User(int(row["id"]), str(row["username"]), str(row["role"]), int(row["session_epoch"]))


def get_user(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
    return User(int(row["id"]), str(row["username"]), str(row["role"]), int(row["session_epoch"])) if row else None


def end_sessions(engine: Engine, user_id: int) -> None:
    """Invalidate every console session of a user (logout): their cookies name the old epoch."""
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1))


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
