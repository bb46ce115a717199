"""Hash lists in the database (`vicas hashes import|list|remove`), held in memory by every API worker, and
the record of matches.

- An import replaces the list of the same name in one transaction: workers see the old list or the new
  one, never half of either. A malformed file imports nothing (vicas.hashes.parse_hash_list).
- Each worker loads every list into a `vicas.hashes.HashIndex` at start and reloads it when `hash_lists`
  changes: its maintenance loop compares the lists' (id, version, imported_at, count) every round (two
  seconds), one small query. While the database is unreachable the worker keeps matching with what it has.
- A match is recorded in `hash_matches` with the flagged item: the image's own hashes, the list, the
  distance, the partner. While the database is unreachable the rows wait in a local spool
  (`<VICAS_SPOOL_DIR>/hash_matches`, append + fsync, the flagged items' mechanism) and are written once
  when it answers again. Neither the image nor anything read in it is ever written anywhere.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from serving.db import hash_entries, hash_lists, hash_matches, insert_ignoring
from serving.spool import Spool
from vicas.hashes import HashIndex, HashMatch, ImageHashes, ListEntry, ListInfo

log = logging.getLogger("vicas.hashes")

INSERT_BATCH = 5000


@dataclass(frozen=True)
class ImportResult:
    name: str
    version: str
    count: int
    replaced: str | None  # the version it replaced, if the list was there


def import_list(engine: Engine, entries: list[ListEntry], name: str, version: str, source: str) -> ImportResult:
    """Store a list under `name`, replacing the list of that name (one transaction)."""
    for label, value, limit in (("name", name, 100), ("version", version, 100), ("source", source, 200)):
        if not value.strip() or len(value) > limit:
            raise ValueError(f"--{label} must be 1-{limit} characters")
    if not entries:
        raise ValueError("no hashes to import")
    with engine.begin() as conn:
        old = conn.execute(select(hash_lists.c.id, hash_lists.c.version).where(hash_lists.c.name == name)).first()
        if old is not None:
            conn.execute(delete(hash_entries).where(hash_entries.c.list_id == old.id))
            conn.execute(delete(hash_lists).where(hash_lists.c.id == old.id))
        list_id = conn.execute(
            insert(hash_lists)
            .values(name=name, version=version, source=source, imported_at=datetime.now(UTC), count=len(entries))
            .returning(hash_lists.c.id)
        ).scalar_one()
        for start in range(0, len(entries), INSERT_BATCH):
            conn.execute(
                insert(hash_entries),
                [
                    {"list_id": list_id, "type": e.hash_type, "value": e.value}
                    for e in entries[start : start + INSERT_BATCH]
                ],
            )
    return ImportResult(name, version, len(entries), old.version if old is not None else None)


def list_lists(engine: Engine) -> list[dict[str, Any]]:
    """The lists, oldest import first, with their counts per hash type (never a hash)."""
    with engine.connect() as conn:
        lists = conn.execute(select(hash_lists).order_by(hash_lists.c.id)).mappings().all()
        counts = conn.execute(
            select(hash_entries.c.list_id, hash_entries.c.type, func.count()).group_by(
                hash_entries.c.list_id, hash_entries.c.type
            )
        ).all()
    by_list: dict[int, dict[str, int]] = {}
    for list_id, hash_type, n in counts:
        by_list.setdefault(list_id, {})[hash_type] = n
    return [
        {
            "name": r["name"],
            "version": r["version"],
            "source": r["source"],
            "imported_at": r["imported_at"].isoformat(),
            "count": r["count"],
            "types": by_list.get(r["id"], {}),
        }
        for r in lists
    ]


def remove_list(engine: Engine, name: str) -> bool:
    """Delete a list and its entries; False when there is no list of that name."""
    with engine.begin() as conn:
        found = conn.execute(select(hash_lists.c.id).where(hash_lists.c.name == name)).scalar()
        if found is None:
            return False
        conn.execute(delete(hash_entries).where(hash_entries.c.list_id == found))
        conn.execute(delete(hash_lists).where(hash_lists.c.id == found))
    return True


# ---------------------------------------------------------------------------------------------- in memory


class HashLists:
    """The lists one worker matches against: a `HashIndex` swapped whole when the lists change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.index = HashIndex()
        self.loaded = False  # False until the first load succeeded (readiness reports it)
        self._signature: tuple[tuple[Any, ...], ...] | None = None
        self._lock = threading.Lock()  # one reload at a time

    def _current_signature(self) -> tuple[tuple[Any, ...], ...]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(hash_lists.c.id, hash_lists.c.version, hash_lists.c.imported_at, hash_lists.c.count).order_by(
                    hash_lists.c.id
                )
            ).all()
        return tuple(tuple(r) for r in rows)

    def refresh(self) -> bool:
        """Reload when the lists changed since the last load; True when it reloaded. An index is swapped in
        only when the lists did not change while it was read (an import or removal meanwhile: read again).
        Raises what the database raises; the caller logs it and the index in use stays."""
        with self._lock:
            for _ in range(3):
                signature = self._current_signature()
                if signature == self._signature:
                    return False
                with self.engine.connect() as conn:
                    lists = {
                        r.id: ListInfo(r.name, r.version)
                        for r in conn.execute(select(hash_lists.c.id, hash_lists.c.name, hash_lists.c.version))
                    }
                    rows = conn.execute(select(hash_entries.c.list_id, hash_entries.c.type, hash_entries.c.value))
                    index = HashIndex.build(lists, ((r[0], r[1], r[2]) for r in rows))
                if self._current_signature() == signature:
                    self.index, self.loaded, self._signature = index, True, signature
                    log.info("hash lists loaded: %d lists, %d hashes (%d PDQ)", len(lists), len(index), index.pdq_count)
                    return True
            log.warning("hash lists kept changing while being loaded; trying again next round")
            return False


def load_index(database_url: str) -> HashIndex:
    """The lists imported in a database, for `vicas classify` and bulk scoring (the API reloads its own)."""
    from serving.db import make_engine

    lists = HashLists(make_engine(database_url))
    lists.refresh()
    return lists.index


# ---------------------------------------------------------------------------------------------- matches


@dataclass
class MatchRecord:
    """A row of hash_matches: the image's hashes, never the image."""

    item_key: str
    image: int
    list_name: str
    list_version: str
    hash_type: str
    distance: int
    md5: str | None
    sha256: str | None
    pdq: str | None
    pdq_quality: int | None
    partner: str | None
    created_at: str  # ISO 8601

    @classmethod
    def of(cls, item_key: str, match: HashMatch, hashes: ImageHashes, partner: str | None) -> MatchRecord:
        return cls(
            item_key,
            match.image,
            match.list_name,
            match.list_version,
            match.hash_type,
            match.distance,
            hashes.md5,
            hashes.sha256,
            hashes.pdq,
            hashes.pdq_quality,
            partner,
            datetime.now(UTC).isoformat(),
        )

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": datetime.fromisoformat(self.created_at)}


def parse_record(record: dict[str, Any]) -> MatchRecord:
    """A spooled record back into a match; TypeError or ValueError when it is not one."""
    rec = MatchRecord(**record)
    datetime.fromisoformat(rec.created_at)
    if not rec.item_key or not isinstance(rec.image, int):
        raise ValueError("not a match record")
    return rec


class MatchLog:
    """Writes match records next to the flagged items; spools them while the database is unreachable."""

    def __init__(self, engine: Engine, spool_dir: Path) -> None:
        self.engine = engine
        self.spool = Spool(spool_dir / "hash_matches")

    def _insert(self, records: list[MatchRecord]) -> int:
        """Insert, ignoring records already stored (same item and image); returns how many were new."""
        if not records:
            return 0
        stmt = insert_ignoring(self.engine, hash_matches, ["item_key", "image"])
        keys = {r.item_key for r in records}
        with self.engine.begin() as conn:
            query = select(hash_matches.c.item_key, hash_matches.c.image).where(hash_matches.c.item_key.in_(keys))
            present = {(key, image) for key, image in conn.execute(query)}
            conn.execute(stmt, [r.row() for r in records])
        return len({(r.item_key, r.image) for r in records} - present)

    def save(self, records: list[MatchRecord]) -> str:
        """'stored' or 'spooled'; never raises for a database outage."""
        if not records:
            return "stored"
        try:
            self._insert(records)
            return "stored"
        except (OperationalError, DBAPIError) as e:
            if isinstance(e, IntegrityError):
                raise
            log.warning("database unreachable, %d hash matches spooled: %s", len(records), e.__class__.__name__)
            self.spool.append([asdict(r) for r in records])
            return "spooled"

    def flush_spool(self) -> int:
        try:
            return self.spool.flush(parse_record, self._insert)
        except (OperationalError, DBAPIError):
            return 0

    def spooled_count(self) -> int:
        return self.spool.count()


def match_counts(engine: Engine, since: datetime | None = None) -> list[dict[str, Any]]:
    """Matches per day (UTC), partner and list version, oldest day first: counts only, for reports and the
    police."""
    query = select(
        hash_matches.c.created_at, hash_matches.c.partner, hash_matches.c.list_name, hash_matches.c.list_version
    )
    if since is not None:
        query = query.where(hash_matches.c.created_at >= since)
    counts: dict[tuple[str, str, str, str], int] = {}
    with engine.connect() as conn:
        for created, partner, name, version in conn.execute(query):
            when = created if created.tzinfo else created.replace(tzinfo=UTC)  # SQLite returns naive UTC
            key = (when.astimezone(UTC).date().isoformat(), partner or "", name, version)
            counts[key] = counts.get(key, 0) + 1
    return [
        {"day": d, "partner": p or None, "list": name, "version": v, "matches": n}
        for (d, p, name, v), n in sorted(counts.items())
    ]
