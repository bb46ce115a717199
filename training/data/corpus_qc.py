"""DVC stage `corpus_qc`: quality checks of the project's own corpus.

Counts per category and severity against the targets, near-duplicate pairs,
lexical diversity per category (distinct n-grams, so one template with swapped
words shows up), style and register spread, and the agreement of an independent
second labelling (Cohen's kappa per category). The stage fails when a target
is missed, so a weak corpus cannot flow silently into training.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasketch import MinHashLSH
from sklearn.metrics import cohen_kappa_score

from training.data.adapters import read_labelled_jsonl
from training.config import CorpusQCConfig, load_section
from training.data.prepare import _shingles, minhash
from vicas.normalize import normalize_text
from vicas.taxonomy import ALLOWED_SEVERITIES, CATEGORIES

_WORD = re.compile(r"\w+")


@dataclass
class Item:
    id: str
    text: str
    norm: str
    labels: dict[str, int]
    kind: str
    style: str
    register: str


def load_corpus(folder: Path) -> list[Item]:
    items: list[Item] = []
    for path in sorted(folder.glob("*.jsonl")):
        for rec in read_labelled_jsonl(path, "own"):
            items.append(
                Item(
                    id=rec.id,
                    text=rec.text,
                    norm=normalize_text(rec.text),
                    labels={c: lo for c, (lo, _) in rec.labels.items()},
                    kind=str(rec.meta.get("kind", "")),
                    style=str(rec.meta.get("style", "")),
                    register=str(rec.meta.get("register", "")),
                )
            )
    return items


def jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / max(1, len(sa | sb))


def near_duplicate_pairs(items: list[Item], threshold: float) -> list[tuple[str, str, float]]:
    """Pairs whose character 5-gram Jaccard is >= threshold (MinHash candidates, exact check)."""
    lsh = MinHashLSH(threshold=threshold * 0.8, num_perm=64)
    pairs: list[tuple[str, str, float]] = []
    for i, it in enumerate(items):
        mh = minhash(it.norm)
        for key in sorted(lsh.query(mh), key=int):
            other = items[int(key)]
            sim = jaccard(it.norm, other.norm)
            if sim >= threshold:
                pairs.append((other.id, it.id, round(sim, 3)))
        lsh.insert(str(i), mh)
    return pairs


def distinct_ngrams(texts: list[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the texts' words (1.0 = no n-gram repeats)."""
    grams: list[tuple[str, ...]] = []
    for t in texts:
        words = _WORD.findall(t)
        grams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def template_share(texts: list[str], n: int = 4, overlap: float = 0.5) -> float:
    """Share of texts with at least `overlap` of their word n-grams also in one other text of the set."""
    grams = [set(zip(*(w[i:] for i in range(n)), strict=False)) for w in (_WORD.findall(t) for t in texts)]
    index: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for i, g in enumerate(grams):
        for x in g:
            index[x].add(i)
    templated = 0
    for i, g in enumerate(grams):
        if not g:
            continue
        shared: Counter[int] = Counter()
        for x in g:
            for j in index[x]:
                if j != i:
                    shared[j] += 1
        if shared and shared.most_common(1)[0][1] / len(g) >= overlap:
            templated += 1
    return templated / max(1, len(texts))


def count_table(items: list[Item]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for c in CATEGORIES:
        row: dict[str, int] = Counter()
        for it in items:
            sev = it.labels.get(c, 0)
            if sev:
                row[f"sev{sev}"] += 1
                row["positives"] += 1
            if it.kind == "hard_negative" and sev <= 1 and _hard_negative_for(it, c):
                row["hard_negatives"] += 1
        table[c] = dict(row)
    return table


def _hard_negative_for(it: Item, category: str) -> bool:
    """A hard negative counts for the categories its id prefix targets (the authoring shard; round 2 ids
    are `r2-<shard>-NNNN`)."""
    parts = it.id.split("-")
    shard = f"r2-{parts[1]}" if parts[0] == "r2" and len(parts) > 2 else parts[0]
    return category in SHARD_CATEGORIES.get(shard, ())


SHARD_CATEGORIES: dict[str, tuple[str, ...]] = {
    "sx": ("sexual", "child_sexual"),
    "vd": ("violence", "dangerous_acts"),
    "ss": ("self_harm", "substances"),
    "hh": ("hate", "harassment"),
    "pg": ("profanity", "gambling"),
    "sp": ("scam", "personal_data"),
    "cl": ("violence",),
    # round 2: registers where children are (data/own/briefs/authoring_round2.md)
    "r2-cp": ("child_sexual", "personal_data"),
    "r2-sd": ("self_harm", "dangerous_acts"),
    "r2-hp": ("hate", "profanity", "harassment"),
    "r2-gs": ("gambling", "scam"),
    "r2-ssv": ("sexual", "substances", "violence"),
    "r2-hn": tuple(CATEGORIES),
}


def agreement(
    first_labels: dict[str, dict[str, int]], second: dict[str, dict[str, int]]
) -> dict[str, dict[str, float]]:
    """Cohen's kappa per category between two labellings of the same items (binary presence and severity)."""
    ids = [i for i in second if i in first_labels]
    out: dict[str, dict[str, float]] = {}
    for c in CATEGORIES:
        first = [first_labels[i].get(c, 0) for i in ids]
        other = [second[i].get(c, 0) for i in ids]
        b1, b2 = [int(x > 0) for x in first], [int(x > 0) for x in other]
        agree = sum(x == y for x, y in zip(b1, b2, strict=True)) / max(1, len(ids))
        kappa = cohen_kappa_score(b1, b2) if len(set(b1) | set(b2)) > 1 else 1.0
        weighted = cohen_kappa_score(first, other, weights="quadratic") if len(set(first) | set(other)) > 1 else 1.0
        out[c] = {
            "n": len(ids),
            "positives_first": sum(b1),
            "positives_second": sum(b2),
            "agreement": round(agree, 3),
            "kappa": round(float(kappa), 3),
            "kappa_severity_quadratic": round(float(weighted), 3),
        }
    return out


def agreement_sample(items: list[Item], per_category: int, clean: int, seed: int) -> list[Item]:
    """A stratified random sample: `per_category` items whose main category is each category, plus clean ones."""
    rng = random.Random(seed)
    strata: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        main = max(CATEGORIES, key=lambda c: (it.labels.get(c, 0), -CATEGORIES.index(c)))
        strata[main if it.labels.get(main, 0) else f"none:{it.kind}"].append(it)
    sample: list[Item] = []
    for key in sorted(strata):
        group = sorted(strata[key], key=lambda x: x.id)
        k = per_category if key in CATEGORIES else clean // 2
        sample.extend(rng.sample(group, min(k, len(group))))
    rng.shuffle(sample)
    return sample


def check_targets(items: list[Item], table: dict[str, dict[str, int]], cfg: CorpusQCConfig) -> list[str]:
    problems = []
    if len(items) < cfg.min_total:
        problems.append(f"{len(items)} items, target {cfg.min_total}")
    hard = sum(1 for it in items if it.kind == "hard_negative")
    if hard < cfg.min_hard_negatives_total:
        problems.append(f"{hard} hard negatives in all, target {cfg.min_hard_negatives_total}")
    clean = sum(1 for it in items if it.kind == "clean" and not any(it.labels.values()))
    if clean < cfg.min_clean:
        problems.append(f"{clean} clean items, target {cfg.min_clean}")
    for c in CATEGORIES:
        row = table[c]
        if row.get("positives", 0) < cfg.min_positives:
            problems.append(f"{c}: {row.get('positives', 0)} positives, target {cfg.min_positives}")
        if row.get("hard_negatives", 0) < cfg.min_hard_negatives:
            problems.append(f"{c}: {row.get('hard_negatives', 0)} hard negatives, target {cfg.min_hard_negatives}")
        for sev in sorted(ALLOWED_SEVERITIES[c] - {0}):
            if row.get(f"sev{sev}", 0) == 0:
                problems.append(f"{c}: no item at severity {sev}")
    return problems


def report_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Own corpus: quality report (regenerated by `dvc repro corpus_qc`; do not edit)", ""]
    lines += [
        f"Items: {summary['items']}. Clean: {summary['clean']}. "
        f"With two or more categories: {summary['multi_label']} "
        f"({summary['multi_label_share_of_positives']:.0%} of items with any harm). "
        f"Non-standard typing (no diacritics, teencode, obfuscated): {summary['nonstandard_share']:.0%}.",
        "",
    ]
    lines += [
        "## Counts per category and severity",
        "",
        "| category | positives | sev 1 | sev 2 | sev 3 | hard negatives | distinct-2 | distinct-3 | templated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CATEGORIES:
        r, d = summary["counts"][c], summary["diversity"][c]
        lines.append(
            f"| {c} | {r.get('positives', 0)} | {r.get('sev1', 0)} | {r.get('sev2', 0)} | {r.get('sev3', 0)} | "
            f"{r.get('hard_negatives', 0)} | {d['distinct_2']:.3f} | {d['distinct_3']:.3f} | {d['templated']:.1%} |"
        )
    lines += [
        "",
        "distinct-n: distinct word n-grams / all word n-grams over the category's positives; "
        "templated: share of positives with half or more of their word 4-grams shared with one other item.",
        "",
    ]
    lines += [
        "## Near duplicates",
        "",
        f"Pairs with character 5-gram Jaccard >= {summary['near_dup_threshold']}: "
        f"{len(summary['near_duplicates'])} ({summary['near_dup_rate']:.2%} of items).",
        "",
    ]
    for a, b, s in summary["near_duplicates"][:20]:
        lines.append(f"- {a} ~ {b}: {s}")
    lines += ["", "## Style and register", ""]
    lines.append("| style | items |\n|---|---|")
    lines += [f"| {k} | {v} |" for k, v in sorted(summary["styles"].items())]
    lines.append("\n| register | items |\n|---|---|")
    lines += [f"| {k} | {v} |" for k, v in sorted(summary["registers"].items())]
    if summary.get("agreement"):
        lines += [
            "",
            "## Second labelling agreement",
            "",
            f"{next(iter(summary['agreement'].values()))['n']} items labelled independently "
            "(see data_cards/own_corpus.md for who and how); "
            f"{summary.get('disagreeing_items', 0)} items differed in at least one category and were adjudicated. "
            "Agreement of the two independent labellings, before adjudication:",
            "",
            "| category | first + | second + | raw agreement | Cohen's kappa (present) | weighted kappa (severity) |",
            "|---|---|---|---|---|---|",
        ]
        for c, a in summary["agreement"].items():
            lines.append(
                f"| {c} | {a['positives_first']} | {a['positives_second']} | {a['agreement']:.3f} | "
                f"{a['kappa']:.3f} | {a['kappa_severity_quadratic']:.3f} |"
            )
        after = summary.get("agreement_after_adjudication", {})
        if after:
            lines += [
                "",
                "Kappa (present) of the adjudicated corpus against the second labelling, for reference: "
                + ", ".join(f"{c} {a['kappa']:.2f}" for c, a in after.items())
                + ".",
            ]
    return "\n".join(lines) + "\n"


def run_qc(
    items: list[Item],
    cfg: CorpusQCConfig,
    second: dict[str, dict[str, int]] | None,
    first: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """`first`: the corpus labels of the sample as they were when the second labeller saw it (before
    adjudication); agreement is measured on those, and again on the adjudicated corpus for reference."""
    table = count_table(items)
    diversity = {}
    for c in CATEGORIES:
        texts = [it.norm for it in items if it.labels.get(c, 0)]
        diversity[c] = {
            "distinct_2": round(distinct_ngrams(texts, 2), 4),
            "distinct_3": round(distinct_ngrams(texts, 3), 4),
            "templated": round(template_share(texts), 4),
        }
    pairs = near_duplicate_pairs(items, cfg.near_dup_threshold)
    harmful = [it for it in items if any(it.labels.values())]
    multi = sum(1 for it in harmful if sum(1 for v in it.labels.values() if v) >= 2)
    summary: dict[str, Any] = {
        "items": len(items),
        "clean": sum(1 for it in items if it.kind == "clean" and not any(it.labels.values())),
        "multi_label": multi,
        "multi_label_share_of_positives": multi / max(1, len(harmful)),
        "nonstandard_share": sum(1 for it in items if it.style in ("no_diacritics", "teencode", "obfuscated"))
        / max(1, len(items)),
        "counts": table,
        "diversity": diversity,
        "near_dup_threshold": cfg.near_dup_threshold,
        "near_duplicates": pairs,
        "near_dup_rate": len({b for _, b, _ in pairs}) / max(1, len(items)),
        "styles": dict(Counter(it.style for it in items)),
        "registers": dict(Counter(it.register for it in items)),
        "target_problems": check_targets(items, table, cfg),
    }
    if second:
        current = {it.id: it.labels for it in items}
        summary["agreement"] = agreement(first or current, second)
        summary["agreement_after_adjudication"] = agreement(current, second)
        summary["disagreeing_items"] = sum(
            1
            for i in second
            if i in (first or current) and {k: v for k, v in (first or current)[i].items() if v} != second[i]
        )
        low = [c for c, a in summary["agreement"].items() if a["kappa"] < cfg.agreement_min_kappa]
        summary["kappa_problems"] = low
    return summary


def load_second_labels(path: Path) -> dict[str, dict[str, int]]:
    if not path.exists():
        return {}
    out: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out[str(d["id"])] = {k: int(v) for k, v in d["labels"].items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Quality checks of the own corpus; fails when a target is missed.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'corpus_qc')")
    parser.add_argument("--corpus", default="data/own/corpus", type=Path)
    parser.add_argument(
        "--second",
        default="data/own/agreement/second_labels.jsonl",
        type=Path,
        help="independent second labels of a sample (id, labels)",
    )
    parser.add_argument(
        "--first",
        default="data/own/agreement/first_labels.jsonl",
        type=Path,
        help="the corpus labels of the sample when it was second-labelled (before adjudication)",
    )
    parser.add_argument("--metrics", default="metrics/corpus_qc.json", type=Path)
    parser.add_argument("--report", default="data_cards/own_corpus_quality.md", type=Path)
    parser.add_argument(
        "--write-sample",
        type=Path,
        default=None,
        help="write a stratified random sample (ids and texts only) for a second labeller and exit",
    )
    parser.add_argument("--sample-per-category", type=int, default=30)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "corpus_qc", CorpusQCConfig)
    items = load_corpus(args.corpus)
    if args.write_sample:
        sample = agreement_sample(items, args.sample_per_category, 60, seed=7)
        args.write_sample.parent.mkdir(parents=True, exist_ok=True)
        with args.write_sample.open("w", encoding="utf-8") as f:
            for it in sample:
                f.write(json.dumps({"id": it.id, "text": it.text}, ensure_ascii=False) + "\n")
        print(f"wrote {len(sample)} items to {args.write_sample}")
        return
    summary = run_qc(items, cfg, load_second_labels(args.second), load_second_labels(args.first) or None)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report_markdown(summary), encoding="utf-8")
    print(report_markdown(summary))
    problems = list(summary["target_problems"])
    problems += [f"{c}: kappa below {cfg.agreement_min_kappa}" for c in summary.get("kappa_problems", [])]
    if summary["near_duplicates"]:
        problems.append(f"{len(summary['near_duplicates'])} near-duplicate pairs (rewrite or remove one of each)")
    if problems:
        raise SystemExit("own corpus quality checks failed:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
