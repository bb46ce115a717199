"""The `vicas` command: one entry point for the contract tools (and later serving)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from vicas.normalize import normalize
from vicas.policy import PolicyError, decide, load_policy, taxonomy_document


def _cmd_taxonomy(args: argparse.Namespace) -> int:
    print(json.dumps(taxonomy_document(load_policy(args.policy)), ensure_ascii=False, indent=2))
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


def _model_dir(arg: Path | None) -> Path:
    import os

    return arg or Path(os.environ.get("VICAS_MODEL_DIR", "models/text"))


class InputLineError(ValueError):
    def __init__(self, message: str, item_id: object = None) -> None:
        super().__init__(message)
        self.item_id = item_id


def parse_input_line(line: str) -> tuple[object, str, int | None]:
    """One JSONL input line -> (id, text, audience_age); InputLineError says what is wrong."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputLineError(f"not valid JSON: {e.msg}") from e
    if not isinstance(item, dict):
        raise InputLineError("each line must be a JSON object")
    item_id = item.get("id")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputLineError("'text' must be a non-empty string", item_id)
    age = item.get("audience_age")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 150):
        raise InputLineError("'audience_age' must be an integer 0-150", item_id)
    return item_id, text, age


def _cmd_classify(args: argparse.Namespace) -> int:
    """JSONL in, JSONL out; a bad line gets an error line with its id and the rest still runs."""
    from vicas.engine import TextEngine
    from vicas.result import build_result

    engine = TextEngine(_model_dir(args.model))
    policy = load_policy(args.policy)
    inp = sys.stdin if str(args.input) == "-" else args.input.open(encoding="utf-8")
    out = sys.stdout if str(args.output) == "-" else args.output.open("w", encoding="utf-8")
    errors = 0
    pending: list[tuple[object, str, int | None]] = []

    def flush() -> None:
        preds = engine.classify([t for _, t, _ in pending])
        for (item_id, _, age), pred in zip(pending, preds, strict=True):
            res = build_result(pred, policy, engine.version, age)
            out.write(json.dumps({"id": item_id, **res.model_dump(mode="json")}, ensure_ascii=False) + "\n")
        pending.clear()

    for lineno, line in enumerate(inp, start=1):
        if not line.strip():
            continue
        try:
            item_id, text, age = parse_input_line(line)
        except InputLineError as e:
            errors += 1
            out.write(json.dumps({"id": e.item_id, "line": lineno, "error": str(e)}, ensure_ascii=False) + "\n")
            continue
        pending.append((lineno if item_id is None else item_id, text, age))
        if len(pending) >= args.batch_size:
            flush()
    if pending:
        flush()
    if out is not sys.stdout:
        out.close()
    if errors:
        print(f"{errors} input lines had errors (see their 'error' field in the output)", file=sys.stderr)
    return 1 if errors else 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from vicas.benchmarks import BENCHMARKS
    from vicas.engine import TextEngine

    bench = BENCHMARKS[args.name]
    value = bench.run(TextEngine(_model_dir(args.model)), args.file)
    print(f"{args.name} {bench.metric} {value:.4f}")
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

    p = sub.add_parser(
        "classify",
        help="classify JSONL lines {id, text[, audience_age]} with the exported model",
        description='Reads JSONL lines {"id": ..., "text": ...} and writes one result line per input: '
        "id, band, categories (score, severity), evidence spans, actions, reasons, model and policy versions. "
        "A bad line gets an output line with its 'error' and the run goes on.",
    )
    p.add_argument("--input", type=Path, required=True, help="input JSONL ('-' for stdin)")
    p.add_argument("--output", type=Path, required=True, help="output JSONL ('-' for stdout)")
    p.add_argument(
        "--model", type=Path, default=None, help="exported model folder (default: $VICAS_MODEL_DIR or models/text)"
    )
    p.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the packaged one)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=_cmd_classify)

    from vicas.benchmarks import BENCHMARKS

    p = sub.add_parser(
        "benchmark",
        help="a public dataset's published metric on a file in its native format",
        description="Prints the metric; the last line is 'NAME METRIC VALUE'. Formats: see vicas/benchmarks.py.",
    )
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("--file", type=Path, required=True, help="CSV in the dataset's native format")
    p.add_argument("--model", type=Path, default=None, help="exported model folder")
    p.set_defaults(func=_cmd_benchmark)

    # Other packages of the distribution (serving) add their commands through an entry point, so the
    # contract package never imports them.
    from importlib.metadata import entry_points

    for ep in entry_points(group="vicas.commands"):
        try:
            ep.load()(sub)
        except ImportError:  # that part's extra is not installed
            continue

    p = sub.add_parser("normalize", help="show the normalised and diacritics-free views of texts (args or stdin)")
    p.add_argument("text", nargs="*")
    p.set_defaults(func=_cmd_normalize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (PolicyError, ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
