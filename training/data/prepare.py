"""DVC stage `prepare`: normalise, validate, deduplicate, split, check leakage, count.

Public sources keep their official train/dev split; the project's own corpus is
split train/dev/test by a seeded shuffle stratified on its main category;
reviewed items go to train. A text that would sit in two splits is removed
from the lower-priority one (dev > test > train, so official dev sets stay
whole) and a final check fails loudly if any text is still shared.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from datasketch import MinHash, MinHashLSH
from tqdm import tqdm

from training.data.adapters import Record
from training.config import PrepareConfig, SplitFractions, load_section
from vicas.normalize import normalize_text
from vicas.taxonomy import CATEGORIES

SPLITS = ("train", "dev", "test")
SPLIT_PRIORITY = {"dev": 0, "test": 1, "train": 2}  # lower wins a contested text


class DataValidationError(ValueError):
    """Prepared data that breaks the schema; the message lists the offending rows."""


class LeakageError(ValueError):
    """The same text sits in two splits."""


@dataclass
class PreparedRecord:
    record: Record
    norm: str

    def to_json(self) -> str:
        d = json.loads(self.record.to_json())
        d["norm"] = self.norm
        return json.dumps(d, ensure_ascii=False)


@dataclass
class PrepareReport:
    dropped_exact: Counter[str] = field(default_factory=Counter)
    dropped_near: Counter[str] = field(default_factory=Counter)
    dropped_leak: Counter[str] = field(default_factory=Counter)
    label_conflicts: Counter[str] = field(default_factory=Counter)


def validate(records: Iterable[Record]) -> None:
    """Schema, label names, severity ranges, non-empty text; collects every problem first."""
    problems: list[str] = []
    for r in records:
        where = f"{r.source}:{r.id}"
        if not r.text or not r.text.strip():
            problems.append(f"{where}: empty text")
        if r.split not in SPLITS:
            problems.append(f"{where}: split {r.split!r} is not one of {SPLITS}")
        for cat, (lo, hi) in r.labels.items():
            if cat not in CATEGORIES:
                problems.append(f"{where}: unknown category {cat!r}")
            elif not 0 <= lo <= hi <= 3:
                problems.append(f"{where}: {cat} range [{lo}, {hi}] is not within 0..3 with lo <= hi")
        for s, e in r.spans or []:
            if not 0 <= s < e <= len(r.text):
                problems.append(f"{where}: span ({s}, {e}) outside a text of length {len(r.text)}")
        if len(problems) >= 50:
            break
    if problems:
        raise DataValidationError("data validation failed:\n  " + "\n  ".join(problems))


def main_category(r: Record) -> str:
    """The category with the highest known severity, or 'clean': the stratum for splitting."""
    best, best_sev = "clean", 0
    for cat in CATEGORIES:
        lo = r.labels.get(cat, (0, 0))[0]
        if lo > best_sev:
            best, best_sev = cat, lo
    return best


def assign_own_splits(records: list[Record], fractions: SplitFractions, seed: int) -> None:
    """Seeded split of records without an official split, stratified by main category."""
    strata: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.split is None:
            strata[main_category(r)].append(r)
    rng = random.Random(seed)
    targets = {"train": fractions.train, "dev": fractions.dev, "test": fractions.test}
    assigned = dict.fromkeys(targets, 0)
    total = 0
    # Walk the strata one after another and give each item to the split furthest below
    # its quota: every stratum is spread over the splits, even a stratum of two items.
    for key in sorted(strata):
        group = sorted(strata[key], key=lambda r: r.id)
        rng.shuffle(group)
        for r in group:
            total += 1
            split = max(targets, key=lambda s: (targets[s] * total - assigned[s], targets[s]))
            assigned[split] += 1
            r.split = split


def _shingles(text: str, k: int = 5) -> set[bytes]:
    t = f" {text} "
    return {t[i : i + k].encode() for i in range(max(1, len(t) - k + 1))}


def minhash(text: str, num_perm: int = 64) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch(list(_shingles(text)))
    return m


def deduplicate(items: list[PreparedRecord], threshold: float, report: PrepareReport) -> list[PreparedRecord]:
    """Drop exact duplicates (same normalised text) and near duplicates (MinHash Jaccard >= threshold).

    Within one source and split only the first copy stays. Across splits the copy
    in the lower-priority split goes. Copies in different sources but the same
    split stay: each carries its own source's annotation.
    """
    order = sorted(range(len(items)), key=lambda i: (SPLIT_PRIORITY[items[i].record.split or "train"], i))
    kept: list[int] = []
    by_text: dict[str, list[int]] = defaultdict(list)
    for i in order:
        it = items[i]
        rec = it.record
        clash = False
        for j in by_text.get(it.norm, []):
            other = items[j].record
            if other.split != rec.split:
                report.dropped_leak[rec.source] += 1
                clash = True
                break
            if other.source == rec.source:
                report.dropped_exact[rec.source] += 1
                if other.labels != rec.labels:
                    report.label_conflicts[rec.source] += 1
                clash = True
                break
        if not clash:
            by_text[it.norm].append(i)
            kept.append(i)

    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    survivors: list[int] = []
    for i in tqdm(kept, desc="near-duplicates", unit=" texts", leave=False, mininterval=2):
        it = items[i]
        mh = minhash(it.norm)
        near = lsh.query(mh)
        drop = False
        for key in sorted(near, key=int):
            other = items[int(key)].record
            if other.split != it.record.split:
                report.dropped_leak[it.record.source] += 1
                drop = True
                break
            if other.source == it.record.source:
                report.dropped_near[it.record.source] += 1
                drop = True
                break
        if not drop:
            lsh.insert(str(i), mh)
            survivors.append(i)
    return [items[i] for i in sorted(survivors)]


def check_leakage(items: list[PreparedRecord]) -> None:
    seen: dict[str, str] = {}
    leaks: list[str] = []
    for it in items:
        split = it.record.split or ""
        prev = seen.setdefault(it.norm, split)
        if prev != split:
            leaks.append(f"{it.record.id} ({split}) also in {prev}: {it.norm[:60]!r}")
    if leaks:
        raise LeakageError(f"{len(leaks)} texts sit in two splits:\n  " + "\n  ".join(leaks[:20]))


def count_table(items: list[PreparedRecord]) -> dict[str, dict[str, dict[str, int]]]:
    """source -> split -> {rows, <category>: positives (severity >= 1), <category>_neg: known absent}."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(Counter))
    for it in items:
        r = it.record
        row = table[r.source][r.split or "?"]
        row["rows"] += 1
        for cat, (lo, hi) in r.labels.items():
            if lo >= 1:
                row[cat] += 1
                row[f"{cat}@{lo}" if lo == hi else f"{cat}@{lo}-{hi}"] += 1
            elif hi == 0:
                row[f"{cat}_neg"] += 1
            elif hi == 1:
                row[f"{cat}_low"] += 1
    return {s: {sp: dict(c) for sp, c in d.items()} for s, d in table.items()}


def counts_markdown(table: dict[str, dict[str, dict[str, int]]]) -> str:
    """Per-source, per-category table: positives (severity >= 1) / known negatives."""
    short = {c: c.replace("_", " ") for c in CATEGORIES}
    head = "| source | split | rows | " + " | ".join(short[c] for c in CATEGORIES) + " |"
    sep = "|" + "---|" * (3 + len(CATEGORIES))
    lines = [
        "Cells: severity >= 1 / absent (0) / at most mild (0-1, the source cannot tell); blank = not annotated.",
        "",
        head,
        sep,
    ]
    for source in sorted(table):
        for split in SPLITS:
            row = table[source].get(split)
            if not row:
                continue
            cells = []
            for c in CATEGORIES:
                pos, neg, low = row.get(c, 0), row.get(f"{c}_neg", 0), row.get(f"{c}_low", 0)
                cells.append(f"{pos}/{neg}/{low}" if pos or neg or low else "")
            lines.append(f"| {source} | {split} | {row['rows']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def source_stats_markdown(source: str, table: dict[str, dict[str, int]]) -> str:
    lines = [f"# {source}: statistics (regenerated by `dvc repro prepare`; do not edit)", ""]
    lines.append("| split | rows | category | severity >= 1 | by severity | absent | at most mild |")
    lines.append("|---|---|---|---|---|---|---|")
    for split in SPLITS:
        row = table.get(split)
        if not row:
            continue
        for c in CATEGORIES:
            pos, neg, low = row.get(c, 0), row.get(f"{c}_neg", 0), row.get(f"{c}_low", 0)
            if not pos and not neg and not low:
                continue
            sev = ", ".join(f"{k.split('@')[1]}: {v}" for k, v in sorted(row.items()) if k.startswith(f"{c}@"))
            lines.append(f"| {split} | {row['rows']} | {c} | {pos} | {sev} | {neg} | {low} |")
    return "\n".join(lines) + "\n"


def load_interim(folder: Path) -> list[Record]:
    records: list[Record] = []
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no *.jsonl in {folder}: run the ingest stage first (dvc repro ingest)")
    for path in files:
        with path.open(encoding="utf-8") as f:
            records.extend(Record.from_json(line) for line in f if line.strip())
    return records


def prepare(records: list[Record], cfg: PrepareConfig) -> tuple[list[PreparedRecord], PrepareReport]:
    assign_own_splits(records, cfg.own_split, cfg.seed)
    validate(records)
    items = [
        PreparedRecord(r, normalize_text(r.text)) for r in tqdm(records, desc="normalise", leave=False, mininterval=2)
    ]
    empty = [it.record.id for it in items if not it.norm]
    if empty:
        raise DataValidationError(f"{len(empty)} texts are empty after normalisation, e.g. {empty[:5]}")
    report = PrepareReport()
    items = deduplicate(items, cfg.near_dup_threshold, report)
    check_leakage(items)
    return items, report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Normalise, validate, deduplicate and split the ingested data.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'prepare')")
    parser.add_argument("--interim", default="data/interim", type=Path, help="ingest stage output folder")
    parser.add_argument("--out", default="data/prepared", type=Path, help="folder for train/dev/test.jsonl")
    parser.add_argument("--stats", default="data_cards/stats", type=Path, help="folder for per-source statistics")
    parser.add_argument("--metrics", default="metrics/data_counts.json", type=Path, help="counts and drops as JSON")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "prepare", PrepareConfig)

    items, report = prepare(load_interim(args.interim), cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with (args.out / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for it in items:
                if it.record.split == split:
                    f.write(it.to_json() + "\n")
    table = count_table(items)
    summary = {
        "counts": table,
        "dropped_exact": dict(report.dropped_exact),
        "dropped_near": dict(report.dropped_near),
        "dropped_cross_split": dict(report.dropped_leak),
        "label_conflicts": dict(report.label_conflicts),
    }
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    md = counts_markdown(table)
    args.stats.mkdir(parents=True, exist_ok=True)
    (args.stats / "counts.md").write_text("# Prepared data: counts per source and split\n\n" + md, encoding="utf-8")
    for source, per_split in table.items():
        (args.stats / f"{source}.md").write_text(source_stats_markdown(source, per_split), encoding="utf-8")
    print(md)
    print("dropped: exact", dict(report.dropped_exact), "near", dict(report.dropped_near))
    print("dropped across splits", dict(report.dropped_leak), "label conflicts", dict(report.label_conflicts))


if __name__ == "__main__":
    main()
