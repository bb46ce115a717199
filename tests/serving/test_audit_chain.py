"""The audit chain under concurrency and against someone who can write the database (issue: a partner API
that stays up, item 4): parallel appends never fork it, and a rewrite or cut without the key is caught."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text, update

from serving.db import audit_log, make_engine, migrate
from serving.review import audit
from vicas import cli

pytestmark = pytest.mark.slow
KEY = "audit-key-kept-outside-the-database"


@pytest.fixture
def db(database_url):
    migrate(database_url)
    engine = make_engine(database_url)
    audit.configure(KEY)
    yield engine
    audit.configure(None)
    engine.dispose()


def test_parallel_appends_never_fork_the_chain(db):
    errors: list[str] = []
    start = threading.Barrier(8)

    def reviewer(n: int) -> None:
        start.wait()
        for i in range(10):
            try:
                with db.begin() as conn:
                    audit.append(conn, f"rev{n}", "decide", f"item:{n}-{i}", None, {"i": i})
            except Exception as e:
                errors.append(f"{e.__class__.__name__}: {e}"[:200])

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    result = audit.verify(db, KEY)
    assert result.ok, result.problems[:3]
    assert result.entries == 80 and result.macs_checked == 80


def _rewrite_without_the_key(db) -> None:
    """What someone with database access can do: edit entry 2 and recompute every hash after it."""
    with db.begin() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
        prev = audit.GENESIS
        for row in rows:
            actor = "someone-else" if row["id"] == 2 else row["actor"]
            h = audit._digest(prev, row["ts"], actor, row["action"], row["target"], row["before"], row["after"])
            conn.execute(
                update(audit_log).where(audit_log.c.id == row["id"]).values(actor=actor, prev_hash=prev, hash=h)
            )
            prev = h
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def test_a_recomputed_chain_is_caught_by_the_key_and_the_expected_head(db, database_url, monkeypatch, capsys):
    for i in range(4):
        with db.begin() as conn:
            audit.append(conn, "rev1", "decide", f"item:{i}")
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    monkeypatch.setenv("VICAS_SECRET_KEY", KEY)
    assert cli.main(["audit", "verify"]) == 0
    head = capsys.readouterr().out.strip().rsplit("head ", 1)[1]  # ID:HASH, kept elsewhere
    second = audit.verify(db, KEY)
    assert second.ok and f"{second.head_id}:{second.head}" == head

    _rewrite_without_the_key(db)
    assert audit.verify(db).ok  # the plain chain is fooled
    forged = audit.verify(db, KEY)
    assert not forged.ok and any("HMAC" in p for p in forged.problems)
    assert cli.main(["audit", "verify"]) == 1
    assert cli.main(["audit", "verify", "--expect", head]) == 1  # the kept head no longer matches
    assert "is not the expected" in capsys.readouterr().out


def test_a_cut_off_tail_is_caught_by_the_expected_head(db):
    for i in range(3):
        with db.begin() as conn:
            audit.append(conn, "rev1", "decide", f"item:{i}")
    kept = audit.verify(db, KEY)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": kept.head_id})
    assert audit.verify(db, KEY).ok  # a shorter chain is still a chain
    cut = audit.verify(db, KEY, expect=(kept.head_id, kept.head))
    assert not cut.ok and any("missing" in p for p in cut.problems)
