"""Blind second labelling of authored conversations, and the agreement between the two labellings.

    python scripts/conversation_agreement.py sample --out /tmp/blind.jsonl --n 600
        a seeded sample, half grooming or sextortion and half negatives, without kind, stages, first_flag or
        labels (what the second labeller sees)
    python scripts/conversation_agreement.py score --second /tmp/second.jsonl \
        --out data/own/agreement/conversations.json
        Cohen's kappa for "grooming or sextortion" and for each stage's presence, and the first_flag offsets

The second labeller writes one line per conversation: {"id", "kind", "stages", "first_flag"} as in
data/own/briefs/conversations.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from vicas.conversation import STAGES

FOLDER = Path("data/own/conversations")
HIDDEN = ("kind", "stages", "first_flag", "labels", "notes")


def load(folder: Path = FOLDER) -> dict[str, dict]:
    rows = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row
    return rows


def harmful(row: dict) -> bool:
    return str(row.get("kind")) in ("grooming", "sextortion")


def sample(args: argparse.Namespace) -> int:
    rows = load()
    pos = sorted(i for i, r in rows.items() if harmful(r))
    neg = sorted(i for i, r in rows.items() if not harmful(r))
    rng = random.Random(args.seed)
    chosen = rng.sample(pos, min(len(pos), args.n // 2)) + rng.sample(neg, min(len(neg), args.n // 2))
    rng.shuffle(chosen)
    with args.out.open("w", encoding="utf-8") as f:
        for i in chosen:
            f.write(json.dumps({k: v for k, v in rows[i].items() if k not in HIDDEN}, ensure_ascii=False) + "\n")
    print(f"{len(chosen)} conversations written to {args.out} ({sum(harmful(rows[i]) for i in chosen)} harmful)")
    return 0


def score(args: argparse.Namespace) -> int:
    rows = load()
    second = {}
    for line in args.second.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            second[r["id"]] = r
    ids = sorted(i for i in second if i in rows)
    first_h = [harmful(rows[i]) for i in ids]
    second_h = [str(second[i].get("kind")) in ("grooming", "sextortion") for i in ids]
    report: dict[str, object] = {
        "conversations": len(ids),
        "harmful_kappa": round(float(cohen_kappa_score(first_h, second_h)), 3),
        "harmful_agreement": round(sum(a == b for a, b in zip(first_h, second_h, strict=True)) / len(ids), 4),
        "disagreements": [i for i, a, b in zip(ids, first_h, second_h, strict=True) if a != b],
    }
    stage_kappa = {}
    for s in STAGES:
        a = [bool((rows[i].get("stages") or {}).get(s)) for i in ids]
        b = [bool((second[i].get("stages") or {}).get(s)) for i in ids]
        stage_kappa[s] = round(float(cohen_kappa_score(a, b)), 3) if len(set(a + b)) > 1 else None
    report["stage_presence_kappa"] = stage_kappa
    both = [i for i in ids if all(isinstance(r[i].get("first_flag"), int) for r in (rows, second))]
    offsets = [second[i]["first_flag"] - rows[i]["first_flag"] for i in both if harmful(rows[i])]
    if offsets:
        report["first_flag_offset"] = {
            "median": statistics.median(offsets),
            "mean_abs": round(statistics.fmean(abs(o) for o in offsets), 2),
            "within_2_messages": round(sum(abs(o) <= 2 for o in offsets) / len(offsets), 3),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "disagreements"}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write a blind sample for the second labeller")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--n", type=int, default=600)
    s.add_argument("--seed", type=int, default=19)
    s.set_defaults(func=sample)
    c = sub.add_parser("score", help="agreement between the authored labels and a second labelling")
    c.add_argument("--second", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.set_defaults(func=score)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
