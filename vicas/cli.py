"""The `vicas` command: one entry point for the contract tools (and later serving)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from vicas.normalize import normalize
from vicas.policy import PolicyError, decide, load_policy
from vicas.taxonomy import ALLOWED_SEVERITIES, BAND_ORDER, CATEGORIES, CATEGORY_DESCRIPTIONS


def _cmd_taxonomy(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    out = {
        "bands": [b.value for b in BAND_ORDER],
        "categories": {
            c: {
                "description": CATEGORY_DESCRIPTIONS[c],
                "severities": sorted(ALLOWED_SEVERITIES[c]),
                "bands": {str(s): policy.bands[c][s].value for s in (1, 2, 3)},
            }
            for c in CATEGORIES
        },
        "policy_version": policy.version,
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _cmd_policy_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    print(f"ok: {args.file} is a valid policy, version {policy.version}")
    return 0


def _cmd_decide(args: argparse.Namespace) -> int:
    severities: dict[str, int] = {}
    for item in args.severity:
        name, _, value = item.partition("=")
        if not value.isdigit():
            raise SystemExit(f"expected CATEGORY=SEVERITY (e.g. self_harm=2), got {item!r}")
        severities[name] = int(value)
    decision = decide(severities, load_policy(args.policy), audience_age=args.age)
    print(decision.model_dump_json(indent=2))
    return 0


def _cmd_normalize(args: argparse.Namespace) -> int:
    texts = args.text or [line.rstrip("\n") for line in sys.stdin]
    for text in texts:
        n = normalize(text)
        print(json.dumps({"original": text, "text": n.text, "folded": n.folded}, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vicas",
        description="Vietnamese content age rating and harm classification (label contract tools).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("taxonomy", help="print bands, categories, severities and the policy's bands as JSON")
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged default policy)")
    p.set_defaults(func=_cmd_taxonomy)

    p = sub.add_parser("policy-check", help="validate a policy YAML file and exit non-zero if it is unusable")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_cmd_policy_check)

    p = sub.add_parser("decide", help="apply the policy to severities, e.g. `vicas decide self_harm=2 --age 12`")
    p.add_argument("severity", nargs="*", help="CATEGORY=SEVERITY pairs (0-3)")
    p.add_argument("--age", type=int, default=None, help="viewer age for the audience decision")
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged one)")
    p.set_defaults(func=_cmd_decide)

    p = sub.add_parser("normalize", help="show the normalised and diacritics-free views of texts (args or stdin)")
    p.add_argument("text", nargs="*")
    p.set_defaults(func=_cmd_normalize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (PolicyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
