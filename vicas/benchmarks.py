"""Public benchmarks in their native label spaces, computed by the served model (no torch, no pandas).

`vicas benchmark NAME --file PATH` reads any file in that dataset's native
format and prints the published metric:

| name | file columns | metric |
|---|---|---|
| vihsd | free_text, label_id | macro-F1 over CLEAN/OFFENSIVE/HATE |
| victsd | Comment, Toxicity | F1 of the toxic class |
| vihos | content, index_spans | span F1 (per-comment character F1, averaged) |
| vithsd | content, individual, groups, religion/creed, race/ethnicity, politics | mean of per-target macro-F1 |
| vispamreviews | Comment, Label | macro-F1 spam / not spam |
| smishing | content, label | F1 of the smishing class |
"""

from __future__ import annotations

import ast
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vicas.engine import TextEngine
from vicas.inference import native_label

csv.field_size_limit(sys.maxsize)


def f1_binary(y: list[int], p: list[int]) -> float:
    tp = sum(1 for a, b in zip(y, p, strict=True) if a == 1 and b == 1)
    fp = sum(1 for a, b in zip(y, p, strict=True) if a == 0 and b == 1)
    fn = sum(1 for a, b in zip(y, p, strict=True) if a == 1 and b == 0)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def f1_macro(y: list[int], p: list[int]) -> float:
    labels = sorted(set(y) | set(p))
    scores = [f1_binary([int(a == c) for a in y], [int(b == c) for b in p]) for c in labels]
    return float(np.mean(scores)) if scores else 0.0


def span_f1(pred: list[set[int]], gold: list[set[int]]) -> float:
    scores = []
    for p, g in zip(pred, gold, strict=True):
        if not p and not g:
            scores.append(1.0)
        elif not p or not g or not (p & g):
            scores.append(0.0)
        else:
            prec, rec = len(p & g) / len(p), len(p & g) / len(g)
            scores.append(2 * prec * rec / (prec + rec))
    return float(np.mean(scores)) if scores else 0.0


def _rows(path: Path, required: list[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}; found {reader.fieldnames}")
        return [r for r in reader if (r.get(required[0]) or "").strip()]


def _native(engine: TextEngine, texts: list[str], heads: list[str]) -> list[dict[str, int]]:
    """Per text, the served decision of each named native head (offsets from the model's calibration)."""
    offsets = engine.calibration.native_offsets
    preds = engine.classify(texts, with_evidence=False)
    return [{h: native_label(p.native[h], offsets.get(h)) for h in heads} for p in preds]


@dataclass
class Benchmark:
    metric: str
    run: Callable[[TextEngine, Path], float]


def _vihsd(engine: TextEngine, path: Path) -> float:
    rows = _rows(path, ["free_text", "label_id"])
    nat = _native(engine, [r["free_text"] for r in rows], ["vihsd"])
    return f1_macro([int(r["label_id"]) for r in rows], [n["vihsd"] for n in nat])


def _victsd(engine: TextEngine, path: Path) -> float:
    rows = _rows(path, ["Comment", "Toxicity"])
    nat = _native(engine, [r["Comment"] for r in rows], ["victsd_toxic"])
    return f1_binary([int(r["Toxicity"]) for r in rows], [n["victsd_toxic"] for n in nat])


def _vihos(engine: TextEngine, path: Path) -> float:
    rows = _rows(path, ["content", "index_spans"])
    texts = [r["content"] for r in rows]
    pred = engine.evidence_characters(texts, ["hate", "harassment", "profanity"], engine.calibration.evidence_threshold)
    gold = [{int(i) for i in ast.literal_eval(r["index_spans"])} for r in rows]
    return span_f1(pred, gold)


def _vithsd(engine: TextEngine, path: Path) -> float:
    targets = ["individual", "groups", "religion/creed", "race/ethnicity", "politics"]
    rows = _rows(path, ["content", *targets])
    heads = {t: f"vithsd_{t.split('/')[0]}" for t in targets}
    nat = _native(engine, [r["content"] for r in rows], list(heads.values()))
    scores = []
    for t, head in heads.items():
        scores.append(f1_macro([int(r[t]) for r in rows], [n[head] for n in nat]))
    return float(np.mean(scores))


def _vispam(engine: TextEngine, path: Path) -> float:
    rows = _rows(path, ["Comment", "Label"])
    nat = _native(engine, [r["Comment"] for r in rows], ["vispam"])
    return f1_macro([int(r["Label"]) for r in rows], [n["vispam"] for n in nat])


def _smishing(engine: TextEngine, path: Path) -> float:
    rows = _rows(path, ["content", "label"])
    nat = _native(engine, [r["content"] for r in rows], ["smishing"])
    return f1_binary([int(r["label"]) for r in rows], [n["smishing"] for n in nat])


BENCHMARKS: dict[str, Benchmark] = {
    "vihsd": Benchmark("macro_f1", _vihsd),
    "victsd": Benchmark("toxic_f1", _victsd),
    "vihos": Benchmark("span_f1", _vihos),
    "vithsd": Benchmark("mean_target_macro_f1", _vithsd),
    "vispamreviews": Benchmark("macro_f1", _vispam),
    "smishing": Benchmark("smishing_f1", _smishing),
}
