"""Metric functions shared by the evaluation stages (pure numpy / scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from vicas.benchmarks import span_f1 as span_f1  # one definition, shared with `vicas benchmark`
from vicas.policy import Policy, decide
from vicas.taxonomy import CATEGORIES, Band


def presence_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, dict[str, float]]:
    """Per category P/R/F1 for 'severity >= 1' on the items where presence is known; plus macro-F1.

    pred, target, mask: (N, C) with 0/1 values.
    """
    out: dict[str, dict[str, float]] = {}
    f1s = []
    for ci, cat in enumerate(CATEGORIES):
        keep = mask[:, ci] > 0
        y, p = target[keep, ci].astype(int), pred[keep, ci].astype(int)
        if keep.sum() == 0 or y.sum() == 0:
            continue
        pr, rc, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
        out[cat] = {
            "precision": round(float(pr), 4),
            "recall": round(float(rc), 4),
            "f1": round(float(f1), 4),
            "support": int(y.sum()),
            "n": int(keep.sum()),
        }
        f1s.append(f1)
    out["macro"] = {"f1": round(float(np.mean(f1s)), 4) if f1s else 0.0, "categories": len(f1s)}
    return out


def band_metrics(pred_sev: list[dict[str, int]], true_sev: list[dict[str, int]], policy: Policy) -> dict[str, float]:
    """Exact and within-one band accuracy, under-rating (exposes a child) and over-rating rates."""
    if not true_sev:
        return {}
    p = np.array([decide(s, policy).band.rank for s in pred_sev])
    t = np.array([decide(s, policy).band.rank for s in true_sev])
    return {
        "exact": round(float((p == t).mean()), 4),
        "within_one": round(float((np.abs(p - t) <= 1).mean()), 4),
        "under_rating": round(float((p < t).mean()), 4),
        "over_rating": round(float((p > t).mean()), 4),
        "n": len(t),
    }


def band_confusion(pred_sev: list[dict[str, int]], true_sev: list[dict[str, int]], policy: Policy) -> list[list[int]]:
    n = len(Band)
    m = [[0] * n for _ in range(n)]
    for ps, ts in zip(pred_sev, true_sev, strict=True):
        m[decide(ts, policy).band.rank][decide(ps, policy).band.rank] += 1
    return m


def macro_f1(y: list[int], p: list[int]) -> float:
    return round(float(f1_score(y, p, average="macro", zero_division=0)), 4)


def binary_f1(y: list[int], p: list[int]) -> float:
    return round(float(f1_score(y, p, average="binary", zero_division=0)), 4)


def reliability(probs: np.ndarray, target: np.ndarray, bins: int = 10) -> tuple[list[dict[str, float]], float]:
    """Reliability curve rows (bin, mean predicted, observed rate, count) and the expected calibration error."""
    rows = []
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for b in range(bins):
        sel = (probs >= edges[b]) & ((probs < edges[b + 1]) if b < bins - 1 else (probs <= 1))
        if sel.sum() == 0:
            continue
        conf, acc = float(probs[sel].mean()), float(target[sel].mean())
        rows.append({"bin": b, "predicted": round(conf, 4), "observed": round(acc, 4), "count": int(sel.sum())})
        ece += sel.sum() / len(probs) * abs(conf - acc)
    return rows, round(float(ece), 4)


def served_bands(
    at_least: np.ndarray, floors: np.ndarray, policy: Policy, review_risk: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """The band each item is served with under the policy's decision rule, and whether it goes to review."""
    from vicas.band import decide_band
    from vicas.taxonomy import BAND_ORDER

    rule = policy.decision
    threshold = rule.threshold(review_risk)
    out, review = [], []
    for p, f in zip(at_least, floors, strict=True):
        d = decide_band(p, BAND_ORDER[int(f)], rule.under_cost, rule.over_cost, threshold)
        out.append(d.band.rank)
        review.append(d.needs_review)
    return np.array(out, dtype=int), np.array(review, dtype=bool)


def band_decision_metrics(served: np.ndarray, review: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The band as served: exact, within one, over-rated (all items), under-rated among the items decided
    automatically and among all, and the share sent to review."""
    if len(truth) == 0:
        return {}
    auto = ~review
    return {
        "exact": round(float((served == truth).mean()), 4),
        "within_one": round(float((np.abs(served - truth) <= 1).mean()), 4),
        "under_rating_auto": round(float((served[auto] < truth[auto]).mean()), 4) if auto.any() else 0.0,
        "under_rating": round(float((served < truth).mean()), 4),
        "over_rating": round(float((served > truth).mean()), 4),
        "review_share": round(float(review.mean()), 4),
        "n": len(truth),
    }
