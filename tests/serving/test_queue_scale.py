"""A review queue that scales (issue #18 item 3): the queue is ordered, filtered, counted and paged in SQL
on keys stored with each item, with no cap on the rows it reads. With more than 5,000 open items the
newest severe ones still lead the first page, a keyset cursor pages through every open item exactly once,
and the item page's next-item link follows the queue's order."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import insert, inspect, select, update

from serving.db import appeals, flagged_items, make_engine, migrate
from serving.review.accounts import create_user
from serving.review.service import QueueFilter, get_item, queue
from serving.store import FlaggedItem, FlagStore

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
N_ITEMS = 5_200  # more than the 5,000 rows the queue used to read
N_SEVERE = 40  # among the newest: band C and/or child_sexual
BASE = datetime(2026, 11, 1, tzinfo=UTC)
CATS = ("sexual", "child_sexual", "violence", "harassment", "profanity", "gambling", "scam", "personal_data")
PLAIN = (("T13", "harassment", 1), ("T13", "profanity", 1), ("T16", "gambling", 2), ("T16", "violence", 2))
PLAIN += (("T18", "sexual", 2), ("T18", "violence", 3), ("K", "profanity", 1))
SEVERE = (("C", {"child_sexual": 3, "sexual": 2}), ("C", {"gambling": 3}), ("T18", {"child_sexual": 1}))


def _item(i: int, rng: random.Random) -> FlaggedItem:
    """Item i of the data set: older the smaller i; three items share each timestamp and scores have two
    decimals, so the order's later keys (created_at, id) break ties. The newest N_SEVERE are severe."""
    if i >= N_ITEMS - N_SEVERE:
        band, sev = SEVERE[i % len(SEVERE)]
    else:
        band, cat, s = PLAIN[rng.randrange(len(PLAIN))]
        sev = {cat: s}
        if rng.random() < 0.15:
            sev["personal_data"] = 1
    score = round(rng.uniform(0.5, 0.99), 2)
    return FlaggedItem(
        item_key=f"scale-{i}:0",
        content_hash=f"{i:064d}",
        partner="telco-b" if i % 5 == 0 else "telco-a",
        url=None,
        domain=None,
        band=band,
        categories={c: {"score": score if sev.get(c) else 0.04, "severity": sev.get(c, 0)} for c in CATS},
        evidence=[],
        text=f"nội dung số {i}",
        model_version="vicas-text@test",
        policy_version="p1",
        created_at=(BASE + timedelta(minutes=6 * (i // 3))).isoformat(),
        needs_review=rng.random() < 0.1,
        under_rating_risk=0.1,
    )


def _old_confidence(cats: dict[str, dict[str, float]]) -> float:
    """The queue's confidence as the console computed it in Python before."""
    flagged = [v["score"] for v in cats.values() if v.get("severity", 0) > 0]
    return max(flagged) if flagged else max((v["score"] for v in cats.values()), default=0.0)


def _old_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """The queue's order as the console sorted it in Python before, with the id as the last tie-break."""
    cats = r["cats"]
    return (r["band"] != "C", cats.get("child_sexual", {}).get("severity", 0) == 0, r["conf"], r["created"], r["id"])


def _fill(url: str, tmp_path) -> dict[str, Any]:
    """5,200 items (bulk insert through FlagStore.save), some reviewed, some awaiting a second review, some
    under an open appeal; returns the engine and the data set as the tests expect to find it."""
    migrate(url)
    engine = make_engine(url)
    rng = random.Random(18)
    items = [_item(i, rng) for i in range(N_ITEMS)]
    assert FlagStore(engine, tmp_path / "spool").save(items) == "stored"
    with engine.begin() as conn:
        ids = {k: i for k, i in conn.execute(select(flagged_items.c.item_key, flagged_items.c.id))}
        rows = []
        for i, it in enumerate(items):
            status = "open"
            if i % 40 == 7 and i < N_ITEMS - N_SEVERE:
                status = "reviewed"
            elif i in (N_ITEMS - 1, N_ITEMS - 4):  # newest C items decided once, waiting for four eyes
                status = "awaiting_second"
            rows.append(
                {
                    "id": ids[it.item_key],
                    "band": it.band,
                    "cats": it.categories,
                    "conf": _old_confidence(it.categories),
                    "created": datetime.fromisoformat(it.created_at),
                    "partner": it.partner,
                    "needs_review": it.needs_review,
                    "status": status,
                }
            )
        for status in ("reviewed", "awaiting_second"):
            changed = [r["id"] for r in rows if r["status"] == status]
            conn.execute(update(flagged_items).where(flagged_items.c.id.in_(changed)).values(status=status))
        appealed = [rows[i]["id"] for i in range(3, N_ITEMS, 97)]
        now = datetime.now(UTC)
        conn.execute(
            insert(appeals),
            [
                {"item_id": a, "url": None, "partner": "telco-a", "reason": "sai", "status": "open", "created_at": now}
                for a in appealed
            ]
            + [
                {
                    "item_id": rows[0]["id"],
                    "url": None,
                    "partner": "x",
                    "reason": "r",
                    "status": "upheld",
                    "created_at": now,
                }
            ],
        )
    for r in rows:
        r["appealed"] = r["id"] in set(appealed)
    return {"engine": engine, "rows": rows}


def _expected(rows: list[dict[str, Any]], f: QueueFilter) -> list[dict[str, Any]]:
    """What the queue holds under `f`, in order, computed in Python from the data set."""

    def keep(r: dict[str, Any]) -> bool:
        if f.status == "pending" and r["status"] not in ("open", "awaiting_second"):
            return False
        if f.status == "reviewed" and r["status"] != "reviewed":
            return False
        if f.band and r["band"] != f.band:
            return False
        if f.category and r["cats"].get(f.category, {}).get("severity", 0) <= 0:
            return False
        if f.partner and r["partner"] != f.partner:
            return False
        if f.date_from and r["created"] < datetime.combine(f.date_from, datetime.min.time(), UTC):
            return False
        if f.date_to and r["created"] > datetime.combine(f.date_to, datetime.max.time(), UTC):
            return False
        if f.max_confidence is not None and r["conf"] > f.max_confidence:
            return False
        if f.source == "review" and not r["needs_review"]:
            return False
        return not (f.source == "appeal" and not r["appealed"])

    return sorted((r for r in rows if keep(r)), key=_old_key)


def _counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    band: dict[str, int] = {}
    category: dict[str, int] = {}
    for r in rows:
        band[r["band"]] = band.get(r["band"], 0) + 1
        for c, v in r["cats"].items():
            if v["severity"] > 0:
                category[c] = category.get(c, 0) + 1
    return {"total": len(rows), "band": band, "category": category}


@pytest.fixture
def filled(database_url, tmp_path):
    data = _fill(database_url, tmp_path)
    yield data
    data["engine"].dispose()


def test_newest_severe_items_lead_the_first_page(filled):
    engine, rows = filled["engine"], filled["rows"]
    expected = _expected(rows, QueueFilter())
    assert len(expected) > 5_000
    severe = [r["id"] for r in expected if r["band"] == "C" or r["cats"]["child_sexual"]["severity"] > 0]
    assert len(severe) == N_SEVERE and max(severe) > min(r["id"] for r in rows) + 5_000
    items, counts = queue(engine, QueueFilter())
    assert len(items) == 200
    assert [i["id"] for i in items[:N_SEVERE]] == severe  # the newest, and first: C with child_sexual at the top
    assert [i["id"] for i in items] == [r["id"] for r in expected[:200]]
    assert counts == _counts(expected)  # every open item counted, not the first 5,000


def test_cursor_pages_through_every_open_item_once_in_order(filled):
    from serving.review.service import load_queue

    engine, rows = filled["engine"], filled["rows"]
    expected = [r["id"] for r in _expected(rows, QueueFilter())]
    seen: list[int] = []
    page = load_queue(engine, QueueFilter(), limit=300)
    assert page.counts["total"] == len(expected)
    while True:
        assert len(page.items) <= 300
        seen += [i["id"] for i in page.items]
        if page.next_after is None:
            break
        page = load_queue(engine, QueueFilter(), after=page.next_after, limit=300, counts=False)
    assert seen == expected  # every open item, exactly once, in the queue's order
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "f",
    [
        QueueFilter(band="C"),
        QueueFilter(band="T16"),
        QueueFilter(category="child_sexual"),
        QueueFilter(category="personal_data"),
        QueueFilter(max_confidence=0.61),
        QueueFilter(source="review"),
        QueueFilter(source="appeal"),
        QueueFilter(partner="telco-b"),
        QueueFilter(date_from=date(2026, 11, 3), date_to=date(2026, 11, 4)),
        QueueFilter(band="T18", category="violence", max_confidence=0.8, source="review"),
        QueueFilter(status="reviewed"),
        QueueFilter(status="all"),
        QueueFilter(status="all", category="gambling"),
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in vars(f).items() if v is not None and (k, v) != ("status", "pending")),
)
def test_filters_and_counts_are_computed_over_every_item(filled, f):
    from serving.review.service import QueueCursor, load_queue

    engine, rows = filled["engine"], filled["rows"]
    expected = _expected(rows, f)
    assert expected, "the data set has items for every filter"
    page = load_queue(engine, f, limit=250)
    assert page.counts == _counts(expected)
    seen = [i["id"] for i in page.items]
    while page.next_after is not None:
        cursor = QueueCursor.decode(page.next_after.encode())  # as the page link carries it
        assert cursor == page.next_after
        page = load_queue(engine, f, after=cursor, limit=250, counts=False)
        seen += [i["id"] for i in page.items]
    assert seen == [r["id"] for r in expected]
    assert all("cats" in i and "text" not in i for i in page.items)


def test_next_item_follows_the_queue_order(filled):
    from serving.review.service import next_item_id

    engine, rows = filled["engine"], filled["rows"]
    expected = [r["id"] for r in _expected(rows, QueueFilter())]
    for pos in (0, 1, 39, 40, 41, 2_000, len(expected) - 2):
        assert next_item_id(engine, get_item(engine, expected[pos])) == expected[pos + 1], pos
    assert next_item_id(engine, get_item(engine, expected[-1])) == expected[0]  # wraps
    # a reviewed item keeps its place in the order: the next open one after it
    reviewed = next(r for r in sorted(rows, key=_old_key) if r["status"] == "reviewed")
    after = next(
        r["id"] for r in sorted(rows, key=_old_key) if _old_key(r) > _old_key(reviewed) and r["status"] != "reviewed"
    )
    assert next_item_id(engine, get_item(engine, reviewed["id"])) == after
    # under a filter, and alone in its queue
    t16 = [r["id"] for r in _expected(rows, QueueFilter(band="T16"))]
    assert next_item_id(engine, get_item(engine, t16[3]), QueueFilter(band="T16")) == t16[4]
    with engine.begin() as conn:
        conn.execute(update(flagged_items).where(flagged_items.c.id != expected[0]).values(status="reviewed"))
    assert next_item_id(engine, get_item(engine, expected[0])) is None


# --- through the console, over HTTP ---------------------------------------------------------------


def _login(client: TestClient, user: str) -> None:
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    r = client.post(
        "/console/login",
        data={"username": user, "password": PASSWORD, "csrf": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]


def _ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'class="queue-row" data-id="(\d+)"', page)]


def _next_page(page: str) -> str | None:
    m = re.search(r'<a id="next-page" href="([^"]+)"', page)
    return m.group(1).replace("&amp;", "&") if m else None


def test_console_pages_through_the_whole_queue_and_next_follows_it(tiny_pipeline, filled, database_url, tmp_path):
    from serving.api import create_app
    from serving.config import Settings

    engine, rows = filled["engine"], filled["rows"]
    create_user(engine, "rev1", PASSWORD, "reviewer")
    settings = Settings(model_dir=tiny_pipeline["model"], database_url=database_url, spool_dir=tmp_path / "spool")
    expected = [r["id"] for r in _expected(rows, QueueFilter())]
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        _login(client, "rev1")
        page = client.get("/console/").text
        assert _ids(page) == expected[:200]  # the newest severe items first
        counted = re.search(r'id="counts"><strong>([^<]*)</strong>', page)
        assert counted and int(re.sub(r"\D", "", counted.group(1))) == len(expected)  # every open item counted
        seen, pages, link = _ids(page), 1, _next_page(page)
        while link is not None:
            page = client.get(link).text
            seen += _ids(page)
            pages += 1
            link = _next_page(page)
            assert 'id="first-page" href="/console/"' in page
        assert seen == expected and pages == -(-len(expected) // 200)

        # a filter travels with the cursor
        t16 = [r["id"] for r in _expected(rows, QueueFilter(band="T16", category="violence"))]
        page = client.get("/console/", params={"band": "T16", "category": "violence"}).text
        seen, link = _ids(page), _next_page(page)
        while link is not None:
            assert "band=T16" in link and "category=violence" in link
            page = client.get(link).text
            seen, link = seen + _ids(page), _next_page(page)
        assert seen == t16 and len(t16) > 200

        # the item page's next link (key n) is the next item in the queue's order
        for pos in (0, 150, 199, 200, 3_000):
            item = client.get(f"/console/items/{expected[pos]}").text
            assert f'id="next-link" href="/console/items/{expected[pos + 1]}"' in item, pos

        assert client.get("/console/", params={"after": "not-a-cursor"}).status_code == 422


# --- stored keys: at insert, and filled in by the migration ---------------------------------------


def test_the_queue_keys_are_stored_with_every_item(database_url, tmp_path):
    from serving.queue_keys import keys_for

    migrate(database_url)
    engine = make_engine(database_url)
    rng = random.Random(3)
    items = [_item(i, rng) for i in range(N_ITEMS - 6, N_ITEMS)]
    FlagStore(engine, tmp_path / "spool").save(items[:4])
    with engine.begin() as conn:  # a plain insert that leaves the keys out gets them from the column defaults
        keys = ("queue_rank", "confidence", "category_flags")
        conn.execute(insert(flagged_items), [{k: v for k, v in i.row().items() if k not in keys} for i in items[4:]])
    with engine.connect() as conn:
        stored = conn.execute(select(flagged_items).order_by(flagged_items.c.id)).mappings().all()
    assert [r["item_key"] for r in stored] == [i.item_key for i in items]
    for row, item in zip(stored, items, strict=True):
        k = keys_for(item.band, item.categories)
        rank = 2 * (item.band != "C") + (item.categories["child_sexual"]["severity"] == 0)
        assert (row["queue_rank"], row["confidence"], row["category_flags"]) == (
            rank,
            _old_confidence(item.categories),
            k["category_flags"],
        )
    assert {r["queue_rank"] for r in stored} >= {0, 1}
    assert stored[0]["category_flags"].startswith(",") and stored[0]["category_flags"].endswith(",")
    engine.dispose()


def _migrate_to(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from serving.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def test_the_migration_fills_in_the_keys_of_existing_items(database_url):
    _migrate_to(database_url, "0007")
    engine = make_engine(database_url)
    old_items = sa.table(  # flagged_items as revision 0007 left it
        "flagged_items",
        *(sa.column(n) for n in ("item_key", "content_hash", "band", "categories", "evidence", "text")),
        *(sa.column(n) for n in ("model_version", "policy_version", "status", "created_at")),
    )
    rng = random.Random(7)
    items = [_item(i, rng) for i in range(2_500)] + [_item(i, rng) for i in range(N_ITEMS - 9, N_ITEMS)]
    fields = ("item_key", "content_hash", "band", "categories", "evidence", "text", "model_version", "policy_version")
    with engine.begin() as conn:
        conn.execute(
            insert(old_items),
            [
                {k: v for k, v in i.row().items() if k in fields}
                | {"status": "open", "created_at": datetime.fromisoformat(i.created_at)}
                for i in items
            ],
        )
    migrate(database_url)  # 0008: add the columns, fill them in batches, index them
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("flagged_items")}
    assert {"ix_flagged_items_queue_open", "ix_flagged_items_queue", "ix_flagged_items_queue_counts"} <= indexes
    with engine.connect() as conn:
        stored = {
            r["item_key"]: r
            for r in conn.execute(
                select(flagged_items.c.item_key, flagged_items.c.queue_rank, flagged_items.c.confidence)
            ).mappings()
        }
    for i in items:
        rank = 2 * (i.band != "C") + (i.categories["child_sexual"]["severity"] == 0)
        assert (stored[i.item_key]["queue_rank"], stored[i.item_key]["confidence"]) == (
            rank,
            _old_confidence(i.categories),
        )
    top, _ = queue(engine, QueueFilter(), limit=9)
    assert {r["band"] for r in top[:6]} == {"C"} and top[0]["cats"]["child_sexual"]["severity"] == 3
    engine.dispose()


def test_status_counts_are_kept_by_triggers_through_every_write(database_url, tmp_path):
    """The queue's counts under no filter but its status come from queue_counts (migration 0011), kept by
    triggers: filled from the items already there, then right after inserts, decisions, four eyes, appeals,
    a spool flush and a purge, whoever writes (the store, the services, plain SQL)."""
    from serving.db import queue_counts
    from serving.review.service import _queue_conditions, _queue_counts, decide_appeal, load_queue, record_decision
    from serving.review.service import create_appeal as appeal
    from vicas.policy import load_policy

    def check() -> None:
        with engine.connect() as conn:
            for status in ("pending", "reviewed", "all"):
                f = QueueFilter(status=status)
                scanned = _queue_counts(conn, _queue_conditions(f))  # counted over the rows
                assert load_queue(engine, f, limit=1).counts == scanned, status

    _migrate_to(database_url, "0010")
    engine = make_engine(database_url)
    rng = random.Random(11)
    old = [_item(i, rng) for i in range(60)] + [_item(i, rng) for i in range(N_ITEMS - 6, N_ITEMS)]
    with engine.begin() as conn:  # items stored before 0011 (plain SQL: no trigger yet)
        conn.execute(insert(flagged_items), [i.row() | {"status": "open"} for i in old[:50]])
        conn.execute(insert(flagged_items), [i.row() | {"status": "reviewed"} for i in old[50:]])
    migrate(database_url)  # 0011: the table, its triggers, and the counts of the rows already there
    with engine.connect() as conn:
        assert sum(conn.execute(select(queue_counts.c.n)).scalars()) == len(old)
    check()
    store = FlagStore(engine, tmp_path / "spool")
    store.save([_item(i, rng) for i in range(200, 240)])
    check()
    policy = load_policy()
    reviewer = create_user(engine, "r1", PASSWORD, "reviewer")
    supervisor = create_user(engine, "s1", PASSWORD, "supervisor")
    with engine.connect() as conn:
        ids = dict(conn.execute(select(flagged_items.c.item_key, flagged_items.c.id)).all())
    record_decision(engine, ids["scale-1:0"], reviewer, "false_positive", policy)
    record_decision(engine, ids[f"scale-{N_ITEMS - 1}:0"], reviewer, "confirm", policy)  # C: awaiting a second
    check()
    record_decision(engine, ids[f"scale-{N_ITEMS - 1}:0"], supervisor, "second_confirm", policy)
    a = appeal(engine, "telco-a", "đây là tin tức", item_id=ids["scale-1:0"])
    decide_appeal(engine, a, supervisor, "overturned", "", "C")  # back to awaiting a second review
    check()
    store._spool([_item(i, rng) for i in range(300, 310)])  # stored while the database was down, then flushed
    assert store.flush_spool() == 10
    with engine.begin() as conn:  # plain SQL too: a status set by hand, items deleted by hand
        conn.execute(update(flagged_items).where(flagged_items.c.id == ids["scale-2:0"]).values(status="reviewed"))
        conn.execute(sa.delete(flagged_items).where(flagged_items.c.id == ids["scale-3:0"]))
    check()
    with engine.begin() as conn:
        conn.execute(update(flagged_items).values(created_at=datetime.now(UTC) - timedelta(days=400)))
    store.purge(180)
    check()
    assert load_queue(engine, QueueFilter(status="all"), limit=1).counts["total"] == 0
    # and the status-only counts are read from that table, not counted over the items
    with engine.begin() as conn:
        conn.execute(sa.delete(queue_counts))
        conn.execute(insert(queue_counts).values(status="open", band="T13", category_flags=",profanity,", n=7))
    assert load_queue(engine, QueueFilter(), limit=1).counts["total"] == 7
    assert load_queue(engine, QueueFilter(band="T13"), limit=1).counts["total"] == 0  # filtered: counted
    engine.dispose()
