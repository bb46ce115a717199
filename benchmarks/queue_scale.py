"""The review console's queue at scale on PostgreSQL (issue #18 item 3): page, deep page and next item.

Creates a throwaway database on the PostgreSQL server at 127.0.0.1:5432 (trust auth, user postgres),
brings it to the newest schema, fills it with flagged items of a realistic mix (bands, categories, partners,
scores, about half reviewed, a few awaiting a second review, under appeal or marked for review), runs
VACUUM ANALYZE (what autovacuum does to a table at rest), then times the service functions the console
calls, warm, over repeated runs:

1. the first queue page (200 items, most urgent first) with its counts per band and category;
2. a deep page, reached by the keyset cursor of an item far down the queue, with its counts;
3. the next item after an item anywhere in the queue (one query);
4. first pages under each filter the queue page offers;
5. for comparison, the "all" view with its counts grouped over every item, as before queue_counts.

Counts under a filter on the status alone (the queue as it opens, "reviewed", "all") are read from
queue_counts, which triggers keep (migration 0011); under any other filter they are grouped over the items.

Reports the median and p95 in milliseconds beside the 100 ms target, and the plans PostgreSQL chose. The
database is dropped at the end (unless --keep).

    python benchmarks/queue_scale.py --items 200000 --out reports/queue_scale.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text

from serving.db import appeals, flagged_items, make_engine, migrate
from serving.review.service import (
    QueueCursor,
    QueueFilter,
    _queue_conditions,
    _queue_counts,
    get_item,
    load_queue,
    next_item_id,
)
from serving.store import FlaggedItem
from vicas.taxonomy import CATEGORIES

TARGET_MS = 100.0
# (band, flagged categories with severity, share): what a content-rating service flags, roughly
MIX: list[tuple[str, dict[str, int], float]] = [
    ("T13", {"profanity": 1}, 0.16),
    ("T13", {"harassment": 1}, 0.10),
    ("T16", {"violence": 2}, 0.12),
    ("T16", {"gambling": 2}, 0.10),
    ("T16", {"substances": 2}, 0.05),
    ("T16", {"harassment": 2, "personal_data": 1}, 0.06),
    ("T18", {"sexual": 2}, 0.12),
    ("T18", {"violence": 3}, 0.05),
    ("T18", {"scam": 2}, 0.06),
    ("T18", {"hate": 2, "profanity": 1}, 0.04),
    ("K", {"dangerous_acts": 1}, 0.05),
    ("K", {"self_harm": 1}, 0.03),
    ("C", {"gambling": 3, "scam": 2}, 0.03),
    ("C", {"self_harm": 3}, 0.015),
    ("C", {"child_sexual": 3, "sexual": 2}, 0.01),
    ("T18", {"child_sexual": 1, "personal_data": 1}, 0.005),
]
PARTNERS = [("telco-a", 0.4), ("telco-b", 0.25), ("isp-c", 0.15), ("school-d", 0.1), ("app-e", 0.07), ("app-f", 0.03)]
WORDS = ["nội", "dung", "bình", "luận", "bài", "đăng", "trang", "web", "hình", "ảnh", "video", "mày", "tao", "học"]
WORDS += ["sinh", "lớp", "trường", "nhà", "ở", "số", "điện", "thoại"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_item(i: int, n: int, rng: random.Random, start: datetime, span: timedelta) -> FlaggedItem:
    band, sev, _ = rng.choices(MIX, weights=[m[2] for m in MIX])[0]
    strongest = round(rng.betavariate(5, 2), 4)  # scores of flagged categories: mostly sure, a tail unsure
    cats = {c: {"score": round(rng.uniform(0.0, 0.3), 4), "severity": 0} for c in CATEGORIES}
    for c, s in sev.items():
        cats[c] = {"score": max(0.5, round(strongest - rng.uniform(0, 0.1) * (c != next(iter(sev))), 4)), "severity": s}
    body = " ".join(rng.choices(WORDS, k=rng.randint(15, 60)))
    return FlaggedItem(
        item_key=f"bench-{i}:0",
        content_hash=f"{i:064x}",
        partner=rng.choices([p for p, _ in PARTNERS], weights=[w for _, w in PARTNERS])[0],
        url=f"https://site{rng.randrange(5000)}.example/p/{i}" if rng.random() < 0.7 else None,
        domain=None,
        band=band,
        categories=cats,
        evidence=[{"category": next(iter(sev)), "start": 0, "end": 5, "text": body[:5], "score": strongest}],
        text=body,
        model_version="vicas-text@bench",
        policy_version="bench-1",
        created_at=(start + span * (i / n)).isoformat(),  # newest last, as items arrive
        needs_review=rng.random() < 0.08,
        under_rating_risk=round(rng.random() * 0.2, 4),
    )


def fill(url: str, n: int, seed: int, batch: int = 2_000) -> dict[str, int]:
    """n flagged items through FlaggedItem.row() (the insert path's queue keys), in batches of `batch`."""
    engine = make_engine(url)
    rng = random.Random(seed)
    start, span = datetime.now(UTC) - timedelta(days=30), timedelta(days=30)
    stats = {"open": 0, "awaiting_second": 0, "reviewed": 0, "appeals": 0}
    t0 = time.perf_counter()
    for lo in range(0, n, batch):
        rows = []
        for i in range(lo, min(n, lo + batch)):
            item = make_item(i, n, rng, start, span)
            row = item.row() | {"final_band": None, "final_categories": None, "reviewed_at": None}
            age = 1 - i / n  # reviewers get through older items: most old ones are reviewed, few new ones
            if rng.random() < 0.15 + 0.75 * age:
                row.update(status="reviewed", final_band=item.band, reviewed_at=datetime.now(UTC))
                row["final_categories"] = json.dumps({c: s["severity"] for c, s in item.categories.items()})
            elif item.band == "C" and rng.random() < 0.3:
                row["status"] = "awaiting_second"
            stats[row["status"]] += 1
            rows.append(row)
        with engine.begin() as conn:
            ids = conn.execute(insert(flagged_items).returning(flagged_items.c.id), rows).scalars().all()
            appealed = [{"item_id": x, "partner": "telco-a", "reason": "sai", "status": "open"} for x in ids[::200]]
            if appealed:
                conn.execute(insert(appeals), [a | {"url": None, "created_at": datetime.now(UTC)} for a in appealed])
                stats["appeals"] += len(appealed)
        done = min(n, lo + batch)
        if done % 20_000 < batch or done == n:
            rate = done / (time.perf_counter() - t0)
            log(f"filled {done:,}/{n:,} items ({rate:,.0f}/s, about {(n - done) / rate:,.0f} s left)")
    engine.dispose()
    return stats


def timed(fn: Callable[[], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(p95, 2), "runs": runs}


def counted_over_rows(engine: Any, f: QueueFilter) -> Any:
    """A queue page with its counts grouped over the items themselves (the way before queue_counts)."""
    page = load_queue(engine, f, counts=False)
    with engine.connect() as conn:
        return page, _queue_counts(conn, _queue_conditions(f))


def explain(engine: Any, sql: str, params: dict[str, Any]) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), params).scalars().all()
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--items", type=int, default=200_000, help="flagged items to fill in (default: %(default)s)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per measure (default: %(default)s)")
    p.add_argument("--deep", type=float, default=0.8, help="where the deep page starts, as a share of the open queue")
    p.add_argument(
        "--server",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database (default: %(default)s)",
    )
    p.add_argument("--db", default="vicas_queue_bench", help="database to create and drop (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if not args.db.replace("_", "").isalnum():
        p.error("--db: letters, digits and _ only")

    admin = create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
    url = f"{args.server}/{args.db}"
    with admin.connect() as conn:
        server = conn.execute(text("SHOW server_version")).scalar()
        conn.execute(text(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{args.db}"'))
    log(f"database {args.db} created on PostgreSQL {server}")
    result: dict[str, Any] = {
        "items": args.items,
        "runs": args.runs,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.node()}",
        "postgresql": server,
    }
    engine = None
    try:
        migrate(url)
        t = time.perf_counter()
        result["fill"] = fill(url, args.items, args.seed)
        result["fill_s"] = round(time.perf_counter() - t, 1)
        engine = make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            t = time.perf_counter()
            conn.execute(text("VACUUM ANALYZE flagged_items"))
            conn.execute(text("VACUUM ANALYZE appeals"))
            result["vacuum_s"] = round(time.perf_counter() - t, 1)
            size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('flagged_items'))")).scalar()
        log(f"filled {args.items:,} items in {result['fill_s']} s ({result['fill']}); table with indexes: {size}")
        result["table_size"] = size

        open_total = load_queue(engine, QueueFilter(), limit=1).counts["total"]
        with engine.connect() as conn:  # setup only: the cursor of an item deep in the open queue
            deep_id = conn.execute(
                select(flagged_items.c.id)
                .where(flagged_items.c.status.in_(("open", "awaiting_second")))
                .order_by(
                    flagged_items.c.queue_rank,
                    flagged_items.c.confidence,
                    flagged_items.c.created_at,
                    flagged_items.c.id,
                )
                .offset(int(open_total * args.deep))
                .limit(1)
            ).scalar_one()
            sample = (
                conn.execute(select(flagged_items.c.id).order_by(text("random()")).limit(args.runs)).scalars().all()
            )
        deep = QueueCursor.of(get_item(engine, deep_id) or {})
        items = [get_item(engine, i) or {} for i in sample]
        log(
            f"open queue: {open_total:,} items; deep page after item {deep_id} "
            f"(position {int(open_total * args.deep):,})"
        )

        rng = random.Random(args.seed)
        measures: dict[str, Callable[[], Any]] = {
            "first page + counts": lambda: load_queue(engine, QueueFilter()),
            "first page, items only": lambda: load_queue(engine, QueueFilter(), counts=False),
            "deep page (cursor) + counts": lambda: load_queue(engine, QueueFilter(), after=deep),
            "deep page (cursor), items only": lambda: load_queue(engine, QueueFilter(), after=deep, counts=False),
            "next item": lambda: next_item_id(engine, rng.choice(items)),
            "filter band=C": lambda: load_queue(engine, QueueFilter(band="C")),
            "filter band=T16": lambda: load_queue(engine, QueueFilter(band="T16")),
            "filter category=gambling": lambda: load_queue(engine, QueueFilter(category="gambling")),
            "filter category=child_sexual": lambda: load_queue(engine, QueueFilter(category="child_sexual")),
            "filter source=review": lambda: load_queue(engine, QueueFilter(source="review")),
            "filter source=appeal": lambda: load_queue(engine, QueueFilter(source="appeal")),
            "filter max_confidence=0.6": lambda: load_queue(engine, QueueFilter(max_confidence=0.6)),
            "filter partner=app-f": lambda: load_queue(engine, QueueFilter(partner="app-f")),
            "status=reviewed": lambda: load_queue(engine, QueueFilter(status="reviewed")),
            "status=all": lambda: load_queue(engine, QueueFilter(status="all")),
            # the same view's counts as they were made before migration 0011 (over every row), for comparison
            "status=all, counts over the rows": lambda: counted_over_rows(engine, QueueFilter(status="all")),
        }
        result["measures"] = {}
        for name, fn in measures.items():
            r = timed(fn, args.runs)
            r["met"] = r["p95_ms"] < TARGET_MS
            result["measures"][name] = r
            log(
                f"{name:32} median {r['median_ms']:7.2f} ms   p95 {r['p95_ms']:7.2f} ms   "
                f"{'ok' if r['met'] else 'OVER'}"
            )

        order = "queue_rank, confidence, created_at, id"
        cols = "id, band, status, categories, confidence, partner, created_at"
        pending = "status IN ('open', 'awaiting_second')"
        result["plans"] = {
            "first page": explain(
                engine, f"SELECT {cols} FROM flagged_items WHERE {pending} ORDER BY {order} LIMIT 201", {}
            ),
            "deep page": explain(
                engine,
                f"SELECT {cols} FROM flagged_items WHERE {pending} AND ({order}) > (:r, :c, :t, :i) "
                f"ORDER BY {order} LIMIT 201",
                {"r": deep.rank, "c": deep.confidence, "t": deep.created_at, "i": deep.id},
            ),
            "counts": explain(
                engine,
                f"SELECT status, band, category_flags, count(*) FROM flagged_items WHERE {pending} "
                "GROUP BY status, band, category_flags",
                {},
            ),
            "counts, status=all (queue_counts)": explain(
                engine, "SELECT status, band, category_flags, n FROM queue_counts WHERE n > 0", {}
            ),
        }
        for name, plan in result["plans"].items():
            log(f"plan, {name}:\n{plan}")
        met = all(m["met"] for m in result["measures"].values())
        log(f"p95 under {TARGET_MS:.0f} ms for every measure: {'yes' if met else 'no'}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
            log(f"wrote {args.out}")
        return 0
    finally:
        if engine is not None:
            engine.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
            log(f"database {args.db} dropped")
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
