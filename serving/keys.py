"""Partner API keys: created once and shown once, stored as SHA-256 hashes, scoped, rate limited."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from serving.db import api_keys, as_utc, usage

# model switches are an operator's action (`vicas models activate`), never a partner key's
SCOPES = frozenset({"classify", "verdicts", "appeals", "blocklists"})
KEY_PREFIX = "vcs_"
log = logging.getLogger("vicas.keys")


class ApiKeyError(ValueError):
    """A key operation that cannot be done (name taken, unknown name, bad scope)."""


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int


def hash_key(key: str) -> str:
    # Keys are 32 random bytes: a fast hash is enough (no dictionary to attack), and lookups stay O(1).
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, name: str, scopes: set[str] | None = None, rate_limit_per_minute: int = 600) -> str:
    """Create a key for a partner and return it: the only time the key itself is available."""
    scopes = scopes or {"classify", "verdicts"}
    unknown = scopes - SCOPES
    if unknown:
        raise ApiKeyError(f"unknown scopes {sorted(unknown)}; valid: {sorted(SCOPES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    name=name,
                    key_hash=hash_key(key),
                    prefix=key[:10],
                    scopes=",".join(sorted(scopes)),
                    rate_limit_per_minute=rate_limit_per_minute,
                    created_at=datetime.now(UTC),
                    revoked_at=None,
                )
            )
    except IntegrityError as e:
        raise ApiKeyError(f"an active key named {name!r} exists; rotate or revoke it, or choose another name") from e
    return key


def rotate_key(engine: Engine, name: str, grace_minutes: int = 0) -> str:
    """Issue a new key for a partner with the same scopes and limit; the old one stops working after
    `grace_minutes` (0: at once), so a partner can roll the new key out without downtime."""
    if grace_minutes < 0:
        raise ApiKeyError("the grace period cannot be negative")
    now = datetime.now(UTC)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        old = (
            conn.execute(select(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None)))
            .mappings()
            .first()
        )
        if old is None:
            raise ApiKeyError(f"no active key named {name!r}; create one with `vicas keys create`")
        conn.execute(
            update(api_keys).where(api_keys.c.id == old["id"]).values(revoked_at=now + timedelta(minutes=grace_minutes))
        )
        conn.execute(
            insert(api_keys).values(
                name=name,
                key_hash=hash_key(key),
                prefix=key[:10],
                scopes=old["scopes"],
                rate_limit_per_minute=old["rate_limit_per_minute"],
                created_at=now,
                revoked_at=None,
            )
        )
    return key


def list_keys(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def revoke_key(engine: Engine, name: str) -> None:
    """End every key of the partner at once, a rotated key still in its grace period included."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        res = conn.execute(
            update(api_keys)
            .where(api_keys.c.name == name, or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now))
            .values(revoked_at=now)
        )
    if res.rowcount == 0:
        raise ApiKeyError(f"no active key named {name!r}")


def verify_key(engine: Engine, key: str) -> Partner | None:
    return _partner_by_hash(engine, hash_key(key))


def _active(revoked_at: datetime | None, now: datetime) -> bool:
    """Not revoked, or revoked with a grace period still running (a rotated key)."""
    if revoked_at is None:
        return True
    return as_utc(revoked_at) > now


def _partner_by_hash(engine: Engine, digest: str) -> Partner | None:
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)).mappings().first()
    if row is None or not _active(row["revoked_at"], datetime.now(UTC)):
        return None
    return Partner(row["id"], row["name"], frozenset(row["scopes"].split(",")), row["rate_limit_per_minute"])


class KeyStoreUnavailable(RuntimeError):
    """The database cannot be asked and the key was not verified recently enough to be trusted without it."""


class KeyVerifier:
    """Keys checked against the database, with the keys verified lately kept to ride out a database outage.

    While the database answers it decides every request, so a revocation takes effect at once. When it
    does not, a key verified within `grace_seconds` is still accepted (and `degraded` says so); any other
    key gets KeyStoreUnavailable (503). `recheck` (run every few seconds by the service while the database
    answers) drops cached keys revoked since they were verified, so a revocation made just before an outage
    is honoured during it too.
    """

    def __init__(self, engine: Engine, grace_seconds: float = 900.0) -> None:
        self.engine, self.grace = engine, grace_seconds
        self._cache: dict[str, tuple[Partner, float]] = {}
        self._lock = threading.Lock()
        self.degraded = False

    def verify(self, key: str) -> Partner | None:
        digest = hash_key(key)
        try:
            partner = _partner_by_hash(self.engine, digest)
        except Exception as e:  # unreachable or failing database: fall back on recent verifications
            with self._lock:
                cached = self._cache.get(digest)
            if cached is not None and time.monotonic() - cached[1] <= self.grace:
                self.degraded = True
                return cached[0]
            raise KeyStoreUnavailable("the key store is unreachable and this key was not verified recently") from e
        self.degraded = False
        with self._lock:
            if partner is None:
                self._cache.pop(digest, None)
            else:
                self._cache[digest] = (partner, time.monotonic())
        return partner

    def recheck(self) -> int:
        """Forget cached keys revoked (or deleted) since they were cached; returns how many were dropped.

        Raises what the database raises: the caller runs it while the database answers."""
        with self._lock:
            digests = list(self._cache)
        if not digests:
            return 0
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_keys.c.key_hash, api_keys.c.revoked_at).where(api_keys.c.key_hash.in_(digests))
            ).all()
        active = {digest for digest, revoked_at in rows if _active(revoked_at, now)}
        gone = [d for d in digests if d not in active]
        with self._lock:
            for d in gone:
                self._cache.pop(d, None)
        return len(gone)


@dataclass(frozen=True)
class Quota:
    """One rate-limit decision: `wait` is 0 when allowed, else seconds before retrying; the rest feeds the
    RateLimit-* headers (limit per minute, whole items left now, seconds until the bucket is full again)."""

    wait: float
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w=60",
        }
        if self.wait > 0:
            h["Retry-After"] = str(max(1, math.ceil(self.wait)))
        return h


def _quota(partner: Partner, wait: float, tokens: float) -> Quota:
    rate = partner.rate_limit_per_minute / 60.0
    reset = math.ceil(max(0.0, partner.rate_limit_per_minute - tokens) / rate)
    return Quota(wait, partner.rate_limit_per_minute, max(0, math.floor(tokens)), reset)


class RateLimiter:
    """Token bucket per partner, in process memory (one bucket per key per replica)."""

    degraded = False

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, partner: Partner, cost: int = 1) -> Quota:
        """Take `cost` items from the partner's bucket if it holds them."""
        rate = partner.rate_limit_per_minute / 60.0
        capacity = float(partner.rate_limit_per_minute)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(partner.id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            wait = 0.0 if tokens >= cost else (cost - tokens) / rate
            if wait == 0.0:
                tokens -= cost
            self._buckets[partner.id] = (tokens, now)
        return _quota(partner, wait, tokens)


class RedisRateLimiter:
    """The same token bucket kept in Redis, so a partner's limit holds across API replicas and workers."""

    # KEYS[1] bucket key; ARGV: capacity, rate per second, cost, now (seconds).
    # Returns {wait in ms (0 = allowed), tokens left x 1000} (Lua numbers reach Redis as integers).
    _SCRIPT = """
    local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
    local capacity, rate, cost, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
    local tokens = tonumber(b[1]) or capacity
    local ts = tonumber(b[2]) or now
    tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
    local wait = 0
    if tokens >= cost then tokens = tokens - cost else wait = math.ceil((cost - tokens) / rate * 1000) end
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
    redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
    return {wait, math.floor(tokens * 1000)}
    """

    def __init__(self, url: str, prefix: str = "vicas:rl:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._redis.register_script(self._SCRIPT)
        self._prefix = prefix
        self._local = RateLimiter()  # while Redis is down: each replica limits on its own
        self.degraded = False

    def acquire(self, partner: Partner, cost: int = 1) -> Quota:
        rate = partner.rate_limit_per_minute / 60.0
        try:
            wait_ms, milli_tokens = self._script(
                keys=[f"{self._prefix}{partner.id}"], args=[partner.rate_limit_per_minute, rate, cost, time.time()]
            )
        except Exception as e:  # Redis unreachable or failing: limit in process rather than answer 500
            if not self.degraded:
                log.warning("Redis rate limiter failed (%s): limiting in process", e.__class__.__name__)
            self.degraded = True
            return self._local.acquire(partner, cost)
        if self.degraded:
            log.info("Redis rate limiter answers again")
        self.degraded = False
        return _quota(partner, float(wait_ms) / 1000.0, float(milli_tokens) / 1000.0)


def make_rate_limiter(redis_url: str | None) -> RateLimiter | RedisRateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else RateLimiter()


def count_usage(engine: Engine, partner_id: int, items: int, day: date | None = None) -> None:
    """Requests and items per key per day (upsert that works on SQLite and PostgreSQL)."""
    d = (day or datetime.now(UTC).date()).isoformat()
    with engine.begin() as conn:
        res = conn.execute(
            update(usage)
            .where(usage.c.key_id == partner_id, usage.c.day == d)
            .values(requests=usage.c.requests + 1, items=usage.c["items"] + items)
        )
        if res.rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(insert(usage).values(key_id=partner_id, day=d, requests=1, items=items))
            except IntegrityError:
                conn.execute(
                    update(usage)
                    .where(usage.c.key_id == partner_id, usage.c.day == d)
                    .values(requests=usage.c.requests + 1, items=usage.c["items"] + items)
                )


def usage_by_name(engine: Engine, name: str, days: int = 31) -> list[dict[str, object]]:
    """Requests and items per day for a partner over all its keys (rotations included), oldest first."""
    since = (datetime.now(UTC).date() - timedelta(days=days - 1)).isoformat()
    with engine.connect() as conn:
        rows = conn.execute(
            select(usage.c.day, func.sum(usage.c.requests), func.sum(usage.c["items"]))
            .join(api_keys, api_keys.c.id == usage.c.key_id)
            .where(api_keys.c.name == name, usage.c.day >= since)
            .group_by(usage.c.day)
            .order_by(usage.c.day)
        ).all()
    return [{"day": day, "requests": int(req), "items": int(items)} for day, req, items in rows]
