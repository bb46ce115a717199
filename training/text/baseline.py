"""DVC stage `baseline`: TF-IDF character n-grams with logistic regression, on the same splits.

The same outputs as the neural model (cumulative severity scores per category,
native-label scores), calibrated on dev by the same rule, so every metric in
evaluation has a reference point.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from training.calibration import calibrate, fit_native_offsets, native_labels_of
from training.config import BaselineConfig, load_section
from training.text.dataset import NATIVE_KEYS, load_rows, restore_rows, severity_targets, unaccented_copies
from training.text.model import NATIVE_HEADS
from vicas.diacritics import DiacriticsRestorer
from vicas.inference import Calibration
from vicas.ngrams import NgramModel
from vicas.normalize import normalize_text
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES


class Baseline:
    """Vectorizer + one linear model per (category, threshold) and per native head."""

    def __init__(self, cfg: BaselineConfig, restorer: DiacriticsRestorer | None = None) -> None:
        self.cfg = cfg
        self.restorer = restorer  # reads texts as the served model does (see `logits`)
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(cfg.ngram_min, cfg.ngram_max),
            max_features=cfg.max_features,
            sublinear_tf=True,
            min_df=2,
        )
        self.severity_models: dict[tuple[int, int], LogisticRegression | float] = {}
        self.native_models: dict[str, LogisticRegression | None] = {}
        self.calibration = Calibration.identity()

    def _lr(self) -> LogisticRegression:
        return LogisticRegression(C=self.cfg.C, class_weight="balanced", max_iter=2000)

    def fit(self, rows: list[dict[str, Any]]) -> None:
        x = self.vectorizer.fit_transform([r["norm"] for r in rows])
        targets = np.stack([severity_targets(r["labels"])[0] for r in rows])
        masks = np.stack([severity_targets(r["labels"])[1] for r in rows])
        for ci in tqdm(range(len(CATEGORIES)), desc="baseline categories", leave=False):
            for k in range(3):
                keep = masks[:, ci, k] > 0
                y = targets[keep, ci, k]
                if y.sum() < 3 or y.sum() == len(y):
                    prior = float(np.clip(y.mean() if len(y) else 0.0, 1e-4, 1 - 1e-4))
                    self.severity_models[(ci, k)] = float(np.log(prior / (1 - prior)))
                    continue
                self.severity_models[(ci, k)] = self._lr().fit(x[keep], y)
        for name in NATIVE_HEADS:
            key = NATIVE_KEYS[name]
            idx = [i for i, r in enumerate(rows) if key in r.get("native", {})]
            ys = np.array([int(rows[i]["native"][key]) for i in idx])
            self.native_models[name] = self._lr().fit(x[idx], ys) if len(set(ys.tolist())) > 1 else None

    def logits(self, texts: list[str], normalized: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Severity log-odds (N, C, 3) and native logits (N, K) laid out like the neural model's."""
        restorer = getattr(self, "restorer", None)  # models saved before restoration existed lack it
        if normalized:
            norms = texts
        elif restorer is not None:
            norms = [restorer.model_view(t, normalize_text(t)) for t in texts]
        else:
            norms = [normalize_text(t) for t in texts]
        x = self.vectorizer.transform(norms)
        sev = np.zeros((len(norms), len(CATEGORIES), 3), dtype=np.float32)
        for (ci, k), model in self.severity_models.items():
            sev[:, ci, k] = model if isinstance(model, float) else model.decision_function(x)
        nat = np.zeros((len(norms), sum(NATIVE_HEADS.values())), dtype=np.float32)
        start = 0
        for name, n in NATIVE_HEADS.items():
            model = self.native_models.get(name)
            if model is not None:
                if n == 1:
                    nat[:, start] = model.decision_function(x)
                else:
                    proba = np.zeros((len(norms), n))
                    proba[:, model.classes_] = model.predict_proba(x)
                    nat[:, start : start + n] = np.log(proba + 1e-9)
            start += n
        return sev, nat


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the TF-IDF + logistic regression baseline.")
    parser.add_argument("--params", default="params.yaml", help="params file (sections 'baseline', 'train_text')")
    parser.add_argument("--data", default="data/prepared", type=Path)
    parser.add_argument("--out", default="models/baseline", type=Path)
    parser.add_argument("--diacritics", type=Path, help="diacritics restorer (diacritics stage), as train_text")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "baseline", BaselineConfig)
    restorer = DiacriticsRestorer.load(args.diacritics) if args.diacritics else None
    train_rows = load_rows(args.data / "train.jsonl")
    train_rows += unaccented_copies(train_rows, cfg.augment_no_diacritics, cfg.seed)
    train_rows = restore_rows(train_rows, restorer)
    dev_rows = restore_rows(load_rows(args.data / "dev.jsonl"), restorer)
    model = Baseline(cfg, restorer)
    model.fit(train_rows)
    sev, nat = model.logits([r["norm"] for r in dev_rows], normalized=True)
    t = np.stack([severity_targets(r["labels"])[0] for r in dev_rows])
    m = np.stack([severity_targets(r["labels"])[1] for r in dev_rows])
    model.calibration = calibrate(sev, t, m, cfg.recall_first, cfg.max_under_rating, load_policy())
    model.calibration.native_offsets = fit_native_offsets(nat, native_labels_of(dev_rows), NATIVE_HEADS)
    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.out / "baseline.joblib")
    (args.out / "calibration.json").write_text(model.calibration.model_dump_json(indent=2))
    print(json.dumps({"features": len(model.vectorizer.vocabulary_), "train_rows": len(train_rows)}))


def to_ngram_model(model: Baseline) -> NgramModel:
    """The baseline as plain arrays for serving (`vicas.ngrams`): columns = severity (C x 3), then native heads.

    A multi-class native head gets one column per class, to be read through a softmax; classes the
    training data lacked get a very low score.
    """
    vec = model.vectorizer
    n_sev, n_nat = len(CATEGORIES) * 3, sum(NATIVE_HEADS.values())
    weights = np.zeros((len(vec.vocabulary_), n_sev + n_nat), dtype=np.float32)
    bias = np.zeros(n_sev + n_nat, dtype=np.float32)
    for (ci, k), lr in model.severity_models.items():
        col = ci * 3 + k
        if isinstance(lr, float):
            bias[col] = lr
        else:
            weights[:, col], bias[col] = lr.coef_[0], lr.intercept_[0]
    start = n_sev
    for name, n in NATIVE_HEADS.items():
        lr = model.native_models.get(name)
        if lr is not None and n == 1:
            weights[:, start], bias[start] = lr.coef_[0], lr.intercept_[0]
        elif lr is not None:
            bias[start : start + n] = -30.0
            classes = [int(c) for c in lr.classes_]
            if len(classes) == 2:  # a binary model: scores (0, z) give the same softmax
                bias[start + classes[0]] = 0.0
                weights[:, start + classes[1]], bias[start + classes[1]] = lr.coef_[0], lr.intercept_[0]
            else:
                for j, c in enumerate(classes):
                    weights[:, start + c], bias[start + c] = lr.coef_[j], lr.intercept_[j]
        start += n
    lo, hi = vec.ngram_range
    return NgramModel(dict(vec.vocabulary_), vec.idf_.astype(np.float32), weights, bias, (int(lo), int(hi)))


if __name__ == "__main__":
    # run the importable module's main, so the pickled model refers to `training.text.baseline.Baseline`
    # (not `__main__.Baseline`, which other stages could not load)
    from training.text.baseline import main as module_main

    module_main()
