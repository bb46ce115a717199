"""`vicas keys` and `vicas purge`, and the store's retention, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from serving.db import flagged_items, make_engine, migrate
from serving.keys import count_usage, verify_key
from serving.store import FlaggedItem, FlagStore
from vicas import cli


def test_keys_commands_create_list_revoke(database_url, monkeypatch, capsys):
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    assert cli.main(["keys", "create", "--name", "telco-x", "--scopes", "classify"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("vcs_") and len(key) > 40
    db = make_engine(database_url)
    partner = verify_key(db, key)
    assert partner is not None and partner.scopes == frozenset({"classify"})
    assert cli.main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "telco-x" in listed and key not in listed  # the key itself is never shown again
    assert cli.main(["keys", "create", "--name", "telco-x"]) == 2  # name taken: clear error, no crash
    assert "an active key named" in capsys.readouterr().err
    assert cli.main(["keys", "revoke", "--name", "telco-x"]) == 0
    assert verify_key(db, key) is None
    assert cli.main(["keys", "create", "--name", "y", "--scopes", "everything"]) == 2
    db.dispose()


def test_keys_rotate_with_grace_and_names_reusable_after_revocation(database_url, monkeypatch, capsys):
    """Issue: partner API, item 12: `vicas keys rotate`, a name reusable after revocation, usage per key."""
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    assert cli.main(["keys", "create", "--name", "telco-r", "--scopes", "classify,verdicts"]) == 0
    old = capsys.readouterr().out.strip().splitlines()[-1]
    assert cli.main(["keys", "rotate", "--name", "telco-r", "--grace-minutes", "30"]) == 0
    new = capsys.readouterr().out.strip().splitlines()[-1]
    db = make_engine(database_url)
    rotated, fresh = verify_key(db, old), verify_key(db, new)
    assert rotated is not None and fresh is not None, "both keys work during the grace period"
    assert fresh.scopes == frozenset({"classify", "verdicts"}) and fresh.id != rotated.id
    count_usage(db, rotated.id, 3)
    count_usage(db, fresh.id, 4)
    assert cli.main(["keys", "usage", "--name", "telco-r"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].split() == ["total", "2", "7"]
    assert cli.main(["keys", "rotate", "--name", "telco-r", "--grace-minutes", "0"]) == 0
    newest = capsys.readouterr().out.strip().splitlines()[-1]
    assert verify_key(db, new) is None and verify_key(db, newest) is not None
    assert verify_key(db, old) is not None, "the first rotation's grace period still runs"
    assert cli.main(["keys", "revoke", "--name", "telco-r"]) == 0
    assert verify_key(db, old) is None, "revoking ends a key in its grace period too"
    assert cli.main(["keys", "create", "--name", "telco-r"]) == 0, "a revoked partner's name can be reused"
    assert cli.main(["keys", "rotate", "--name", "nobody"]) == 2
    db.dispose()


def _item(key: str, days_old: int) -> FlaggedItem:
    return FlaggedItem(
        item_key=key,
        content_hash="h" * 64,
        partner=None,
        url=None,
        domain=None,
        band="T18",
        categories={},
        evidence=[],
        text="t",
        model_version="m",
        policy_version="p",
        created_at=(datetime.now(UTC) - timedelta(days=days_old)).isoformat(),
    )


def test_purge_respects_retention(database_url, tmp_path, monkeypatch, capsys):
    migrate(database_url)
    db = make_engine(database_url)
    store = FlagStore(db, tmp_path / "spool")
    store.save([_item("old:0", 400), _item("new:0", 1)])
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    monkeypatch.setenv("VICAS_SPOOL_DIR", str(tmp_path / "spool"))
    assert cli.main(["purge", "--days", "180"]) == 0
    assert "purged 1" in capsys.readouterr().out
    with db.connect() as conn:
        assert [r[0] for r in conn.execute(select(flagged_items.c.item_key))] == ["new:0"]
    db.dispose()


def test_spool_flush_is_idempotent(database_url, tmp_path):
    migrate(database_url)
    down = FlagStore(make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"), tmp_path / "spool")
    assert down.save([_item("r1:0", 0), _item("r1:1", 0)]) == "spooled"
    assert down.spooled_count() == 2
    up = FlagStore(make_engine(database_url), tmp_path / "spool")
    with up.engine.begin() as conn:  # one of them already reached the database before the outage
        conn.execute(insert(flagged_items), [_item("r1:0", 0).row()])
    assert up.flush_spool() == 1
    assert up.flush_spool() == 0
    assert up.count() == 2 and up.spooled_count() == 0


@pytest.mark.parametrize("bad", ["mysql://x", "redis://y"])
def test_settings_refuse_unknown_database_drivers(bad, monkeypatch):
    from pydantic import ValidationError

    from serving.config import Settings

    monkeypatch.setenv("VICAS_DATABASE_URL", bad)
    with pytest.raises(ValidationError, match="sqlite:// or postgresql"):
        Settings()


def test_first_admin_is_created_once(database_url, monkeypatch, capsys):
    from serving.review.accounts import authenticate

    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    assert cli.main(["users", "ensure-admin"]) == 0
    line = capsys.readouterr().out.strip()
    assert "shown once" in line
    password = line.rsplit(" / ", 1)[1]
    db = make_engine(database_url)
    assert authenticate(db, "admin", password).role == "admin"
    assert cli.main(["users", "ensure-admin"]) == 0
    assert "exists already" in capsys.readouterr().out
    db.dispose()
