"""Calibration on dev: a temperature per category and threshold, and decision thresholds by a stated rule."""

from __future__ import annotations

import numpy as np

from vicas.inference import Calibration
from vicas.taxonomy import CATEGORIES


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """One temperature minimising the log-loss of sigmoid(logit / T) on dev (grid search, robust)."""
    if len(targets) < 20 or targets.min() == targets.max():
        return 1.0
    best_t, best = 1.0, float("inf")
    for temp in np.exp(np.linspace(np.log(0.25), np.log(8.0), 41)):
        p = 1 / (1 + np.exp(-np.clip(logits / temp, -30, 30)))
        ll = -np.mean(targets * np.log(p + 1e-7) + (1 - targets) * np.log(1 - p + 1e-7))
        if ll < best:
            best, best_t = ll, float(temp)
    return best_t


def best_threshold(probs: np.ndarray, targets: np.ndarray, beta: float) -> float:
    """Threshold maximising F-beta on dev; 0.5 when dev has too few positives to choose."""
    if targets.sum() < 5:
        return 0.5
    best_t, best = 0.5, -1.0
    for t in np.linspace(0.05, 0.95, 91):
        pred = probs >= t
        tp = float((pred & (targets > 0)).sum())
        fp = float((pred & (targets == 0)).sum())
        fn = float((~pred & (targets > 0)).sum())
        b2 = beta * beta
        f = (1 + b2) * tp / max(1e-9, (1 + b2) * tp + b2 * fn + fp)
        if f > best:
            best, best_t = f, float(t)
    return round(best_t, 3)


def calibrate(logits: np.ndarray, t: np.ndarray, m: np.ndarray, recall_first: list[str]) -> Calibration:
    """Per category and threshold: temperature by log-loss, decision threshold by F-beta on dev.

    `logits`, `t` (targets) and `m` (masks) are (N, C, 3); masked cells are not used.
    """
    temps: dict[str, list[float]] = {}
    thresholds: dict[str, list[float]] = {}
    for ci, cat in enumerate(CATEGORIES):
        temps[cat], thresholds[cat] = [], []
        for k in range(3):
            keep = m[:, ci, k] > 0
            lg, y = logits[keep, ci, k], t[keep, ci, k]
            temp = fit_temperature(lg, y)
            p = 1 / (1 + np.exp(-np.clip(lg / temp, -30, 30)))
            beta = 2.0 if cat in recall_first else 1.0
            temps[cat].append(round(temp, 4))
            thresholds[cat].append(best_threshold(p, y, beta) if k == 0 else 0.5)
    rule = (
        "temperature per category and severity threshold fitted on dev by log-loss; presence threshold "
        f"maximises F1 on dev (F2 for {', '.join(recall_first)}: missing them costs more); "
        "higher severities use 0.5 on calibrated probabilities"
    )
    return Calibration(temperatures=temps, thresholds=thresholds, evidence_threshold=0.5, rule=rule)
