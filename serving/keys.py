"""Partner API keys: created once and shown once, stored as SHA-256 hashes, scoped, rate limited."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from serving.db import api_keys, usage

SCOPES = frozenset({"classify", "verdicts", "appeals", "admin"})
KEY_PREFIX = "vcs_"


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
        raise ApiKeyError(f"a key named {name!r} already exists; revoke it or choose another name") from e
    return key


def list_keys(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
    return [{k: v for k, v in r.items() if k != "key_hash"} for r in rows]


def revoke_key(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        res = conn.execute(
            update(api_keys)
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    if res.rowcount == 0:
        raise ApiKeyError(f"no active key named {name!r}")


def verify_key(engine: Engine, key: str) -> Partner | None:
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(key))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    return Partner(row["id"], row["name"], frozenset(row["scopes"].split(",")), row["rate_limit_per_minute"])


class RateLimiter:
    """Token bucket per partner, in process memory (one bucket per key per replica)."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, partner: Partner, cost: int = 1) -> float:
        """0 when allowed; otherwise the seconds to wait before retrying."""
        rate = partner.rate_limit_per_minute / 60.0
        capacity = float(partner.rate_limit_per_minute)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(partner.id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= cost:
                self._buckets[partner.id] = (tokens - cost, now)
                return 0.0
            self._buckets[partner.id] = (tokens, now)
            return (cost - tokens) / rate


class RedisRateLimiter:
    """The same token bucket kept in Redis, so a partner's limit holds across API replicas and workers."""

    # KEYS[1] bucket key; ARGV: capacity, rate per second, cost, now (seconds). Returns wait in ms (0 = allowed).
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
    return wait
    """

    def __init__(self, url: str, prefix: str = "vicas:rl:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(self._SCRIPT)
        self._prefix = prefix

    def acquire(self, partner: Partner, cost: int = 1) -> float:
        rate = partner.rate_limit_per_minute / 60.0
        wait_ms = self._script(
            keys=[f"{self._prefix}{partner.id}"], args=[partner.rate_limit_per_minute, rate, cost, time.time()]
        )
        return float(wait_ms) / 1000.0


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


def usage_for(engine: Engine, partner_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(usage).where(usage.c.key_id == partner_id).order_by(usage.c.day)).mappings().all()
    return [dict(r) for r in rows]
