"""Append-only, hash-chained audit log: each entry carries the hash of the one before it.

Editing or deleting any entry breaks the chain from that point on, which `verify` reports
(`vicas audit verify`).

- **Concurrency.** The chain's head lives in one row (`audit_head`). An append first moves that row (which
  takes its lock: other appenders wait for this transaction), then reads the head, writes the entry and
  stores the new head. Two reviewers acting at once therefore get one entry after the other, never two
  entries that follow the same one (a false tamper alarm).
- **Anchoring.** Whoever can write the database can edit an entry and recompute every hash after it. So
  each entry also carries an HMAC of its hash under the service's secret key (`VICAS_SECRET_KEY`), which
  the database does not hold: `verify` with the key rejects such a rewrite. Keep the printed head
  (`ID:HASH`) elsewhere too and check it with `vicas audit verify --expect ID:HASH`, which also catches a
  cut-off tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from serving.db import audit_head, audit_log

GENESIS = "0" * 64
_KEY: bytes | None = None


def configure(secret_key: str | None) -> None:
    """The key for the entries' HMACs (the app and the CLI call this with VICAS_SECRET_KEY)."""
    global _KEY
    _KEY = secret_key.encode("utf-8") if secret_key else None


def mac_of(entry_hash: str, key: bytes | None = None) -> str | None:
    k = key if key is not None else _KEY
    return hmac.new(k, entry_hash.encode("ascii"), hashlib.sha256).hexdigest() if k else None


def _digest(prev_hash: str, ts: str, actor: str, action: str, target: str, before: str, after: str) -> str:
    payload = json.dumps([prev_hash, ts, actor, action, target, before, after], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def fingerprint(text: str | None) -> str | None:
    """What the audit log keeps of free text (notes, appeal reasons): its SHA-256, never the text, which may
    hold a child's personal data. The text itself stays where retention and redaction apply."""
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def append(conn: Connection, actor: str, action: str, target: str, before: Any = None, after: Any = None) -> str:
    """Add an entry inside the caller's transaction (so the change and its record commit together)."""
    # move the head row first: its row lock (a write lock on SQLite) serialises appenders from here on
    moved = conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
    if moved.rowcount == 0:
        conn.execute(insert(audit_head).values(id=1, hash=GENESIS, seq=1))
    prev = conn.execute(select(audit_head.c.hash).where(audit_head.c.id == 1)).scalar_one()
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    b = json.dumps(before, ensure_ascii=False, sort_keys=True, default=str)
    a = json.dumps(after, ensure_ascii=False, sort_keys=True, default=str)
    h = _digest(prev, ts, actor, action, target, b, a)
    conn.execute(
        insert(audit_log).values(
            ts=ts, actor=actor, action=action, target=target, before=b, after=a, prev_hash=prev, hash=h, mac=mac_of(h)
        )
    )
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values(hash=h))
    return h


@dataclass
class VerifyResult:
    entries: int
    ok: bool
    problems: list[str]
    head: str = GENESIS  # hash of the newest entry: keep it outside the database to catch a cut-off tail
    head_id: int = 0
    macs_checked: int = 0


def verify(engine: Engine, key: str | None = None, expect: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute every hash and link; with `key`, every entry's HMAC (entries written before keys were
    used have none); with `expect` (id, hash) kept elsewhere, that entry must still be there, unchanged."""
    problems: list[str] = []
    prev = GENESIS
    n = macs = head_id = 0
    expected_id = None
    k = key.encode("utf-8") if key else None
    seen_expected = False
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
            if k is not None and row["mac"] is not None:
                macs += 1
                if not hmac.compare_digest(row["mac"], mac_of(row["hash"], k) or ""):
                    problems.append(f"entry {row['id']}: its HMAC does not match: rewritten without the key")
            elif k is not None and macs:
                problems.append(f"entry {row['id']}: has no HMAC after entries that have one (inserted)")
            if expect is not None and row["id"] == expect[0]:
                seen_expected = True
                if row["hash"] != expect[1]:
                    problems.append(f"entry {row['id']}: hash {row['hash']} is not the expected {expect[1]}")
            prev, head_id = row["hash"], row["id"]
    if expect is not None and not seen_expected:
        problems.append(f"entry {expect[0]} is missing (the chain was cut or the entry deleted)")
    return VerifyResult(n, not problems, problems, prev, head_id, macs)


def entries(engine: Engine, target: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target:
        q = q.where(audit_log.c.target == target)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
