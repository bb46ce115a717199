"""`vicas serve`, `vicas keys ...` and `vicas purge`: registered into the `vicas` command when serving is installed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
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

    keys = sub.add_parser("keys", help="partner API keys: create (shown once), list, revoke, rotate, usage")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = ksub.add_parser("create", help="create a key and print it once")
    c.add_argument("--name", required=True, help="partner name, unique among active keys")
    c.add_argument(
        "--scopes", default="classify,verdicts", help="comma-separated: classify, verdicts, appeals, blocklists"
    )
    c.add_argument(
        "--rate-limit", type=int, default=None, help="items per minute (default VICAS_DEFAULT_RATE_LIMIT_PER_MINUTE)"
    )
    c.set_defaults(func=_keys_create)
    ls = ksub.add_parser("list", help="list keys (never the keys themselves)")
    ls.set_defaults(func=_keys_list)
    r = ksub.add_parser("revoke", help="revoke a partner's key")
    r.add_argument("--name", required=True)
    r.set_defaults(func=_keys_revoke)
    ro = ksub.add_parser(
        "rotate",
        help="issue a new key for a partner (same scopes and limit) and print it once; the old key stops "
        "working after --grace-minutes",
    )
    ro.add_argument("--name", required=True)
    ro.add_argument(
        "--grace-minutes", type=int, default=60, help="how long the old key keeps working (default 60; 0: at once)"
    )
    ro.set_defaults(func=_keys_rotate)
    us = ksub.add_parser("usage", help="requests and items per day for a partner, over all its keys")
    us.add_argument("--name", required=True)
    us.add_argument("--days", type=int, default=31, help="how many days back (default 31)")
    us.set_defaults(func=_keys_usage)

    models = sub.add_parser("models", help="which model every API worker serves (an operator's switch)")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ma = msub.add_parser(
        "activate",
        help="verify an exported model folder under VICAS_MODELS_ROOT, load it once, then have every worker "
        "of every replica swap to it within seconds (a refused folder changes nothing)",
    )
    ma.add_argument("--dir", type=Path, required=True, help="the exported model folder (with manifest.json)")
    ma.set_defaults(func=_models_activate)
    mst = msub.add_parser("status", help="the folder operators activated last, if any")
    mst.set_defaults(func=_models_status)

    users = sub.add_parser("users", help="review console accounts")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    u = usub.add_parser("create", help="create an account (the first admin, for instance); password from stdin")
    u.add_argument("--username", required=True)
    u.add_argument("--role", required=True, choices=["reviewer", "supervisor", "admin"])
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.set_defaults(func=_users_create)

    ea = usub.add_parser(
        "ensure-admin", help="create the first admin account if there is none; prints its password once"
    )
    ea.add_argument("--username", default="admin")
    ea.set_defaults(func=_users_ensure_admin)
    ul = usub.add_parser("list", help="list accounts: role, disabled, locked (never a password or its hash)")
    ul.set_defaults(func=_users_list)
    ud = usub.add_parser("disable", help="disable an account: no login, and its console sessions end at once")
    ud.add_argument("--username", required=True)
    ud.set_defaults(func=_users_disable, disabled=True)
    ue = usub.add_parser("enable", help="enable a disabled account again")
    ue.add_argument("--username", required=True)
    ue.set_defaults(func=_users_disable, disabled=False)
    ur = usub.add_parser("set-role", help="change an account's role; its console sessions end")
    ur.add_argument("--username", required=True)
    ur.add_argument("--role", required=True, choices=["reviewer", "supervisor", "admin"])
    ur.set_defaults(func=_users_set_role)
    up = usub.add_parser(
        "reset-password",
        help="set a new random password and print it once; clears the lockout and ends the account's sessions",
    )
    up.add_argument("--username", required=True)
    up.set_defaults(func=_users_reset_password)

    audit = sub.add_parser("audit", help="the console's hash-chained audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    v = asub.add_parser(
        "verify",
        help="recompute the hash chain and (with VICAS_SECRET_KEY) each entry's HMAC; exit 1 if any entry was "
        "edited, inserted or deleted",
    )
    v.add_argument(
        "--expect",
        metavar="ID:HASH",
        help="an entry's id and hash printed by an earlier verify and kept outside the database: it must still "
        "be there unchanged (catches a rewritten or cut-off chain)",
    )
    v.set_defaults(func=_audit_verify)

    review = sub.add_parser("review", help="reviewed items")
    rsub = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    e = rsub.add_parser("export", help="write reviewed items to VICAS_REVIEWED_EXPORT_DIR for the next dvc repro")
    e.set_defaults(func=_review_export)

    b = sub.add_parser(
        "bulk",
        help="score a JSONL/Parquet crawl on Ray Data (resumable, one ONNX session per actor)",
        description="Reads {id, text | html | image} rows (image: a file path), writes part-NNNNN.jsonl per "
        "block with the same fields as "
        "`vicas classify`; blocks already written are skipped, so an interrupted run resumes. Uses a local Ray "
        "unless RAY_ADDRESS names a cluster.",
    )
    b.add_argument("--input", type=Path, required=True, help="JSONL or Parquet")
    b.add_argument("--output", type=Path, required=True, help="folder for part-NNNNN.jsonl files")
    b.add_argument("--model", type=Path, default=None, help="exported model folder (default $VICAS_MODEL_DIR)")
    b.add_argument("--policy", type=Path, default=None)
    b.add_argument("--workers", type=int, default=1, help="Ray actors, one ONNX session each")
    b.add_argument("--block-size", type=int, default=1000, help="rows per block (the unit of resumption)")
    b.add_argument(
        "--image-model",
        type=Path,
        default=None,
        help="exported image model folder (default: $VICAS_IMAGE_MODEL_DIR or models/image, when it exists)",
    )
    b.add_argument("--no-ocr", action="store_true", help="do not read text in images")
    b.add_argument("--no-open-nsfw", action="store_true", help="do not read nudity in photos with open_nsfw")
    b.add_argument("--no-imagenet-cues", action="store_true", help="do not use the image model's ImageNet cues")
    b.add_argument(
        "--conversation-model",
        type=Path,
        default=None,
        help="conversation model folder for rows with a 'conversation' (default: $VICAS_CONVERSATION_MODEL_DIR or "
        "models/conversation, when it exists)",
    )
    b.add_argument(
        "--hash-db",
        default=None,
        help="database holding the hash lists of known abuse material (`vicas hashes import`), read by every "
        "actor; images found in them are child_sexual 3, band C, not read further (default: $VICAS_DATABASE_URL)",
    )
    b.add_argument("--no-hash-lists", action="store_true", help="do not match images against hash lists")
    b.set_defaults(func=_bulk)

    p = sub.add_parser(
        "purge",
        help="delete flagged items with their image thumbnails, their reviews, appeals, reviewers' item views and "
        "failed-login records older than VICAS_RETENTION_DAYS (or --days)",
    )
    p.add_argument("--days", type=int, default=None)
    p.set_defaults(func=_purge)

    hashes = sub.add_parser(
        "hashes",
        help="hash lists of known child sexual abuse material (IWF, NCMEC, an HMA bank): import, list, remove; "
        "every API worker reloads them within seconds",
    )
    hsub = hashes.add_subparsers(dest="hashes_command", required=True, metavar="ACTION")
    hi = hsub.add_parser(
        "import",
        help="import a list file, replacing the list of the same name; a malformed line imports nothing",
        description="CSV with a header naming at least `hash` and `type` (pdq: 64 hex digits, md5: 32, sha256: 64; "
        "other columns are ignored), or one hash a line with --type. Any malformed line is reported with its line "
        "number and nothing is imported.",
    )
    hi.add_argument("--file", type=Path, required=True, help="the list as the authority sent it")
    hi.add_argument("--name", required=True, help="the list's name, e.g. iwf-hashlist (an import replaces it)")
    hi.add_argument("--version", required=True, help="the list's version or date as the authority gives it")
    hi.add_argument("--source", required=True, help="who provided it, e.g. 'IWF' or 'NCMEC via HMA'")
    hi.add_argument(
        "--type", choices=["pdq", "md5", "sha256"], default=None, help="the type of every hash without its own"
    )
    hi.set_defaults(func=_hashes_import)
    hl = hsub.add_parser("list", help="the lists: name, version, source, import time, counts (never a hash)")
    hl.set_defaults(func=_hashes_list)
    hr = hsub.add_parser("remove", help="remove a list and its hashes")
    hr.add_argument("--name", required=True)
    hr.set_defaults(func=_hashes_remove)
    hm = hsub.add_parser("matches", help="matches per day, partner and list (counts only)")
    hm.add_argument("--days", type=int, default=31, help="how many days back (default 31)")
    hm.set_defaults(func=_hashes_matches)


def _db() -> tuple[Settings, Engine]:
    from serving.config import Settings
    from serving.db import make_engine, migrate
    from serving.review import audit

    settings = Settings()
    migrate(settings.database_url)
    audit.configure(settings.secret_key)  # console actions from the shell are signed like the app's
    return settings, make_engine(settings.database_url)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.config import Settings

    if args.workers > 1 and not Settings().secret_key:
        # each worker would make up its own session key: a console login would work on one worker only,
        # and sealed personal data could not be revealed by another
        print(
            "refusing to start several workers without VICAS_SECRET_KEY: set it (make serve writes one to .env) "
            "so that every worker signs sessions and seals personal data with the same key",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1:
        _metrics_folder()
        uvicorn.run("serving.main:app", host=args.host, port=args.port, workers=args.workers)
    else:
        from serving.api import create_app

        uvicorn.run(create_app(), host=args.host, port=args.port)
    return 0


def _metrics_folder() -> None:
    """Prometheus multiprocess mode for the workers: a fresh folder where every worker writes its values, so
    that a scrape answered by any worker counts them all. Set before the workers import prometheus_client."""
    import tempfile

    from serving.metrics import MULTIPROC_ENV

    folder = os.environ.get(MULTIPROC_ENV)
    if folder:  # the operator's folder: values of an earlier run would be added to this one's
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="vicas-metrics-")


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


def _models_activate(args: argparse.Namespace) -> int:
    import getpass

    from serving.model_switch import activate

    settings, db = _db()
    version = activate(db, settings.models_root, args.dir, f"cli:{getpass.getuser()}")
    print(f"activated {version} from {args.dir.resolve()}: every worker switches within a few seconds")
    return 0


def _models_status(args: argparse.Namespace) -> int:
    from serving.model_switch import requested

    settings, db = _db()
    folder = requested(db)
    print(f"activated: {folder}" if folder else f"none activated: workers serve VICAS_MODEL_DIR ({settings.model_dir})")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from serving.keys import rotate_key

    _, db = _db()
    key = rotate_key(db, args.name, args.grace_minutes)
    print(key)
    print(
        f"# new key for {args.name!r}: store it now, it is not shown again; the old key works for "
        f"{args.grace_minutes} more minutes",
        file=sys.stderr,
    )
    return 0


def _keys_usage(args: argparse.Namespace) -> int:
    from serving.keys import usage_by_name

    _, db = _db()
    rows = usage_by_name(db, args.name, args.days)
    print(f"{'day':<12}{'requests':>10}{'items':>10}")
    for row in rows:
        print(f"{row['day']!s:<12}{row['requests']!s:>10}{row['items']!s:>10}")
    total_req = sum(int(str(r["requests"])) for r in rows)
    total_items = sum(int(str(r["items"])) for r in rows)
    print(f"{'total':<12}{total_req:>10}{total_items:>10}")
    return 0


def _hashes_import(args: argparse.Namespace) -> int:
    from serving.hashes import import_list
    from vicas.hashes import HashListError, parse_hash_list

    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        print(f"cannot read {args.file}: {e}", file=sys.stderr)
        return 2
    try:
        entries = parse_hash_list(text, args.type)
    except HashListError as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 2
    _, db = _db()
    try:
        done = import_list(db, entries, args.name, args.version, args.source)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    replaced = f", replacing version {done.replaced}" if done.replaced is not None else ""
    print(f"imported {done.count} hashes as {done.name} version {done.version}{replaced}")
    return 0


def _hashes_list(args: argparse.Namespace) -> int:
    from serving.hashes import list_lists

    _, db = _db()
    for row in list_lists(db):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _hashes_remove(args: argparse.Namespace) -> int:
    from serving.hashes import remove_list

    _, db = _db()
    if not remove_list(db, args.name):
        print(f"no hash list named {args.name!r}", file=sys.stderr)
        return 1
    print(f"removed {args.name}")
    return 0


def _hashes_matches(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from serving.hashes import match_counts

    _, db = _db()
    for row in match_counts(db, datetime.now(UTC) - timedelta(days=args.days)):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _purge(args: argparse.Namespace) -> int:
    from serving.store import FlagStore

    settings, db = _db()
    counts = FlagStore(db, settings.spool_dir).purge(args.days or settings.retention_days)
    print("purged " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


def _users_create(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from serving.review.accounts import create_user

    _, db = _db()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    user = create_user(db, args.username, password, args.role)
    print(f"created {user.role} {user.username}")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from serving.review.audit import verify

    settings, db = _db()
    expect = None
    if args.expect:
        ident, _, digest = args.expect.partition(":")
        if not ident.isdigit() or len(digest) != 64:
            print(f"--expect must be ID:HASH as printed by an earlier verify, got {args.expect!r}", file=sys.stderr)
            return 2
        expect = (int(ident), digest)
    result = verify(db, settings.secret_key, expect)
    for p in result.problems:
        print(p)
    macs = (
        f", {result.macs_checked} HMACs checked" if settings.secret_key else ", HMACs not checked (no VICAS_SECRET_KEY)"
    )
    print(
        f"{result.entries} entries, chain {'intact' if result.ok else 'BROKEN'}{macs}, "
        f"head {result.head_id}:{result.head}"
    )
    return 0 if result.ok else 1


def _review_export(args: argparse.Namespace) -> int:
    from serving.review.service import export_reviewed

    settings, db = _db()
    path, n = export_reviewed(db, settings.reviewed_export_dir)
    print(f"exported {n} reviewed items to {path}")
    return 0


def _users_ensure_admin(args: argparse.Namespace) -> int:
    import secrets

    from sqlalchemy import select

    from serving.db import users
    from serving.review.accounts import create_user

    _, db = _db()
    with db.connect() as conn:
        if conn.execute(select(users.c.id).where(users.c.role == "admin")).first() is not None:
            print("an admin account exists already")
            return 0
    password = secrets.token_urlsafe(15)
    create_user(db, args.username, password, "admin")
    print(f"first admin account for the review console (shown once): {args.username} / {password}")
    return 0


def _cli_actor() -> str:
    """Who ran a `vicas users` command, for the audit log: the operating-system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (some containers)
        return f"cli:uid-{os.getuid()}"


def _users_list(args: argparse.Namespace) -> int:
    from serving.review.accounts import list_users

    _, db = _db()
    for row in list_users(db):
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    from serving.review.accounts import set_disabled

    _, db = _db()
    set_disabled(db, args.username, args.disabled, _cli_actor())
    print(f"{'disabled' if args.disabled else 'enabled'} {args.username}")
    return 0


def _users_set_role(args: argparse.Namespace) -> int:
    from serving.review.accounts import set_role

    _, db = _db()
    set_role(db, args.username, args.role, _cli_actor())
    print(f"{args.username} is now {args.role}; their console sessions have ended")
    return 0


def _users_reset_password(args: argparse.Namespace) -> int:
    from serving.review.accounts import reset_password

    _, db = _db()
    password = reset_password(db, args.username, _cli_actor())
    print(f"new password for the review console (shown once): {args.username} / {password}")
    return 0


def _bulk(args: argparse.Namespace) -> int:
    from serving.bulk import BulkJob, run

    model = args.model or Path(os.environ.get("VICAS_MODEL_DIR", "models/text"))
    from vicas.cli import conversation_model_dir, image_model_dir

    job = BulkJob(
        args.input,
        args.output,
        model,
        args.policy,
        args.block_size,
        args.workers,
        image_model=image_model_dir(args.image_model),
        ocr=not args.no_ocr,
        open_nsfw=not args.no_open_nsfw,
        imagenet_cues=not args.no_imagenet_cues,
        conversation_model=conversation_model_dir(args.conversation_model),
        hash_db=None if args.no_hash_lists else (args.hash_db or os.environ.get("VICAS_DATABASE_URL")),
    )
    if job.hash_db is None and not args.no_hash_lists:
        print("note: images are not matched against hash lists: set --hash-db or VICAS_DATABASE_URL", file=sys.stderr)
    print(json.dumps(run(job)))
    return 0
