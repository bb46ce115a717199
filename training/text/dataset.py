"""Prepared rows -> tensors: tokens, masked severity targets, evidence and native labels.

Severity targets are cumulative: target[c, k-1] answers "severity of c >= k".
A source's range [lo, hi] fixes it to 1 when lo >= k, to 0 when hi < k, and
leaves it masked otherwise, so an unannotated category never counts as absent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from training.text.model import NATIVE_HEADS
from vicas.diacritics import DiacriticsRestorer
from vicas.normalize import fold_diacritics, normalize, normalize_text
from vicas.taxonomy import CATEGORIES

NATIVE_KEYS = {
    "vihsd": "vihsd",
    "victsd_toxic": "victsd_toxic",
    "vispam": "vispam",
    "vispam_type": "vispam_type",
    "smishing": "smishing",
    "vithsd_individual": "vithsd_individual",
    "vithsd_groups": "vithsd_groups",
    "vithsd_religion": "vithsd_religion",
    "vithsd_race": "vithsd_race",
    "vithsd_politics": "vithsd_politics",
}


def load_rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def severity_targets(labels: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3) targets and masks from severity ranges."""
    target = np.zeros((len(CATEGORIES), 3), dtype=np.float32)
    mask = np.zeros((len(CATEGORIES), 3), dtype=np.float32)
    for ci, cat in enumerate(CATEGORIES):
        if cat not in labels:
            continue
        lo, hi = labels[cat]
        for k in (1, 2, 3):
            if lo >= k:
                target[ci, k - 1], mask[ci, k - 1] = 1.0, 1.0
            elif hi < k:
                mask[ci, k - 1] = 1.0
    return target, mask


@dataclass
class Encoded:
    input_ids: list[int]
    sev_target: np.ndarray
    sev_mask: np.ndarray
    token_target: np.ndarray  # (T,) evidence on ViHOS rows
    token_mask: float  # 1 when token_target is annotated
    native: dict[str, int]
    source: str


def char_evidence(row: dict[str, Any]) -> np.ndarray | None:
    """Per character of the normalised text: 1 if it came from an annotated evidence span."""
    spans = row.get("spans")
    if spans is None:
        return None
    n = normalize(row["text"])
    marks = np.zeros(len(n.text), dtype=np.float32)
    for i, (s, e) in enumerate(n.spans):
        if any(s < se and e > ss for ss, se in spans):
            marks[i] = 1.0
    return marks


def unaccented_copies(rows: list[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """Copies of a seeded share of rows typed without diacritics, as many people type.

    Folding diacritics keeps every character in place, so evidence spans stay valid.
    """
    if share <= 0:
        return []
    rng = np.random.default_rng(seed)
    picked = np.flatnonzero(rng.random(len(rows)) < share)
    out = []
    for i in picked:
        r = rows[int(i)]
        text = fold_diacritics(r["text"])
        if text == r["text"] or len(text) != len(r["text"]):
            continue
        out.append({**r, "id": f"{r['id']}~nd", "text": text, "norm": normalize_text(text)})
    return out


def restore_rows(rows: list[dict[str, Any]], restorer: DiacriticsRestorer | None) -> list[dict[str, Any]]:
    """Rows whose `norm` is what the served model reads: diacritics restored where the text lacks them."""
    if restorer is None:
        return rows
    from tqdm import tqdm

    bar = tqdm(rows, desc="restore diacritics", unit=" texts", leave=False, mininterval=5, disable=len(rows) < 1000)
    return [{**r, "norm": restorer.model_view(r["text"], r["norm"])} for r in bar]


def weight_key(row: dict[str, Any]) -> str:
    """The sampling-weight key: 'real' for rows the project labelled on the whole contract, else the source."""
    return "real" if row.get("meta", {}).get("real_labels") else str(row["source"])


def encode_rows(rows: list[dict[str, Any]], tokenizer: PreTrainedTokenizerFast, max_length: int) -> list[Encoded]:
    texts = [r["norm"] for r in rows]
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    out = []
    for r, ids, offsets in zip(rows, enc["input_ids"], enc["offset_mapping"], strict=True):
        target, mask = severity_targets(r["labels"])
        marks = char_evidence(r)
        tok_target = np.zeros(len(ids), dtype=np.float32)
        if marks is not None:
            for i, (s, e) in enumerate(offsets):
                if e > s and marks[s:e].max(initial=0.0) > 0:
                    tok_target[i] = 1.0
        native = {k: int(r["native"][v]) for k, v in NATIVE_KEYS.items() if v in r.get("native", {})}
        out.append(Encoded(ids, target, mask, tok_target, 1.0 if marks is not None else 0.0, native, weight_key(r)))
    return out


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    t = max(len(it.input_ids) for it in items)
    b = len(items)
    ids = torch.full((b, t), pad_id, dtype=torch.long)
    attn = torch.zeros((b, t), dtype=torch.long)
    tok_t = torch.zeros((b, t))
    tok_m = torch.zeros((b, t))
    for i, it in enumerate(items):
        n = len(it.input_ids)
        ids[i, :n] = torch.tensor(it.input_ids)
        attn[i, :n] = 1
        tok_t[i, :n] = torch.from_numpy(it.token_target)
        tok_m[i, 1 : n - 1] = it.token_mask  # special tokens are never evidence
    batch = {
        "input_ids": ids,
        "attention_mask": attn,
        "sev_target": torch.from_numpy(np.stack([it.sev_target for it in items])),
        "sev_mask": torch.from_numpy(np.stack([it.sev_mask for it in items])),
        "token_target": tok_t,
        "token_mask": tok_m,
    }
    for name in NATIVE_HEADS:
        vals = [it.native.get(name, -1) for it in items]
        batch[f"native_{name}"] = torch.tensor(vals, dtype=torch.long)
    return batch


def weighted_batches(
    data: list[Encoded], weights: dict[str, float], batch_size: int, n_batches: int, seed: int
) -> Iterator[list[Encoded]]:
    """Sample examples by source weight, then group similar lengths so padding stays small."""
    rng = random.Random(seed)
    w = np.array([weights.get(d.source, 1.0) for d in data], dtype=np.float64)
    w /= w.sum()
    np_rng = np.random.default_rng(seed)
    chunk = batch_size * 50
    produced = 0
    while produced < n_batches:
        idx = np_rng.choice(len(data), size=chunk, p=w)
        pool = sorted((data[i] for i in idx), key=lambda d: len(d.input_ids))
        batches = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        rng.shuffle(batches)
        for b in batches:
            if produced >= n_batches:
                return
            produced += 1
            yield b


def sequential_batches(data: list[Encoded], batch_size: int) -> Iterator[tuple[list[int], list[Encoded]]]:
    """Length-sorted batches for inference; yields the original indices too."""
    order = sorted(range(len(data)), key=lambda i: len(data[i].input_ids))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        yield idx, [data[i] for i in idx]
