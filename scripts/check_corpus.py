#!/usr/bin/env python3
"""Check an authored corpus file: JSON, fields, categories and values, unique ids, duplicates.

Usage: python3 scripts/check_corpus.py data/own/corpus/FILE.jsonl [...]
Needs only the repository (vicas.taxonomy) and the standard library. Exit 1 when a file has a problem.
Near duplicates: character 5-gram Jaccard >= 0.5 within the file (the corpus QC stage's measure, corpus-wide).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's vicas package
from vicas.taxonomy import check_severity

KINDS = {"positive", "hard_negative", "clean"}
STYLES = {"standard", "no_diacritics", "teencode", "obfuscated", "mixed_en", "emoji_heavy"}


def shingles(text: str, k: int = 5) -> set[str]:
    t = f" {' '.join(text.lower().split())} "
    return {t[i : i + k] for i in range(max(1, len(t) - k + 1))}


def check(path: Path) -> list[str]:
    problems: list[str] = []
    ids: set[str] = set()
    texts: list[tuple[str, set[str]]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: not JSON ({e.msg})")
            continue
        for key in ("id", "text", "labels", "kind", "register", "style"):
            if key not in item:
                problems.append(f"line {n}: missing {key!r}")
        if item.get("id") in ids:
            problems.append(f"line {n}: duplicate id {item.get('id')}")
        ids.add(item.get("id"))
        if item.get("kind") not in KINDS:
            problems.append(f"line {n}: kind {item.get('kind')!r} not in {sorted(KINDS)}")
        if item.get("style") not in STYLES:
            problems.append(f"line {n}: style {item.get('style')!r} not in {sorted(STYLES)}")
        labels = item.get("labels", {})
        if not isinstance(labels, dict):
            problems.append(f"line {n}: labels must be an object")
            labels = {}
        for cat, sev in labels.items():
            try:
                check_severity(cat, sev)
            except ValueError as e:
                problems.append(f"line {n}: {e}")
        text = str(item.get("text", "")).strip()
        if not text:
            problems.append(f"line {n}: empty text")
            continue
        sh = shingles(text)
        for other_id, other in texts:
            inter = len(sh & other)
            if inter and inter / len(sh | other) >= 0.5:
                problems.append(f"line {n}: near duplicate of {other_id}")
                break
        texts.append((str(item.get("id")), sh))
    return [f"{path}: {p}" for p in problems]


def main() -> int:
    problems = [p for arg in sys.argv[1:] for p in check(Path(arg))]
    print("\n".join(problems[:200]) if problems else f"ok: {len(sys.argv) - 1} file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
