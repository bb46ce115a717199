"""Flagged items and verdicts. A flagged item is never lost: when the database is unreachable it goes to a
durable local spool (append + fsync) that is flushed, exactly once, when the database answers again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import InitVar, asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from serving.db import (
    appeals,
    as_utc,
    flagged_items,
    insert_ignoring,
    item_images,
    item_views,
    login_throttle,
    reviews,
    verdicts,
)
from serving.queue_keys import keys_for
from serving.spool import Spool
from serving.urls import UrlError, host_of, is_public_suffix, normalize_host, normalize_url
from vicas.taxonomy import BAND_ORDER, Band

log = logging.getLogger("vicas.store")


@dataclass
class FlaggedItem:
    item_key: str  # request id + item index: the exactly-once key
    content_hash: str
    partner: str | None
    url: str | None
    domain: str | None
    band: str
    categories: dict[str, Any]
    evidence: list[dict[str, Any]]
    text: str  # already redacted
    model_version: str
    policy_version: str
    created_at: str  # ISO 8601
    private: str | None = None  # the original text, encrypted (serving.review.service.seal)
    needs_review: bool = False  # the band decision's review outcome (vicas.band)
    under_rating_risk: float | None = None
    decision: dict[str, Any] | None = None  # band, actions, reasons, policy version: as decided, shown as such
    # per image not found in a hash list: its sealed thumbnail and evidence boxes (serving/review/images.py),
    # stored in item_images beside the row
    images: list[dict[str, Any]] = field(default_factory=list)
    # what makes `images`, called by `ready()` in FlagStore.save's worker thread: a thumbnail of a large image
    # takes tens of milliseconds, which the event loop must not wait for (not a field: never serialised)
    make_images: InitVar[Callable[[], list[dict[str, Any]]] | None] = None

    def __post_init__(self, make_images: Callable[[], list[dict[str, Any]]] | None) -> None:
        self._make_images = make_images

    def ready(self) -> FlaggedItem:
        """The item with its thumbnails made (once); FlagStore.save calls it before storing or spooling."""
        if self._make_images is not None:
            self.images = [*self.images, *self._make_images()]
            self._make_images = None
        return self

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("images")
        d["decision"] = json.dumps(self.decision, ensure_ascii=False) if self.decision is not None else None
        d["categories"] = json.dumps(self.categories, ensure_ascii=False)
        d["evidence"] = json.dumps(self.evidence, ensure_ascii=False)
        d["created_at"] = datetime.fromisoformat(self.created_at)
        d["status"] = "open"
        d.update(keys_for(self.band, self.categories))  # the review queue's sort and filter keys
        return d


def domain_of(url: str | None) -> str | None:
    """The normalised host of a URL (punycode, no trailing dot, no www.), or None when it has none."""
    if not url:
        return None
    try:
        return host_of(url) or None
    except UrlError:
        return None


def stored_url(url: str | None) -> str | None:
    """What the store keeps of a URL: its normal form, without query, fragment or personal data in the path
    (None when it is not a URL with a host: the raw text may hold anything)."""
    if not url:
        return None
    try:
        return normalize_url(url)
    except UrlError:
        return None


def parse_flagged(record: dict[str, Any]) -> FlaggedItem:
    """A spooled record back into an item; TypeError or ValueError when it is not one."""
    item = FlaggedItem(**record)
    datetime.fromisoformat(item.created_at)
    if not item.item_key or not isinstance(item.categories, dict):
        raise ValueError("not a flagged item")
    return item


class FlagStore:
    def __init__(self, engine: Engine, spool_dir: Path) -> None:
        self.engine = engine
        self.spool_dir = spool_dir
        self.spool = Spool(spool_dir)

    def _insert(self, items: list[FlaggedItem]) -> int:
        """Insert, ignoring items already stored (same item_key); returns how many were new."""
        if not items:
            return 0
        stmt = insert_ignoring(self.engine, flagged_items, ["item_key"])
        keys = [i.item_key for i in items]
        with self.engine.begin() as conn:
            # rowcount of a multi-row insert is not reported by every driver: count what was already there
            present = set(
                conn.execute(select(flagged_items.c.item_key).where(flagged_items.c.item_key.in_(keys))).scalars()
            )
            conn.execute(stmt, [i.row() for i in items])
            thumbnails = [
                {**img, "boxes": json.dumps(img["boxes"], ensure_ascii=False), "item_key": i.item_key}
                | {"created_at": datetime.fromisoformat(i.created_at)}
                for i in items
                if i.item_key not in present
                for img in i.images
            ]
            if thumbnails:  # in the same transaction: an item is never stored without its thumbnails
                conn.execute(insert_ignoring(self.engine, item_images, ["item_key", "image"]), thumbnails)
        return len(set(keys) - present)

    def _spool(self, items: list[FlaggedItem]) -> None:
        self.spool.append([asdict(i) for i in items])

    def save(self, items: list[FlaggedItem]) -> str:
        """'stored' or 'spooled'. Never raises for a database outage."""
        if not items:
            return "stored"
        items = [i.ready() for i in items]
        try:
            self._insert(items)
            return "stored"
        except (OperationalError, DBAPIError) as e:
            if isinstance(e, IntegrityError):
                raise
            log.warning("database unreachable, %d flagged items spooled: %s", len(items), e.__class__.__name__)
            self._spool(items)
            return "spooled"

    def spooled_count(self) -> int:
        return self.spool.count()

    def flush_spool(self) -> int:
        """Move spooled items into the database; returns how many were new. Safe to call any time, from
        any worker; unreadable lines are set aside (`Spool.rejected`)."""
        try:
            return self.spool.flush(parse_flagged, self._insert)
        except (OperationalError, DBAPIError):
            return 0  # still down: the files stay for the next flush

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(flagged_items.c.id)).all())

    def purge(self, retention_days: int) -> dict[str, int]:
        """Delete what holds people's data once it is older than the retention period: flagged items with
        their image thumbnails, the reviews of deleted items (their notes), appeals (their reasons), reviewers'
        item views and failed-login records (client addresses). Verdicts keep only normalised URLs and the
        audit log only hashes of free text, so they stay. Returns the rows deleted per table (the newer
        tables only when they had any)."""
        cutoff = datetime.now(UTC) - timedelta(days=retention_days)
        with self.engine.begin() as conn:
            items = conn.execute(delete(flagged_items).where(flagged_items.c.created_at < cutoff)).rowcount
            kept = select(flagged_items.c.id)
            kept_keys = select(flagged_items.c.item_key)
            thumbnails = conn.execute(
                delete(item_images).where(
                    or_(item_images.c.created_at < cutoff, item_images.c.item_key.not_in(kept_keys))
                )
            ).rowcount
            gone_reviews = conn.execute(
                delete(reviews).where(or_(reviews.c.created_at < cutoff, reviews.c.item_id.not_in(kept)))
            ).rowcount
            gone_appeals = conn.execute(delete(appeals).where(appeals.c.created_at < cutoff)).rowcount
            views = conn.execute(
                delete(item_views).where(or_(item_views.c.viewed_at < cutoff, item_views.c.item_id.not_in(kept)))
            ).rowcount
            logins = conn.execute(delete(login_throttle).where(login_throttle.c.window_start < cutoff)).rowcount
        counts = {
            "flagged items": int(items or 0),
            "reviews": int(gone_reviews or 0),
            "appeals": int(gone_appeals or 0),
            "login records": int(logins or 0),
        }
        # tables added later (migration 0011) are named when they had rows to delete
        extra = {"image thumbnails": int(thumbnails or 0), "item views": int(views or 0)}
        return counts | {k: n for k, n in extra.items() if n}


def record_verdict(
    engine: Engine,
    url: str,
    band: str,
    source: str,
    content_hash: str | None,
    model_version: str | None,
    policy_version: str | None,
) -> None:
    """Latest verdict per URL (normalised: see serving/urls.py). A model verdict never overwrites a reviewed
    one. Raises UrlError for a URL without a host."""
    url = normalize_url(url)
    domain = host_of(url)
    values = {
        "domain": domain,
        "band": band,
        "source": source,
        "content_hash": content_hash,
        "model_version": model_version,
        "policy_version": policy_version,
        "updated_at": datetime.now(UTC),
    }
    with engine.begin() as conn:
        cond = verdicts.c.url == url
        if source == "model":
            # a model verdict never overwrites a reviewed one, nor lowers a model one: a harmless post at the
            # same URL must not clear the band another item there earned (only a reviewer lowers a band)
            not_higher = [b.value for b in BAND_ORDER if b.rank <= Band(band).rank]
            cond = cond & (verdicts.c.source == "model") & verdicts.c.band.in_(not_higher)
        res = conn.execute(update(verdicts).where(cond).values(**values))
        if res.rowcount == 0:
            exists = conn.execute(select(verdicts.c.url).where(verdicts.c.url == url)).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(verdicts).values(url=url, **values))
                except IntegrityError:
                    pass  # another replica recorded it at the same moment


def lookup_verdict(engine: Engine, url: str | None = None, domain: str | None = None) -> dict[str, Any] | None:
    """By URL, or for a domain the highest band among its URLs and its subdomains' URLs; reviewed verdicts
    take precedence over model ones (a reviewed verdict is a person's decision; among verdicts of one kind
    the strictest stands). URLs and domains are matched in normal form (punycode, no trailing dot, no www.,
    no query); UrlError for one that is not a URL or host name, or for a public suffix such as `com.vn`."""
    with engine.connect() as conn:
        if url:
            q = select(verdicts).where(verdicts.c.url == normalize_url(url))
        else:
            d = normalize_host(domain or "")
            if is_public_suffix(d):
                raise UrlError(f"{d!r} is a public suffix shared by unrelated sites, not a site's domain")
            q = select(verdicts).where(or_(verdicts.c.domain == d, verdicts.c.domain.endswith("." + d)))
        rows = conn.execute(q).mappings().all()
    if not rows:
        return None
    best = max(rows, key=lambda r: (r["source"] == "reviewed", Band(r["band"]).rank, as_utc(r["updated_at"])))
    out = dict(best)
    out["updated_at"] = as_utc(best["updated_at"]).isoformat()
    return out
