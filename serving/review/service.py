"""What reviewers do, independent of the web pages: queue, decisions (four-eyes for C), reveal, appeals,
and the export that feeds reviewed items back into training. Every change is written to the audit log in
the same transaction."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, literal, literal_column, select, tuple_, update

from serving.db import appeals, flagged_items, hash_matches, insert_ignoring, item_views, queue_counts, reviews
from serving.db import item_images as item_images_table
from serving.review import audit
from serving.review.accounts import User
from serving.store import record_verdict, stored_url
from vicas.policy import Policy, decide
from vicas.redact import redact_text
from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band, check_severity

DECISIONS = ("confirm", "change", "false_positive")


class ReviewError(ValueError):
    """A decision that cannot be taken; the message says why."""


# --- private text (personal data), encrypted at rest --------------------------------------------


def _fernet(secret: str) -> Any:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(("vicas-private:" + secret).encode()).digest()))


def seal(original: str, secret: str | None) -> str | None:
    return _fernet(secret).encrypt(original.encode("utf-8")).decode("ascii") if secret else None


def seal_bytes(data: bytes, secret: str) -> str:
    """Bytes (an image's thumbnail) sealed like an original text: same key, ASCII token."""
    return str(_fernet(secret).encrypt(data).decode("ascii"))


def unseal_bytes(token: str, secret: str) -> bytes:
    """What seal_bytes sealed; cryptography's InvalidToken under another key."""
    return bytes(_fernet(secret).decrypt(token.encode("ascii")))


def reveal(engine: Engine, item_id: int, user: User, secret: str | None) -> str:
    """The unredacted text, for roles allowed to see it; the reveal is logged."""
    if not user.can("reveal"):
        raise ReviewError("your role cannot reveal personal data")
    with engine.begin() as conn:
        row = conn.execute(select(flagged_items.c.private).where(flagged_items.c.id == item_id)).first()
        if row is None:
            raise ReviewError(f"no item {item_id}")
        if not row[0] or not secret:
            raise ReviewError("this item has no sealed original (no VICAS_SECRET_KEY when it was stored)")
        audit.append(conn, user.username, "reveal", f"item:{item_id}")
    return str(_fernet(secret).decrypt(row[0].encode("ascii")).decode("utf-8"))


# --- images: sealed thumbnails, blurred until a reviewer unblurs one (serving/review/images.py) ---------------


def item_images(engine: Engine, item_key: str) -> list[dict[str, Any]]:
    """An item's stored thumbnails without their pixels: index, size, evidence boxes, sensitivity."""
    cols = [c for c in item_images_table.c if c.name != "thumbnail"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(*cols).where(item_images_table.c.item_key == item_key).order_by(item_images_table.c.image)
        ).mappings()
        out = [dict(r) for r in rows]
    for r in out:
        r["boxes"] = json.loads(r["boxes"])
    return out


def _thumbnail(conn: Connection, item_id: int, image: int) -> tuple[str, bool] | None:
    q = (
        select(item_images_table.c.thumbnail, item_images_table.c.sensitive)
        .select_from(item_images_table.join(flagged_items, flagged_items.c.item_key == item_images_table.c.item_key))
        .where(flagged_items.c.id == item_id, item_images_table.c.image == image)
    )
    row = conn.execute(q).first()
    return (str(row[0]), bool(row[1])) if row is not None else None


def blurred_image(engine: Engine, item_id: int, image: int, secret: str | None) -> bytes:
    """The thumbnail as the console first shows it, blurred: nothing to log. ReviewError when there is none."""
    from serving.review.images import blurred

    with engine.connect() as conn:
        found = _thumbnail(conn, item_id, image)
    if found is None or not secret:
        raise ReviewError("no such image")
    return blurred(unseal_bytes(found[0], secret), found[1])


def unblur_image(engine: Engine, item_id: int, image: int, user: User, secret: str | None) -> bytes:
    """The clear thumbnail, for a reviewer who chose to see it; the choice is written to the audit log."""
    if not user.can("review"):
        raise ReviewError("your role cannot review items")
    with engine.begin() as conn:
        found = _thumbnail(conn, item_id, image)
        if found is None or not secret:
            raise ReviewError("no such image")
        audit.append(conn, user.username, "image:unblur", f"item:{item_id}", None, {"image": image + 1})
    return unseal_bytes(found[0], secret)


# --- what reviewers see: severe items per reviewer and day (their wellbeing) ----------------------------------

# An item counts as severe for a reviewer's daily exposure when any category is at the contract's highest
# severity (3: e.g. graphic violence, sexual abuse, self-harm instructions, a hash-list match). Bands are not
# used: a T18 item can be graphic violence, and a C item can be a gambling advertisement.
SEVERE_SEVERITY = 3


def is_severe(cats: Mapping[str, Any]) -> bool:
    """Whether an item's (model) categories reach SEVERE_SEVERITY."""
    for value in cats.values():
        try:
            if isinstance(value, Mapping) and float(value.get("severity", 0) or 0) >= SEVERE_SEVERITY:
                return True
        except (TypeError, ValueError):
            continue
    return False


def record_view(engine: Engine, item: Mapping[str, Any], reviewer: str, now: datetime | None = None) -> None:
    """Note that `reviewer` opened `item` today (Vietnam's day); a second look the same day is not counted."""
    from serving.review.i18n import TIMEZONE

    now = now or datetime.now(UTC)
    day = now.astimezone(TIMEZONE).date().isoformat()
    row = {
        "reviewer": reviewer,
        "item_id": int(item["id"]),
        "day": day,
        "severe": is_severe(item.get("cats") or {}),
        "viewed_at": now,
    }
    with engine.begin() as conn:
        conn.execute(insert_ignoring(engine, item_views).values(**row))


def severe_views(engine: Engine, start: date | None = None, end: date | None = None) -> dict[str, dict[str, int]]:
    """Severe items seen per reviewer and day (Vietnam's days, both ends inclusive): {reviewer: {day: n}}."""
    conds: list[ColumnElement[bool]] = [item_views.c.severe.is_(True)]
    if start is not None:
        conds.append(item_views.c.day >= start.isoformat())
    if end is not None:
        conds.append(item_views.c.day <= end.isoformat())
    keys = (item_views.c.reviewer, item_views.c.day)
    q = select(*keys, func.count()).where(*conds).group_by(*keys).order_by(*keys)
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for reviewer, day, n in conn.execute(q):
            out.setdefault(str(reviewer), {})[str(day)] = int(n)
    return out


# --- queue ---------------------------------------------------------------------------------------


@dataclass
class QueueFilter:
    band: str | None = None
    category: str | None = None
    partner: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    source: str | None = None  # "appeal": items with an open appeal; "review": the model's review outcome
    max_confidence: float | None = None
    status: str = "pending"  # pending (open + awaiting_second) | reviewed | all


@dataclass(frozen=True)
class QueueCursor:
    """Where a queue page ends: the sort key of its last item. The next page starts after it (keyset
    paging: no OFFSET, and items decided meanwhile do not shift the pages)."""

    rank: int
    confidence: float
    created_at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.rank},{self.confidence!r},{self.created_at.isoformat()},{self.id}"

    @classmethod
    def decode(cls, value: str) -> QueueCursor:
        """The cursor a page link carries; ValueError when `value` is not one."""
        parts = value.split(",")
        if len(parts) != 4:
            raise ValueError("a queue cursor is rank,confidence,created_at,id")
        confidence = float(parts[1])
        if not math.isfinite(confidence):
            raise ValueError("a queue cursor's confidence is a finite number")
        return cls(int(parts[0]), confidence, datetime.fromisoformat(parts[2]), int(parts[3]))

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> QueueCursor:
        """The cursor just after `item` (a flagged_items row)."""
        return cls(int(item["queue_rank"]), float(item["confidence"]), item["created_at"], int(item["id"]))


@dataclass
class QueuePage:
    items: list[dict[str, Any]]  # flagged_items rows (without text, evidence, private) with "cats" parsed
    counts: dict[str, Any]  # total, per band and per category, of every item under the filter
    next_after: QueueCursor | None  # the cursor of the next page; None on the last one


# the queue's order (serving/queue_keys.py), matched by the indexes ix_flagged_items_queue(_open)
_QUEUE_ORDER = (flagged_items.c.queue_rank, flagged_items.c.confidence, flagged_items.c.created_at, flagged_items.c.id)
# what the queue page shows: everything but the content and its sealed original
_QUEUE_COLUMNS = [c for c in flagged_items.c if c.name not in ("text", "evidence", "private")]
_OPEN = flagged_items.c.status.in_([literal_column("'open'"), literal_column("'awaiting_second'")])  # QUEUE_OPEN_SQL


def _queue_conditions(f: QueueFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.status == "pending":
        conds.append(_OPEN)  # literals, so that the partial index ix_flagged_items_queue_open serves it
    elif f.status == "reviewed":
        conds.append(flagged_items.c.status == "reviewed")
    if f.band:
        conds.append(flagged_items.c.band == f.band)
    if f.category:
        conds.append(flagged_items.c.category_flags.contains(f",{f.category},", autoescape=True))
    if f.partner:
        conds.append(flagged_items.c.partner == f.partner)
    if f.date_from:
        conds.append(flagged_items.c.created_at >= datetime.combine(f.date_from, datetime.min.time(), UTC))
    if f.date_to:
        conds.append(flagged_items.c.created_at <= datetime.combine(f.date_to, datetime.max.time(), UTC))
    if f.max_confidence is not None:
        conds.append(flagged_items.c.confidence <= f.max_confidence)
    if f.source == "review":
        conds.append(flagged_items.c.needs_review.is_(True))
    if f.source == "appeal":
        open_appeals = select(appeals.c.item_id).where(appeals.c.status == "open")
        conds.append(flagged_items.c.id.in_(open_appeals))
    return conds


def _after(cursor: QueueCursor) -> ColumnElement[bool]:
    """Rows strictly after `cursor` in the queue's order: one row-value comparison, an index range scan."""
    values = (cursor.rank, cursor.confidence, cursor.created_at, cursor.id)
    return tuple_(*_QUEUE_ORDER) > tuple_(*(literal(v, c.type) for v, c in zip(values, _QUEUE_ORDER, strict=True)))


def _status_only(f: QueueFilter) -> bool:
    """A filter on the status alone: its counts are in queue_counts, kept by triggers (migration 0011)."""
    return not (f.band or f.category or f.partner or f.date_from or f.date_to or f.source) and f.max_confidence is None


def _queue_counts(conn: Connection, conds: list[ColumnElement[bool]], f: QueueFilter | None = None) -> dict[str, Any]:
    """Counts of every item under the filter, per band and per flagged category. Under a filter on the status
    alone (the queue as it opens, "reviewed", "all") they are read from queue_counts, a few hundred rows
    whatever the number of items; under any other filter, grouped in SQL by status, band and category set,
    the order of ix_flagged_items_queue_counts (read from the index alone). Then added up here."""
    if f is not None and _status_only(f):
        q = select(queue_counts.c.status, queue_counts.c.band, queue_counts.c.category_flags, queue_counts.c.n)
        if f.status == "pending":
            q = q.where(queue_counts.c.status.in_(["open", "awaiting_second"]))
        elif f.status == "reviewed":
            q = q.where(queue_counts.c.status == "reviewed")
        groups = conn.execute(q.where(queue_counts.c.n > 0))
    else:
        keys = (flagged_items.c.status, flagged_items.c.band, flagged_items.c.category_flags)
        groups = conn.execute(select(*keys, func.count()).where(*conds).group_by(*keys))
    by_band: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for _, band, flags, n in groups:
        by_band[band] = by_band.get(band, 0) + int(n)
        for c in filter(None, str(flags).split(",")):
            by_category[c] = by_category.get(c, 0) + int(n)
    band_rank = {b.value: i for i, b in enumerate(reversed(BAND_ORDER))}  # C first
    cat_rank = {c: i for i, c in enumerate(CATEGORIES)}
    return {
        "total": sum(by_band.values()),
        "band": {b: by_band[b] for b in sorted(by_band, key=lambda b: (band_rank.get(b, len(band_rank)), b))},
        "category": {c: by_category[c] for c in sorted(by_category, key=lambda c: (cat_rank.get(c, len(cat_rank)), c))},
    }


def load_queue(
    engine: Engine, f: QueueFilter, after: QueueCursor | None = None, limit: int = 200, counts: bool = True
) -> QueuePage:
    """One page of items for review, the page after `after` (the first without), and counts per band and
    category of every item under the same filter (`counts=False` leaves them out).

    Order: band C and child_sexual first, then the least confident, then the oldest (serving/queue_keys.py).
    Filtering, ordering, paging and counting all happen in SQL on indexed keys stored with each item.
    """
    if limit < 1:
        raise ValueError("a queue page holds at least one item")
    conds = _queue_conditions(f)
    q = select(*_QUEUE_COLUMNS).where(*conds)
    if after is not None:
        q = q.where(_after(after))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q.order_by(*_QUEUE_ORDER).limit(limit + 1)).mappings()]
        totals = _queue_counts(conn, conds, f) if counts else {"total": None, "band": {}, "category": {}}
    more = len(rows) > limit
    items = rows[:limit]
    for r in items:
        r["cats"] = json.loads(r["categories"])
    return QueuePage(items, totals, QueueCursor.of(items[-1]) if more else None)


def queue(
    engine: Engine, f: QueueFilter, limit: int = 200, after: QueueCursor | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Items for review (one page: see load_queue) and counts per band and category under the same filter."""
    page = load_queue(engine, f, after=after, limit=limit)
    return page.items, page.counts


def next_item_id(engine: Engine, item: Mapping[str, Any], f: QueueFilter | None = None) -> int | None:
    """The item to open after `item` (a flagged_items row, as get_item returns it), in one query: the next
    one in the queue's order, or, past the end, the queue's first other than `item` (None when it is alone).
    An item decided meanwhile still has its place in the order, so the next one is the one after it."""
    conds = _queue_conditions(f or QueueFilter())
    ids = select(flagged_items.c.id).order_by(*_QUEUE_ORDER).limit(1)
    following = ids.where(*conds, _after(QueueCursor.of(item))).scalar_subquery()
    first = ids.where(*conds, flagged_items.c.id != int(item["id"])).scalar_subquery()
    with engine.connect() as conn:
        found = conn.execute(select(func.coalesce(following, first))).scalar()
    return int(found) if found is not None else None


def get_item(engine: Engine, item_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(flagged_items).where(flagged_items.c.id == item_id)).mappings().first()
        if row is None:
            return None
        item = dict(row)
        item["reviews"] = [
            dict(r)
            for r in conn.execute(select(reviews).where(reviews.c.item_id == item_id).order_by(reviews.c.id)).mappings()
        ]
        item["appeals"] = [
            dict(r)
            for r in conn.execute(select(appeals).where(appeals.c.item_id == item_id).order_by(appeals.c.id)).mappings()
        ]
        # images found in a hash list: the list's name is all a reviewer is shown of them
        item["hash_matches"] = [
            dict(r)
            for r in conn.execute(
                select(hash_matches.c.image, hash_matches.c.list_name, hash_matches.c.list_version)
                .where(hash_matches.c.item_key == item["item_key"])
                .order_by(hash_matches.c.image)
            ).mappings()
        ]
    item["cats"] = json.loads(item["categories"])
    item["evidence_list"] = json.loads(item["evidence"])
    item["stored_decision"] = json.loads(item["decision"]) if item.get("decision") else None
    return item


# --- decisions -----------------------------------------------------------------------------------


def _final_from(
    decision: str, item: dict[str, Any], categories: dict[str, int] | None, band: str | None, policy: Policy
) -> tuple[dict[str, int], str]:
    if decision == "confirm":
        sev = {c: int(v.get("severity", 0)) for c, v in item["cats"].items()}
        return {c: s for c, s in sev.items() if s}, item["band"]
    if decision == "false_positive":
        return {}, Band.P.value
    if decision == "change":
        if categories is None and band is None:
            raise ReviewError("a change needs new categories, a new band, or both")
        sev = categories if categories is not None else {c: int(v.get("severity", 0)) for c, v in item["cats"].items()}
        for c, s in sev.items():
            check_severity(c, s)
        sev = {c: s for c, s in sev.items() if s}
        final_band = band or decide(sev, policy).band.value
        Band(final_band)
        return sev, final_band
    raise ReviewError(f"decision must be one of {DECISIONS}")


def record_decision(
    engine: Engine,
    item_id: int,
    user: User,
    decision: str,
    policy: Policy,
    note: str = "",
    categories: dict[str, int] | None = None,
    band: str | None = None,
) -> str:
    """Apply a reviewer's decision; returns the item's new status.

    A decision that puts (or keeps) an item at band C waits for a second, different reviewer
    (`second_confirm`): four eyes before content is reported as illegal.
    """
    if not user.can("review"):
        raise ReviewError("your role cannot review items")
    item = get_item(engine, item_id)
    if item is None:
        raise ReviewError(f"no item {item_id}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        before = {
            "status": item["status"],
            "band": item["final_band"] or item["band"],
            "categories": json.loads(item["final_categories"]) if item["final_categories"] else None,
        }
        if decision == "second_confirm":
            if item["status"] != "awaiting_second":
                raise ReviewError("this item is not waiting for a second reviewer")
            first = item["reviews"][-1]
            if first["reviewer"] == user.username:
                raise ReviewError("the second review of a C decision must be by another reviewer")
            if not user.can("second_review"):
                raise ReviewError("the second review of a C decision is a supervisor's (four eyes)")
            final_cats, final_band = json.loads(first["categories"]), first["band"]
            status = "reviewed"
        else:
            if item["status"] == "awaiting_second":
                raise ReviewError("a C decision is waiting for a second reviewer; confirm it or let another decide")
            final_cats, final_band = _final_from(decision, item, categories, band, policy)
            status = "awaiting_second" if final_band == Band.C.value else "reviewed"
        conn.execute(
            insert(reviews).values(
                item_id=item_id,
                reviewer=user.username,
                decision=decision,
                band=final_band,
                categories=json.dumps(final_cats),
                note=note,
                created_at=now,
            )
        )
        values: dict[str, Any] = {"status": status}
        if status == "reviewed":
            values.update(final_band=final_band, final_categories=json.dumps(final_cats), reviewed_at=now)
        conn.execute(update(flagged_items).where(flagged_items.c.id == item_id).values(**values))
        audit.append(
            conn,
            user.username,
            f"decision:{decision}",
            f"item:{item_id}",
            before,
            {"status": status, "band": final_band, "categories": final_cats, "note_sha256": audit.fingerprint(note)},
        )
    if status == "reviewed" and item["url"]:
        record_verdict(
            engine,
            item["url"],
            final_band,
            "reviewed",
            item["content_hash"],
            item["model_version"],
            item["policy_version"],
        )
    return status


# --- appeals -------------------------------------------------------------------------------------


def create_appeal(
    engine: Engine, partner: str | None, reason: str, item_id: int | None = None, url: str | None = None
) -> int:
    if not reason.strip():
        raise ReviewError("an appeal needs a reason")
    if item_id is None and not url:
        raise ReviewError("an appeal names an item id or a URL")
    if url:  # stored like verdicts: normal form, no query string (where a child's phone number travels)
        url = stored_url(url)
        if url is None:
            raise ReviewError("the appealed URL has no host name; give the page's full URL")
    reason = redact_text(reason, [], set())  # phone numbers, e-mails, ID numbers masked before storage
    with engine.begin() as conn:
        if item_id is not None:
            q = select(flagged_items.c.id, flagged_items.c.url).where(flagged_items.c.id == item_id)
            if partner is not None:  # a partner appeals only its own items (and learns nothing of others')
                q = q.where(flagged_items.c.partner == partner)
            exists = conn.execute(q).first()
            if exists is None:
                raise ReviewError(f"no item {item_id} for this partner")
            url = url or exists[1]
        res = conn.execute(
            insert(appeals).values(
                item_id=item_id, url=url, partner=partner, reason=reason, status="open", created_at=datetime.now(UTC)
            )
        )
        appeal_id = int(res.inserted_primary_key[0])  # type: ignore[index]
        audit.append(
            conn,
            partner or "partner",
            "appeal:create",
            f"appeal:{appeal_id}",
            None,
            {"item_id": item_id, "url": url, "reason_sha256": audit.fingerprint(reason)},
        )
    return appeal_id


def get_appeal(engine: Engine, appeal_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(appeals).where(appeals.c.id == appeal_id)).mappings().first()
    return dict(row) if row else None


def list_appeals(engine: Engine, status: str | None = "open") -> list[dict[str, Any]]:
    q = select(appeals).order_by(appeals.c.id)
    if status:
        q = q.where(appeals.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def decide_appeal(engine: Engine, appeal_id: int, user: User, outcome: str, note: str, band: str | None = None) -> None:
    """upheld: the verdict stands; overturned: the given band becomes the reviewed verdict."""
    if not user.can("appeals"):
        raise ReviewError("your role cannot decide appeals")
    if outcome not in ("upheld", "overturned"):
        raise ReviewError("outcome must be 'upheld' or 'overturned'")
    appeal = get_appeal(engine, appeal_id)
    if appeal is None or appeal["status"] != "open":
        raise ReviewError(f"no open appeal {appeal_id}")
    item = get_item(engine, appeal["item_id"]) if appeal["item_id"] is not None else None
    if outcome == "overturned":
        if band is None:
            raise ReviewError("an overturned appeal needs the new band")
        Band(band)
        if item is not None and item["status"] == "awaiting_second":
            raise ReviewError("the item waits for its second review; decide the appeal once that is done")
    # four eyes: an appeal that ends at C is one reviewer's decision until a second one confirms it
    needs_second = outcome == "overturned" and band == Band.C.value
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            update(appeals)
            .where(appeals.c.id == appeal_id)
            .values(status=outcome, decided_band=band, decision_note=note, decided_by=user.username, decided_at=now)
        )
        if outcome == "overturned" and item is not None:
            if needs_second:
                cats = item["final_categories"] or json.dumps(
                    {c: v.get("severity", 0) for c, v in json.loads(item["categories"]).items() if v.get("severity")}
                )
                conn.execute(
                    insert(reviews).values(
                        item_id=item["id"],
                        reviewer=user.username,
                        decision="appeal_overturn",
                        band=band,
                        categories=cats,
                        note=note,
                        created_at=now,
                    )
                )
                conn.execute(
                    update(flagged_items).where(flagged_items.c.id == item["id"]).values(status="awaiting_second")
                )
            else:
                conn.execute(
                    update(flagged_items)
                    .where(flagged_items.c.id == item["id"])
                    .values(final_band=band, status="reviewed", reviewed_at=now)
                )
        audit.append(
            conn,
            user.username,
            f"appeal:{outcome}",
            f"appeal:{appeal_id}",
            {"status": "open"},
            {"status": outcome, "band": band, "note_sha256": audit.fingerprint(note)},
        )
    if outcome == "overturned" and appeal["url"] and band and not needs_second:
        record_verdict(engine, appeal["url"], band, "reviewed", None, None, None)


# --- feedback into training ----------------------------------------------------------------------


def export_reviewed(engine: Engine, out_dir: Path) -> tuple[Path, int]:
    """Reviewed items as own-corpus JSONL in `out_dir` (data/reviewed): the next `dvc repro` trains on them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "reviewed.jsonl"
    n = 0
    with engine.connect() as conn:
        rows = (
            conn.execute(select(flagged_items).where(flagged_items.c.status == "reviewed").order_by(flagged_items.c.id))
            .mappings()
            .all()
        )
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            cats = json.loads(r["final_categories"] or "{}")
            labels = {c: int(s) for c, s in cats.items() if c in CATEGORIES and int(s) > 0}
            f.write(
                json.dumps(
                    {
                        "id": f"reviewed-{r['id']}",
                        "text": r["text"],
                        "labels": labels,
                        "kind": "reviewed",
                        "band": r["final_band"],
                        "model_version": r["model_version"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            n += 1
    return path, n


def counts_by_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            str(s): int(n)
            for s, n in conn.execute(select(flagged_items.c.status, func.count()).group_by(flagged_items.c.status))
        }
