"""The project's labels on real texts of the public datasets, on the whole contract.

Labels are committed without their texts (`data/real_labels/labels.jsonl`), keyed by source, split, row
and a hash of the text; `ingest` joins them to the texts read from the configured source folder and
refuses a row whose text no longer matches its hash. A labelled row gets an exact severity for all
twelve categories (it is no longer a partial, native-only annotation) and is marked `real_labels`.

Splits: a labelled row of a source's dev split stays in dev (it tunes calibration and the review
threshold). A seeded quarter of the labelled rows of the sources' train splits forms the **real-text
test split**, never trained or tuned on; the rest is trained on.

Commands (`python -m training.data.real_labels --help`):
- `assemble`: labellers' batch files + the sample -> `data/real_labels/` (labels, both labellings,
  adjudication), what a labelling round commits;
- `qc`: the DVC stage: counts per category and severity, prevalence in the random slice, Cohen's kappa per
  category and on the band -> `metrics/real_labels.json` and a markdown report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.data.adapters import Record, SourceError, exact, jsonl_objects
from vicas.policy import Policy, decide, load_policy
from vicas.taxonomy import CATEGORIES, check_severity

TEST_PERCENT = 25  # share of labelled train-split rows held out as the real-text test split
LABELS_FILE = "labels.jsonl"


def text_hash(text: str) -> str:
    """First 16 hex digits of the SHA-256 of the text as the dataset gives it (after strip)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def in_test(row_id: str) -> bool:
    """Seeded by the row id alone, so the same rows are held out whatever else changes."""
    return int(hashlib.sha256(f"real-test:{row_id}".encode()).hexdigest()[:8], 16) % 100 < TEST_PERCENT


@dataclass(frozen=True)
class RealLabel:
    id: str
    source: str
    split: str
    row: int
    sha: str
    stratum: str
    labels: dict[str, int]  # non-zero severities; absent = 0

    def severities(self) -> dict[str, int]:
        return {c: self.labels.get(c, 0) for c in CATEGORIES}


def parse_labels(raw: object, where: str) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise SourceError(f"{where}: 'labels' must be an object of category -> severity")
    unknown = sorted(set(raw) - set(CATEGORIES))
    if unknown:
        raise SourceError(f"{where}: unknown categories {unknown}")
    try:
        return {c: check_severity(c, int(v)) for c, v in raw.items() if int(v) != 0}
    except (TypeError, ValueError) as e:
        raise SourceError(f"{where}: {e}") from e


def load_real_labels(path: Path) -> dict[str, RealLabel]:
    """Committed labels by row id; a missing file means no real labels (an empty dict)."""
    out: dict[str, RealLabel] = {}
    if not path.exists():
        return out
    for where, d, _ in jsonl_objects(path):
        missing = [k for k in ("id", "source", "split", "row", "sha", "labels") if k not in d]
        if missing:
            raise SourceError(f"{where}: missing fields {missing}")
        if d["id"] in out:
            raise SourceError(f"{where}: row {d['id']} labelled twice")
        out[d["id"]] = RealLabel(
            id=str(d["id"]),
            source=str(d["source"]),
            split=str(d["split"]),
            row=int(d["row"]),
            sha=str(d["sha"]),
            stratum=str(d.get("stratum", "")),
            labels=parse_labels(d["labels"], where),
        )
    return out


def apply_real_labels(records: Iterable[Record], labels: dict[str, RealLabel], stats: Counter[str]) -> Iterable[Record]:
    """Give labelled rows exact labels on every category, and move the held-out ones to the test split.

    A row whose text does not hash as labelled is refused loudly: the source file changed under the labels.
    """
    for rec in records:
        lab = labels.get(rec.id)
        if lab is not None:
            if lab.sha != text_hash(rec.text):
                raise SourceError(
                    f"real label for {rec.id}: the text in the source folder no longer matches the labelled "
                    f"text (hash {text_hash(rec.text)} != {lab.sha}); the dataset file changed. Relabel "
                    f"the row or remove its line from data/real_labels/{LABELS_FILE}."
                )
            rec.labels = {c: exact(s) for c, s in lab.severities().items()}
            rec.meta = {**rec.meta, "real_labels": lab.stratum}
            if rec.split == "train" and in_test(rec.id):
                rec.split = "test"
            stats[f"{rec.source}:{rec.split}"] += 1
        yield rec


# --- agreement and statistics ------------------------------------------------------------------------------


def band_of(sev: dict[str, int], policy: Policy) -> int:
    return decide(sev, policy).band.rank


def kappa(a: list[int], b: list[int], weights: str | None = None) -> float | None:
    """Cohen's kappa; None when both labellers gave one value only (kappa is undefined)."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:
        return None
    return round(float(cohen_kappa_score(a, b, weights=weights)), 3)


def agreement(first: dict[str, dict[str, int]], second: dict[str, dict[str, int]], policy: Policy) -> dict[str, Any]:
    """Per category: presence kappa, severity kappa (quadratic weights), positives each labeller found;
    on the band: exact agreement, kappa, linear-weighted kappa."""
    ids = sorted(set(first) & set(second))
    out: dict[str, Any] = {"items": len(ids), "categories": {}}
    for c in CATEGORIES:
        a = [first[i].get(c, 0) for i in ids]
        b = [second[i].get(c, 0) for i in ids]
        out["categories"][c] = {
            "presence_kappa": kappa([int(x > 0) for x in a], [int(x > 0) for x in b]),
            "severity_kappa_quadratic": kappa(a, b, "quadratic"),
            "positives_first": sum(x > 0 for x in a),
            "positives_second": sum(x > 0 for x in b),
            "exact_agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / max(1, len(ids)), 4),
        }
    ba = [band_of(first[i], policy) for i in ids]
    bb = [band_of(second[i], policy) for i in ids]
    out["band"] = {
        "exact_agreement": round(sum(x == y for x, y in zip(ba, bb, strict=True)) / max(1, len(ids)), 4),
        "kappa": kappa(ba, bb),
        "kappa_linear": kappa(ba, bb, "linear"),
    }
    out["items_with_any_disagreement"] = sum(first[i] != second[i] for i in ids)
    return out


def read_label_lines(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not path.exists():
        return out
    for where, d, _ in jsonl_objects(path):
        out[str(d["id"])] = parse_labels(d.get("labels"), where)
    return out


def statistics(labels: dict[str, RealLabel], policy: Policy) -> dict[str, Any]:
    """Counts per category and severity (all rows), per split, and prevalence in the random slice."""
    by_sev: dict[str, Counter[int]] = {c: Counter() for c in CATEGORIES}
    splits: Counter[str] = Counter()
    strata: Counter[str] = Counter()
    for lab in labels.values():
        split = "test" if lab.split == "train" and in_test(lab.id) else lab.split
        splits[split] += 1
        strata[lab.stratum.split(":")[0]] += 1
        for c in CATEGORIES:
            by_sev[c][lab.labels.get(c, 0)] += 1
    random_rows = [lab for lab in labels.values() if lab.stratum.startswith("random:") and lab.stratum != "random:fill"]
    prevalence: dict[str, Any] = {}
    for source in sorted({lab.source for lab in random_rows}):
        rows = [lab for lab in random_rows if lab.source == source]
        bands = Counter(decide(lab.severities(), policy).band.value for lab in rows)
        prevalence[source] = {
            "rows": len(rows),
            "clean": round(sum(not lab.labels for lab in rows) / len(rows), 4),
            "categories": {c: round(sum(c in lab.labels for lab in rows) / len(rows), 4) for c in CATEGORIES},
            "bands": {b: round(n / len(rows), 4) for b, n in sorted(bands.items())},
        }
    return {
        "rows": len(labels),
        "splits": dict(splits),
        "strata": dict(strata),
        "severity_counts": {c: {str(k): v for k, v in sorted(cnt.items())} for c, cnt in by_sev.items()},
        "prevalence_random_slice": prevalence,
    }


def report_markdown(stats: dict[str, Any], agree: dict[str, Any]) -> str:
    lines = ["# Real-text labels: statistics and agreement (regenerated by `dvc repro real_labels_qc`)", ""]
    lines += [f"{stats['rows']} rows; splits {stats['splits']}; strata {stats['strata']}.", ""]
    lines += [
        "## Rows per category and severity",
        "",
        "| category | 0 | 1 | 2 | 3 | >= 1 |",
        "|---|---|---|---|---|---|",
    ]
    for c, cnt in stats["severity_counts"].items():
        pos = sum(v for k, v in cnt.items() if k != "0")
        lines.append(f"| {c} | " + " | ".join(str(cnt.get(str(k), 0)) for k in range(4)) + f" | {pos} |")
    lines += ["", "## Prevalence in the random slice (share of rows with the category at severity >= 1)", ""]
    srcs = list(stats["prevalence_random_slice"])
    lines += ["| category | " + " | ".join(srcs) + " |", "|---|" + "---|" * len(srcs)]
    for c in CATEGORIES:
        cells = [f"{stats['prevalence_random_slice'][s]['categories'][c]:.1%}" for s in srcs]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append(
        "| (clean) | " + " | ".join(f"{stats['prevalence_random_slice'][s]['clean']:.1%}" for s in srcs) + " |"
    )
    lines.append("| rows | " + " | ".join(str(stats["prevalence_random_slice"][s]["rows"]) for s in srcs) + " |")
    lines += ["", f"## Agreement of two independent labellings ({agree['items']} items)", ""]
    lines += [
        "| category | presence kappa | severity kappa (quadratic) | exact | positives (first / second) |",
        "|---|---|---|---|---|",
    ]

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for c, a in agree["categories"].items():
        lines.append(
            f"| {c} | {fmt(a['presence_kappa'])} | {fmt(a['severity_kappa_quadratic'])} | {a['exact_agreement']:.1%} "
            f"| {a['positives_first']} / {a['positives_second']} |"
        )
    b = agree["band"]
    lines += [
        "",
        f"Band: exact agreement {b['exact_agreement']:.1%}, kappa {fmt(b['kappa'])}, linear-weighted kappa "
        f"{fmt(b['kappa_linear'])}. Items with any disagreement: {agree['items_with_any_disagreement']} "
        "(settled by adjudication, `data/real_labels/agreement/adjudication.jsonl`).",
    ]
    return "\n".join(lines) + "\n"


# --- commands ----------------------------------------------------------------------------------------------


def assemble(labelling: Path, out: Path) -> dict[str, int]:
    """Merge the sample and the labellers' batch files into the committed, text-free label files.

    Final label: the first labelling, replaced by the adjudicated label where an adjudication exists.
    """
    sample = {}
    for line in (labelling / "sample.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        sample[d["id"]] = d
    first: dict[str, dict[str, int]] = {}
    for path in sorted((labelling / "first").glob("batch_*.jsonl")):
        first.update(read_label_lines(path))
    second: dict[str, dict[str, int]] = {}
    for path in sorted((labelling / "second").glob("batch_*.jsonl")):
        second.update(read_label_lines(path))
    adjudicated = read_label_lines(labelling / "adjudicated.jsonl")
    (out / "agreement").mkdir(parents=True, exist_ok=True)

    def key(i: str) -> dict[str, Any]:
        s = sample[i]
        return {"id": i, "source": s["source"], "split": s["split"], "row": s["row"], "sha": s["sha"]}

    with (out / LABELS_FILE).open("w", encoding="utf-8") as f:
        for i in sorted(first):
            labels = adjudicated.get(i, first[i])
            f.write(
                json.dumps({**key(i), "stratum": sample[i]["stratum"], "labels": labels}, ensure_ascii=False) + "\n"
            )
    for name, data in (("first", first), ("second", second), ("adjudication", adjudicated)):
        with (out / "agreement" / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for i in sorted(data):
                if i in sample:
                    f.write(json.dumps({**key(i), "labels": data[i]}, ensure_ascii=False) + "\n")
    return {"labelled": len(first), "second": len(set(second) & set(first)), "adjudicated": len(adjudicated)}


def qc(folder: Path, metrics: Path, report: Path, policy: Policy) -> dict[str, Any]:
    labels = load_real_labels(folder / LABELS_FILE)
    first = read_label_lines(folder / "agreement" / "first.jsonl")
    second = read_label_lines(folder / "agreement" / "second.jsonl")
    stats = statistics(labels, policy)
    agree = agreement(first, second, policy)
    out = {"statistics": stats, "agreement": agree}
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(out, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(report_markdown(stats, agree), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Real-text labels: assemble a labelling round, or check it (QC).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("assemble", help="labellers' batch files -> data/real_labels (no texts)")
    a.add_argument("--labelling", type=Path, default=Path("data/labelling"))
    a.add_argument("--out", type=Path, default=Path("data/real_labels"))
    q = sub.add_parser("qc", help="counts, prevalence and agreement -> metrics and a report (DVC stage)")
    q.add_argument("--labels", type=Path, default=Path("data/real_labels"))
    q.add_argument("--metrics", type=Path, default=Path("metrics/real_labels.json"))
    q.add_argument("--report", type=Path, default=Path("data_cards/real_labels_stats.md"))
    q.add_argument("--policy", type=Path, default=None, help="policy for the band (default: the packaged one)")
    args = parser.parse_args(argv)
    if args.cmd == "assemble":
        print(assemble(args.labelling, args.out))
    else:
        out = qc(args.labels, args.metrics, args.report, load_policy(args.policy))
        print(json.dumps(out["agreement"]["band"]), f"{out['statistics']['rows']} rows")


if __name__ == "__main__":
    main()
