"""`vicas serve`, `vicas keys ...` and `vicas purge`: registered into the `vicas` command when serving is installed."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from serving.config import Settings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the classification API (settings from VICAS_* environment variables)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="partner API keys: create (shown once), list, revoke")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = ksub.add_parser("create", help="create a key and print it once")
    c.add_argument("--name", required=True, help="partner name, unique")
    c.add_argument("--scopes", default="classify,verdicts", help="comma-separated: classify, verdicts, appeals, admin")
    c.add_argument(
        "--rate-limit", type=int, default=None, help="items per minute (default VICAS_DEFAULT_RATE_LIMIT_PER_MINUTE)"
    )
    c.set_defaults(func=_keys_create)
    ls = ksub.add_parser("list", help="list keys (never the keys themselves)")
    ls.set_defaults(func=_keys_list)
    r = ksub.add_parser("revoke", help="revoke a partner's key")
    r.add_argument("--name", required=True)
    r.set_defaults(func=_keys_revoke)

    p = sub.add_parser("purge", help="delete flagged items older than VICAS_RETENTION_DAYS (or --days)")
    p.add_argument("--days", type=int, default=None)
    p.set_defaults(func=_purge)


def _db() -> tuple[Settings, Engine]:
    from serving.config import Settings
    from serving.db import make_engine, migrate

    settings = Settings()
    migrate(settings.database_url)
    return settings, make_engine(settings.database_url)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers > 1:
        uvicorn.run("serving.main:app", host=args.host, port=args.port, workers=args.workers)
    else:
        from serving.api import create_app

        uvicorn.run(create_app(), host=args.host, port=args.port)
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from serving.keys import create_key

    settings, db = _db()
    key = create_key(
        db,
        args.name,
        {s.strip() for s in args.scopes.split(",") if s.strip()},
        args.rate_limit or settings.default_rate_limit_per_minute,
    )
    print(key)
    print(f"# key for {args.name!r}: store it now, it is not shown again", file=__import__("sys").stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from serving.keys import list_keys

    _, db = _db()
    for row in list_keys(db):
        print(json.dumps(row, default=str))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from serving.keys import revoke_key

    _, db = _db()
    revoke_key(db, args.name)
    print(f"revoked {args.name}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from serving.store import FlagStore

    settings, db = _db()
    n = FlagStore(db, settings.spool_dir).purge(args.days or settings.retention_days)
    print(f"purged {n} flagged items")
    return 0
