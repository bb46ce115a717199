"""Text inference on an exported model: ONNX Runtime, `tokenizers`, numpy. No torch.

One engine serves the API, bulk scoring, the CLI and the evaluation stage, so
what is measured is what is served. Long texts are cut into overlapping token
windows; a harm anywhere in the text counts, so window scores are combined by
their maximum.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vicas.diacritics import DiacriticsRestorer
from vicas.inference import (
    Calibration,
    Evidence,
    category_scores,
    evidence_spans,
    severities,
    severity_probabilities,
    sigmoid,
)
from vicas.manifest import Manifest, ManifestError, load_manifest
from vicas.ngrams import NgramModel
from vicas.normalize import Normalized, normalize
from vicas.stacking import stack
from vicas.taxonomy import CATEGORIES


@dataclass
class TextPrediction:
    """The model's reading of one text, before the policy."""

    normalized: Normalized
    severities: dict[str, int]
    scores: dict[str, float]  # P(category present), calibrated
    severity_probs: np.ndarray  # (C, 3) calibrated P(severity >= k)
    evidence: list[Evidence]
    native: dict[str, list[float]] = field(default_factory=dict)
    windows: int = 1


def _native_probs(logits: np.ndarray, heads: dict[str, int]) -> dict[str, list[float]]:
    out, start = {}, 0
    for name, n in heads.items():
        x = logits[start : start + n]
        if n == 1:
            out[name] = [float(1 / (1 + np.exp(-x[0])))]
        else:
            e = np.exp(x - x.max())
            out[name] = [float(v) for v in e / e.sum()]
        start += n
    return out


def open_onnx(folder: Path, manifest: Manifest, onnx_file: str | None, threads: int | None) -> tuple[Calibration, Any]:
    """An exported model's ONNX Runtime session (CPU) and the calibration fitted for that ONNX file.

    Text and image engines share it; `threads` (or VICAS_ORT_THREADS) caps intra-op threads.
    """
    import onnxruntime as ort

    onnx_name = onnx_file or manifest.default_onnx
    if onnx_name not in manifest.files:
        raise ManifestError(f"{folder}: {onnx_name} is not listed with its checksum in the manifest")
    cal_file = manifest.calibrations.get(onnx_name)
    if cal_file is None:
        raise ManifestError(f"{folder}: the manifest names no calibration for {onnx_name}")
    if cal_file not in manifest.files:
        raise ManifestError(f"{folder}: {cal_file} is not listed with its checksum in the manifest")
    calibration = Calibration.model_validate_json((folder / cal_file).read_text(encoding="utf-8"))
    opts = ort.SessionOptions()
    n_threads = threads if threads is not None else int(os.environ.get("VICAS_ORT_THREADS", "0"))
    if n_threads:
        opts.intra_op_num_threads = n_threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(folder / onnx_name), sess_options=opts, providers=["CPUExecutionProvider"])
    return calibration, session


class TextEngine:
    """Loads an exported text model folder (verified through its manifest) and classifies texts."""

    def __init__(
        self, folder: str | Path, onnx_file: str | None = None, threads: int | None = None, check_files: bool = True
    ) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.manifest: Manifest = load_manifest(self.folder, check_files=check_files)
        if self.manifest.kind != "text":
            raise ManifestError(f"{self.folder} holds a {self.manifest.kind} model, not a text model")
        self.calibration, self.session = open_onnx(self.folder, self.manifest, onnx_file, threads)
        self.tokenizer = Tokenizer.from_file(str(self.folder / self.manifest.tokenizer_file))
        self.max_length = self.manifest.max_length
        self.bos = self.manifest.special_ids["bos"]
        self.eos = self.manifest.special_ids["eos"]
        self.pad = self.manifest.special_ids["pad"]
        self.stride = max(8, (self.max_length - 2) // 4)
        stacking = self.manifest.stacking
        self.ngram = NgramModel.load(self.folder / stacking.ngram_file) if stacking else None
        restorer_file = self.manifest.diacritics_file
        self.restorer = DiacriticsRestorer.load(self.folder / restorer_file) if restorer_file else None

    @property
    def version(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def _windows(self, ids: list[int], offsets: list[tuple[int, int]]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        body = self.max_length - 2
        if len(ids) <= body:
            starts = [0]
        else:
            step = body - self.stride
            starts = [*list(range(0, len(ids) - body, step)), len(ids) - body]
        out = []
        for s in starts:
            w_ids = [self.bos, *ids[s : s + body], self.eos]
            w_off = [(0, 0), *offsets[s : s + body], (0, 0)]
            out.append((w_ids, w_off))
        return out

    def run(self, batch_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw ONNX outputs for token id lists: severity logits, token logits, native logits."""
        t = max(len(x) for x in batch_ids)
        ids = np.full((len(batch_ids), t), self.pad, dtype=np.int64)
        mask = np.zeros((len(batch_ids), t), dtype=np.int64)
        for i, x in enumerate(batch_ids):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1
        sev, tok, nat = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return sev, tok, nat

    def normalize(self, text: str) -> Normalized:
        """The models' view of a text: normalised, then diacritics restored if typed without them."""
        norm = normalize(text)
        if self.restorer is not None:
            norm = replace(norm, text=self.restorer.model_view(text, norm.text))  # same length: spans hold
        return norm

    def infer(self, texts: list[str], batch_size: int = 32) -> RawInference:
        """Normalise, tokenise into windows, run ONNX; raw logits per window."""
        norms = [self.normalize(t) for t in texts]
        encs = self.tokenizer.encode_batch([n.text for n in norms], add_special_tokens=False)
        windows: list[tuple[int, list[int], list[tuple[int, int]]]] = []
        for i, enc in enumerate(encs):
            for w_ids, w_off in self._windows(list(enc.ids), [(int(o[0]), int(o[1])) for o in enc.offsets]):
                windows.append((i, w_ids, w_off))
        order = sorted(range(len(windows)), key=lambda j: len(windows[j][1]))
        sev_logits = np.zeros((len(windows), len(CATEGORIES), 3), dtype=np.float32)
        nat_logits = np.zeros((len(windows), sum(self.manifest.native_heads.values())), dtype=np.float32)
        tok_logits: list[np.ndarray] = [np.zeros(0)] * len(windows)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            sev, tok, nat = self.run([windows[j][1] for j in idx])
            for k, j in enumerate(idx):
                sev_logits[j] = sev[k]
                nat_logits[j] = nat[k]
                tok_logits[j] = tok[k, : len(windows[j][1])]
        by_text: dict[int, list[int]] = {}
        for j, (i, _, _) in enumerate(windows):
            by_text.setdefault(i, []).append(j)
        return RawInference(norms, windows, by_text, sev_logits, tok_logits, nat_logits)

    def text_logits(self, raw: RawInference) -> tuple[np.ndarray, np.ndarray]:
        """Per text: severity logits (N, C, 3), the max over its windows, and native logits (N, K), their
        mean; mixed with the n-gram model's scores when the manifest stacks one. Empty texts: -30 / 0."""
        n = len(raw.norms)
        sev = np.full((n, len(CATEGORIES), 3), -30.0, dtype=np.float32)
        nat = np.zeros((n, raw.nat_logits.shape[1]), dtype=np.float32)
        for i in range(n):
            js = raw.by_text.get(i)
            if js:
                sev[i] = raw.sev_logits[js].max(axis=0)
                nat[i] = raw.nat_logits[js].mean(axis=0)
        if self.ngram is not None and self.manifest.stacking is not None:
            scores = self.ngram.scores([norm.text for norm in raw.norms])
            sev, nat = stack(sev, nat, scores, self.manifest.stacking, self.manifest.native_heads)
        return sev, nat

    def classify(self, texts: list[str], batch_size: int = 32, with_evidence: bool = True) -> list[TextPrediction]:
        raw = self.infer(texts, batch_size)
        sev_logits, nat_logits = self.text_logits(raw)
        probs = severity_probabilities(sev_logits, self.calibration)
        results: list[TextPrediction] = []
        for i, norm in enumerate(raw.norms):
            js = raw.by_text.get(i, [])
            if not js:  # empty text: nothing to read
                zero = np.zeros((len(CATEGORIES), 3), dtype=np.float32)
                results.append(
                    TextPrediction(norm, dict.fromkeys(CATEGORIES, 0), dict.fromkeys(CATEGORIES, 0.0), zero, [], {}, 0)
                )
                continue
            p = probs[i]
            sev = severities(p[None], self.calibration)[0]
            scores = {c: round(float(v), 4) for c, v in zip(CATEGORIES, category_scores(p), strict=True)}
            evidence: list[Evidence] = []
            if with_evidence:
                flagged = [c for c in CATEGORIES if sev[c] > 0]
                for j in js:
                    tp = sigmoid(raw.tok_logits[j])
                    evidence += evidence_spans(
                        tp, raw.windows[j][2], norm, flagged, self.calibration.evidence_threshold
                    )
                evidence = _dedupe(evidence)
            native = _native_probs(nat_logits[i], self.manifest.native_heads)
            results.append(TextPrediction(norm, sev, scores, p, evidence, native, len(js)))
        return results

    def evidence_characters(self, texts: list[str], categories: list[str], threshold: float) -> list[set[int]]:
        """Original-text character offsets whose token scores >= threshold for any of `categories`."""
        raw = self.infer(texts)
        cols = [CATEGORIES.index(c) for c in categories]
        out: list[set[int]] = []
        for i, norm in enumerate(raw.norms):
            chars: set[int] = set()
            for j in raw.by_text.get(i, []):
                tp = sigmoid(raw.tok_logits[j])[:, cols].max(axis=1)
                for (s, e), p in zip(raw.windows[j][2], tp, strict=True):
                    while s < e and norm.text[s] == " ":
                        s += 1
                    if e > s and p >= threshold:
                        os_, oe = norm.to_original(s, e)
                        chars.update(range(os_, oe))
            out.append(chars)
        return out


@dataclass
class RawInference:
    norms: list[Normalized]
    windows: list[tuple[int, list[int], list[tuple[int, int]]]]
    by_text: dict[int, list[int]]
    sev_logits: np.ndarray
    tok_logits: list[np.ndarray]
    nat_logits: np.ndarray


def _dedupe(items: list[Evidence]) -> list[Evidence]:
    seen: dict[tuple[str, int, int], Evidence] = {}
    for e in items:
        key = (e.category, e.start, e.end)
        if key not in seen or e.score > seen[key].score:
            seen[key] = e
    return sorted(seen.values(), key=lambda e: (CATEGORIES.index(e.category), e.start))


def read_special_ids(tokenizer_json: Path) -> dict[str, int]:
    """bos/eos/pad ids from a tokenizer.json (XLM-R style <s> </s> <pad>, or BERT's [CLS] [SEP] [PAD])."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    vocab = spec["model"].get("vocab")
    lookup = dict(added)
    if isinstance(vocab, list):
        lookup.update({str(p[0]): i for i, p in enumerate(vocab) if str(p[0]) in ("<s>", "</s>", "<pad>")})
    elif isinstance(vocab, dict):
        lookup.update({k: v for k, v in vocab.items() if k in ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>")})
    for bos, eos, pad in (("<s>", "</s>", "<pad>"), ("[CLS]", "[SEP]", "[PAD]")):
        if bos in lookup and eos in lookup and pad in lookup:
            return {"bos": lookup[bos], "eos": lookup[eos], "pad": lookup[pad]}
    raise ValueError(f"{tokenizer_json}: cannot find begin, end and padding tokens")
