#!/usr/bin/env python3
"""Check a labeller's output file against its input batch: same ids in the same order, valid labels.

Usage: python3 scripts/check_labels.py data/labelling/first/batch_007.jsonl [...]
Needs only the repository (vicas.taxonomy) and the standard library. Exit 1 when a file has a problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's vicas package
from vicas.taxonomy import check_severity


def check(path: Path) -> list[str]:
    batch = path.parent.parent / "batches" / path.name
    if not batch.exists():
        return [f"{path}: no input batch {batch}"]
    want = [json.loads(line)["id"] for line in batch.read_text(encoding="utf-8").splitlines() if line.strip()]
    problems: list[str] = []
    got: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: not JSON ({e.msg})")
            continue
        got.append(str(item.get("id")))
        labels = item.get("labels")
        if not isinstance(labels, dict):
            problems.append(f"line {n}: 'labels' must be an object")
            continue
        for cat, sev in labels.items():
            try:
                check_severity(cat, sev)
            except ValueError as e:
                problems.append(f"line {n}: {e}")
    if got != want:
        missing = [i for i in want if i not in set(got)]
        extra = [i for i in got if i not in set(want)]
        problems.append(
            f"ids differ from the batch: {len(got)} lines for {len(want)} inputs; "
            f"missing {missing[:5]}, extra {extra[:5]}" + ("" if missing or extra else " (order differs)")
        )
    return [f"{path}: {p}" for p in problems]


def main() -> int:
    problems = [p for arg in sys.argv[1:] for p in check(Path(arg))]
    print("\n".join(problems) if problems else f"ok: {len(sys.argv) - 1} file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
