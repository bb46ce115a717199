"""The spool under crashes and several workers (issue: a partner API that stays up): torn lines are set
aside, the flush loop survives errors, and with workers killed mid-append and mid-flush every item a
worker was told is safe reaches the database exactly once."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from serving.db import flagged_items, make_engine, migrate
from serving.store import FlaggedItem, FlagStore

DOWN = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # refused at once: the database is "down"


def _item(key: str) -> FlaggedItem:
    return FlaggedItem(
        item_key=key,
        content_hash="0" * 64,
        partner="telco-a",
        url=None,
        domain=None,
        band="T16",
        categories={"harassment": {"score": 0.9, "severity": 2}},
        evidence=[],
        text="đồ ngốc",
        model_version="m",
        policy_version="p",
        created_at=datetime.now(UTC).isoformat(),
    )


def test_a_torn_line_is_set_aside_and_the_rest_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    down = FlagStore(make_engine(DOWN), tmp_path / "spool")
    assert down.save([_item("a:0"), _item("a:1")]) == "spooled"
    with down.spool.pending_path.open("a", encoding="utf-8") as f:  # a crash in the middle of an append
        f.write('{"item_key": "a:2", "content_ha')
    assert down.save([_item("a:3")]) == "spooled"
    up = FlagStore(make_engine(url), tmp_path / "spool")
    assert up.flush_spool() == 3
    assert up.count() == 3 and up.spooled_count() == 0
    assert up.spool.rejected() == 1
    assert up.flush_spool() == 0


def test_the_flush_loop_survives_an_error() -> None:
    from serving.api import Metrics, _maintenance_loop, flush_once

    class FlakyStore:
        def __init__(self) -> None:
            self.calls = 0

        def spooled_count(self) -> int:
            return 1

        def flush_spool(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise FileNotFoundError("flushing-1.jsonl")  # what two racing flushers used to raise
            return 1

    store = FlakyStore()

    async def run() -> None:
        metrics = Metrics()
        step = ("spool flush", lambda: flush_once(store, metrics))  # type: ignore[arg-type]
        task = asyncio.create_task(_maintenance_loop([step], every=0.01))
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(run())
    assert store.calls >= 2, "the loop died with the first error"


def _appender(spool: str, acks: str, prefix: str, n: int) -> None:
    store = FlagStore(make_engine(DOWN), Path(spool))
    with open(acks, "a", encoding="utf-8") as ack:
        for i in range(n):
            keys = [f"{prefix}:{i}:{j}" for j in range(3)]
            assert store.save([_item(k) for k in keys]) == "spooled"
            ack.write("".join(k + "\n" for k in keys))  # acknowledged to the partner only now
            ack.flush()
            os.fsync(ack.fileno())


def _flusher(spool: str, url: str) -> None:
    store = FlagStore(make_engine(url), Path(spool))
    while True:
        store.flush_spool()
        time.sleep(0.005)


@pytest.mark.slow
def test_workers_killed_mid_append_and_mid_flush_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    spool, acks = tmp_path / "spool", tmp_path / "acks"
    acks.mkdir()
    ctx = mp.get_context("fork")
    rng = random.Random(7)
    deadline = time.time() + 20
    # the first worker has far more to append than it will get the time for: it is killed mid-append as soon
    # as it has acknowledged a few items, however fast this machine's disk is
    appenders = [
        ctx.Process(target=_appender, args=(str(spool), str(acks / f"w{w}.txt"), f"w{w}", 20_000 if w == 0 else 400))
        for w in range(3)
    ]
    flushers = [ctx.Process(target=_flusher, args=(str(spool), url)) for _ in range(2)]
    for p in appenders + flushers:
        p.start()
    first_acks = acks / "w0.txt"
    while time.time() < deadline and (not first_acks.exists() or first_acks.read_text().count("\n") < 9):
        time.sleep(0.005)
    killed = 0
    while any(p.is_alive() for p in appenders) and time.time() < deadline:
        time.sleep(rng.uniform(0.05, 0.2))
        victim = rng.choice(flushers)  # kill a flusher mid-flush and start another
        assert victim.is_alive(), f"a flusher died on its own (exit code {victim.exitcode})"
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        flushers[flushers.index(victim)] = replacement = ctx.Process(target=_flusher, args=(str(spool), url))
        replacement.start()
        if killed < 1 and appenders[0].is_alive():  # and one worker mid-append
            os.kill(appenders[0].pid, signal.SIGKILL)
            killed += 1
    assert killed == 1, "the worker finished before it could be killed: give it more items"
    for p in appenders:
        p.join(timeout=max(1.0, deadline - time.time()))
        assert not p.is_alive(), "an appender did not finish in time"
    for p in flushers:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    store = FlagStore(make_engine(url), spool)
    store.flush_spool()
    acked = [line for f in acks.glob("*.txt") for line in f.read_text().split()]
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(select(flagged_items.c.item_key))]
        total = conn.execute(select(func.count()).select_from(flagged_items)).scalar_one()
    assert len(acked) > 1000
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged items lost, e.g. {sorted(missing)[:3]}"
    assert total == len(set(stored))  # each once
    assert store.spooled_count() == 0
    # whatever a crash tore was set aside, never half-stored
    for f in spool.glob("rejected-*.jsonl"):
        for line in f.read_text().splitlines():
            with pytest.raises(ValueError):
                json.loads(line)
