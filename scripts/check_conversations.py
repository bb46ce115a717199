"""Check authored conversation files against data/own/briefs/conversations.md; exit 1 on any problem.

Usage: python scripts/check_conversations.py data/own/conversations/*.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from vicas.conversation import STAGES

REGISTERS = {"game_chat", "social", "messaging", "class_group"}
ROLES = {"child", "teen", "adult", "adult_stranger", "parent", "teacher", "relative", "coach", "peer"}
NEGATIVE_TYPES = {
    "teacher_student",
    "relative",
    "parent_child",
    "coach_student",
    "peer_flirting",
    "peer_friends",
    "game_trading",
    "adult_romance",
    "bullying",
    "scam_not_grooming",
    "customer_service",
    "tutoring",
    "lost_child",
}


def problems_of(row: dict, where: str) -> list[str]:
    out: list[str] = []
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not 6 <= len(msgs) <= 30:
        return [f"{where}: 6 to 30 messages needed"]
    senders = set((row.get("participants") or {}).keys())
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not str(m.get("text", "")).strip():
            out.append(f"{where}: message {i} has no text")
        elif m.get("sender") not in senders:
            out.append(f"{where}: message {i} sender {m.get('sender')!r} is not a participant")
        elif not isinstance(m.get("minutes"), int | float):
            out.append(f"{where}: message {i} has no minutes")
    for pid, p in (row.get("participants") or {}).items():
        if p.get("role") not in ROLES:
            out.append(f"{where}: participant {pid} role {p.get('role')!r}")
    if row.get("register") not in REGISTERS:
        out.append(f"{where}: register {row.get('register')!r}")
    kind = str(row.get("kind", ""))
    stages = row.get("stages") or {}
    if set(stages) != set(STAGES):
        out.append(f"{where}: stages must list exactly {STAGES}")
    evidence = [i for s in STAGES for i in stages.get(s, [])]
    if any(not isinstance(i, int) or not 0 <= i < len(msgs) for i in evidence):
        out.append(f"{where}: a stage points outside the messages")
    labels = row.get("labels") or {}
    if kind in ("grooming", "sextortion"):
        if not evidence:
            out.append(f"{where}: a {kind} conversation needs stage evidence")
        if labels.get("child_sexual") != 3:
            out.append(f"{where}: a {kind} conversation is child_sexual 3")
        flag = row.get("first_flag")
        if not isinstance(flag, int) or not 0 <= flag < len(msgs):
            out.append(f"{where}: first_flag must be a message index")
        elif evidence and flag < min(evidence):
            out.append(f"{where}: first_flag {flag} comes before the first evidence {min(evidence)}")
    elif kind.startswith("negative:"):
        if kind.removeprefix("negative:") not in NEGATIVE_TYPES:
            out.append(f"{where}: unknown negative type {kind}")
        if evidence or row.get("first_flag") is not None or labels.get("child_sexual"):
            out.append(f"{where}: a negative has no stages, no first_flag and no child_sexual")
    else:
        out.append(f"{where}: kind {kind!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    problems: list[str] = []
    ids: Counter[str] = Counter()
    openings: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    stage_counts: Counter[str] = Counter()
    for path in args.files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: not JSON ({e})")
                continue
            ids[str(row.get("id"))] += 1
            problems += problems_of(row, where)
            msgs = row.get("messages") or []
            openings[" | ".join(str(m.get("text", "")) for m in msgs[:3])] += 1
            kinds[str(row.get("kind", "")).split(":")[0]] += 1
            for s in STAGES:
                if (row.get("stages") or {}).get(s):
                    stage_counts[s] += 1
    problems += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    problems += [f"duplicate opening ({c}x): {o[:80]}" for o, c in openings.items() if c > 1]
    for p in problems[:200]:
        print(p)
    print(f"{sum(ids.values())} conversations: {dict(kinds)}; conversations reaching each stage: {dict(stage_counts)}")
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
