"""Append-only, hash-chained audit log: each entry carries the hash of the one before it.

Editing or deleting any entry breaks the chain from that point on, which `verify` reports
(`vicas audit verify`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from serving.db import audit_log

GENESIS = "0" * 64


def _digest(prev_hash: str, ts: str, actor: str, action: str, target: str, before: str, after: str) -> str:
    payload = json.dumps([prev_hash, ts, actor, action, target, before, after], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(conn: Connection, actor: str, action: str, target: str, before: Any = None, after: Any = None) -> str:
    """Add an entry inside the caller's transaction (so the change and its record commit together)."""
    last = conn.execute(select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1).with_for_update()).first()
    prev = last[0] if last else GENESIS
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    b = json.dumps(before, ensure_ascii=False, sort_keys=True, default=str)
    a = json.dumps(after, ensure_ascii=False, sort_keys=True, default=str)
    h = _digest(prev, ts, actor, action, target, b, a)
    conn.execute(
        insert(audit_log).values(
            ts=ts, actor=actor, action=action, target=target, before=b, after=a, prev_hash=prev, hash=h
        )
    )
    return h


@dataclass
class VerifyResult:
    entries: int
    ok: bool
    problems: list[str]
    head: str = GENESIS  # hash of the newest entry: keep it outside the database to catch a cut-off tail


def verify(engine: Engine) -> VerifyResult:
    """Recompute every hash and link; report the first entries that do not match."""
    problems: list[str] = []
    prev = GENESIS
    n = 0
    expected_id = None
    with engine.connect() as conn:
        for row in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings():
            n += 1
            if expected_id is not None and row["id"] != expected_id:
                problems.append(f"entries {expected_id}..{row['id'] - 1} are missing (deleted)")
            expected_id = row["id"] + 1
            if row["prev_hash"] != prev:
                problems.append(f"entry {row['id']}: does not follow the entry before it (one was deleted or edited)")
            recomputed = _digest(
                row["prev_hash"], row["ts"], row["actor"], row["action"], row["target"], row["before"], row["after"]
            )
            if recomputed != row["hash"]:
                problems.append(f"entry {row['id']}: content does not match its hash (edited)")
            prev = row["hash"]
    return VerifyResult(n, not problems, problems, prev)


def entries(engine: Engine, target: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target:
        q = q.where(audit_log.c.target == target)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
