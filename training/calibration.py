"""Calibration on dev: a temperature per category and threshold, and decision thresholds by a stated rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from vicas.inference import Calibration, severities, severity_probabilities
from vicas.policy import Policy, decide
from vicas.taxonomy import BAND_ORDER, CATEGORIES

BAND_NAMES = [b.value for b in BAND_ORDER]


def log_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean binary log-loss of sigmoid(logits) against 0/1 targets."""
    p = 1 / (1 + np.exp(-np.clip(logits, -30, 30)))
    return float(-np.mean(targets * np.log(p + 1e-7) + (1 - targets) * np.log(1 - p + 1e-7)))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """One temperature minimising the log-loss of sigmoid(logit / T) on dev (grid search, robust)."""
    if len(targets) < 20 or targets.min() == targets.max():
        return 1.0
    best_t, best = 1.0, float("inf")
    for temp in np.exp(np.linspace(np.log(0.25), np.log(8.0), 41)):
        ll = log_loss(logits / temp, targets)
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


def calibrate(
    logits: np.ndarray,
    t: np.ndarray,
    m: np.ndarray,
    recall_first: list[str],
    max_under_rating: float | None = None,
    policy: Policy | None = None,
) -> Calibration:
    """Per category and threshold: temperature by log-loss, decision threshold by F-beta on dev.

    `logits`, `t` (targets) and `m` (masks) are (N, C, 3); masked cells are not used. With
    `max_under_rating`, every threshold is then lowered together until the band under-rating rate on the
    fully annotated dev rows is at most that (see `lower_for_under_rating`).
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
    calibration = Calibration(temperatures=temps, thresholds=thresholds, evidence_threshold=0.5, rule=rule)
    if max_under_rating is not None and policy is not None:
        calibration = lower_for_under_rating(calibration, logits, t, m, max_under_rating, policy)
    return calibration


def under_rating_rate(probs: np.ndarray, true_sev: np.ndarray, calibration: Calibration, policy: Policy) -> float:
    """Share of rows whose predicted band is below the band of their true severities."""
    pred = severities(probs, calibration)
    true = [{c: int(row[ci]) for ci, c in enumerate(CATEGORIES)} for row in true_sev]
    under = [decide(p, policy).band.rank < decide(q, policy).band.rank for p, q in zip(pred, true, strict=True)]
    return float(np.mean(under))


def lower_for_under_rating(
    calibration: Calibration,
    logits: np.ndarray,
    t: np.ndarray,
    m: np.ndarray,
    target: float,
    policy: Policy,
    max_shift: float = 4.0,
) -> Calibration:
    """Lower every threshold by one common logit shift, the smallest that keeps under-rating <= target.

    Under-rating exposes a child to what their band should have kept away; over-rating sends an item to a
    reviewer. Under this rule the F1-optimal thresholds give way to the child-safety target, and the cost
    shows as over-rating in evaluation. Only rows with every category annotated (the own corpus) have a
    true band; fewer than 50 such rows leave the thresholds as they are.
    """
    full = m.reshape(len(m), -1).all(axis=1)
    if full.sum() < 50:
        return calibration
    probs = severity_probabilities(logits[full], calibration)
    true_sev = t[full].sum(axis=-1)
    base = calibration.threshold_array().astype(np.float64)
    base_logit = np.log(base / (1 - base))
    chosen, shift_used = calibration, 0.0
    for shift in np.arange(0.0, max_shift + 1e-9, 0.1):
        lowered = 1 / (1 + np.exp(-(base_logit - shift)))
        thresholds = {c: [round(float(v), 4) for v in lowered[ci]] for ci, c in enumerate(CATEGORIES)}
        chosen, shift_used = calibration.model_copy(update={"thresholds": thresholds}), float(shift)
        if under_rating_rate(probs, true_sev, chosen, policy) <= target:
            break
    return chosen.model_copy(
        update={
            "rule": calibration.rule + f"; then every threshold lowered by a common logit shift of "
            f"{shift_used:.1f}, the smallest keeping band under-rating on the fully annotated dev rows "
            f"<= {target:.0%} (policy {policy.version})"
        }
    )


# The metric each native head's benchmark publishes (macro-F1 unless named here): its decision rule maximises it.
POSITIVE_CLASS_F1 = ("victsd_toxic", "smishing")


def native_metric(head: str, y: np.ndarray, pred: np.ndarray) -> float:
    from training.metrics import binary_f1, macro_f1

    if head in POSITIVE_CLASS_F1:
        return binary_f1(y.tolist(), pred.tolist())
    return macro_f1(y.tolist(), pred.tolist())


def fit_head_offsets(head: str, logits: np.ndarray, y: np.ndarray, rounds: int = 3) -> list[float]:
    """Offsets for one native head maximising its benchmark metric on (logits, y).

    One logit: the best threshold among the logits' quantiles (as an offset, -threshold). Several: coordinate
    ascent on per-class offsets in [-3, 3] (class 0 fixed at 0). Zeros when the labels are too few to choose.
    """
    k = logits.shape[1]
    if len(y) < 50 or len(set(y.tolist())) < 2:
        return [0.0] * k
    if k == 1:
        candidates = np.unique(np.quantile(logits[:, 0], np.linspace(0.02, 0.98, 97)))
        scores = [native_metric(head, y, (logits[:, 0] > c).astype(int)) for c in candidates]
        best = max(range(len(candidates)), key=lambda i: (round(scores[i], 6), -abs(candidates[i])))
        return [round(float(-candidates[best]), 4)]
    offsets = np.zeros(k)
    grid = np.round(np.linspace(-3.0, 3.0, 61), 2)
    best_score = native_metric(head, y, (logits + offsets).argmax(1))
    for _ in range(rounds):
        improved = False
        for j in range(1, k):
            for v in grid:
                trial = offsets.copy()
                trial[j] = v
                score = native_metric(head, y, (logits + trial).argmax(1))
                if score > best_score + 1e-6 or (abs(score - best_score) <= 1e-6 and abs(v) < abs(offsets[j])):
                    best_score, offsets, improved = max(score, best_score), trial, True
        if not improved:
            break
    return [round(float(v), 4) for v in offsets]


def native_labels_of(rows: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Each prepared row's native labels (head -> class); heads a source does not annotate are absent."""
    return [{k: int(v) for k, v in r.get("native", {}).items()} for r in rows]


def fit_native_offsets(nat: np.ndarray, labels: list[dict[str, int]], heads: dict[str, int]) -> dict[str, list[float]]:
    """Per native head, decision offsets fitted on the rows that carry its label.

    `nat` is (N, sum of head sizes) laid out in `heads` order; `labels[i]` holds row i's native labels.
    """
    out: dict[str, list[float]] = {}
    start = 0
    for head, n in heads.items():
        idx = [i for i, lab in enumerate(labels) if head in lab]
        if idx:
            y = np.array([labels[i][head] for i in idx])
            out[head] = fit_head_offsets(head, nat[idx, start : start + n].astype(np.float64), y)
        start += n
    return out


# --- the band decision's review threshold (vicas.band) -----------------------------------------------------

REVIEW_GRID = tuple(round(float(x), 3) for x in np.arange(0.005, 0.5001, 0.005))  # up to the median rule


def band_readings(probs: np.ndarray, calibration: Calibration, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """P(band >= b) per row (through the calibration's band calibration, as served), and the band each
    row's predicted severities call for (the decision's floor)."""
    from vicas.band import band_at_least

    at_least = band_at_least(probs, policy.band_table(), policy.decision.combine, calibration.band_calibration)
    floors = np.array([decide(s, policy).band.rank for s in severities(probs, calibration)])
    return at_least, floors


def band_inputs(
    probs: np.ndarray, true_sev: list[dict[str, int]], calibration: Calibration, policy: Policy
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows with a known band: `band_readings` and the true band."""
    at_least, floors = band_readings(probs, calibration, policy)
    truth = np.array([decide(s, policy).band.rank for s in true_sev])
    return at_least, floors, truth


def _binary_log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_band_calibration(
    probs: np.ndarray, true_sev: list[dict[str, int]], calibration: Calibration, policy: Policy
) -> Calibration:
    """Platt scaling of each P(band >= b) on dev rows with a known band (vicas.band.BandCalibration).

    One logistic regression per band on the logit of the combined probability; a band with fewer than 10
    dev rows on either side keeps its combined probability (slope 1, intercept 0). Fewer than 50 rows: none.
    """
    from sklearn.linear_model import LogisticRegression

    from vicas.band import N_BANDS, BandCalibration, band_table_key

    raw = calibration.model_copy(update={"band_calibration": None})
    if len(true_sev) < 50:
        return raw
    at_least, _, truth = band_inputs(probs, true_sev, raw, policy)
    slopes, intercepts, parts = [], [], []
    for b in range(1, N_BANDS):
        y = (truth >= b).astype(np.int64)
        p = np.clip(at_least[:, b], 1e-6, 1 - 1e-6)
        x = np.log(p / (1 - p))[:, None]
        slope, intercept = 1.0, 0.0
        if min(int(y.sum()), int((1 - y).sum())) >= 10:
            fit = LogisticRegression(C=100.0).fit(x, y)
            if fit.coef_[0, 0] > 0:  # a curve that falls with the model's probability would invert the rule
                slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        slopes.append(round(slope, 5))
        intercepts.append(round(intercept, 5))
        cal = 1 / (1 + np.exp(-np.clip(slope * x[:, 0] + intercept, -30, 30)))
        parts.append(
            f"{BAND_NAMES[b]}: true {y.mean():.1%}, combined {p.mean():.1%} -> {cal.mean():.1%} "
            f"(log-loss {_binary_log_loss(p, y):.3f} -> {_binary_log_loss(cal, y):.3f})"
        )
    band = BandCalibration(
        key=band_table_key(policy.band_table(), policy.decision.combine),
        slopes=slopes,
        intercepts=intercepts,
        rule=f"Platt scaling per band on {len(true_sev)} dev rows with a known band (policy {policy.version}, "
        f"combine {policy.decision.combine}); mean P(band >= b): " + "; ".join(parts),
    )
    return calibration.model_copy(update={"band_calibration": band})


def fit_review(
    probs: np.ndarray, true_sev: list[dict[str, int]], calibration: Calibration, policy: Policy
) -> Calibration:
    """The review threshold for the policy's targets, from the dev risk-coverage curve (rows with a known band).

    Fewer than 50 such rows: no review outcome (the rule says why).
    """
    from vicas.band import fit_review_risk, risk_coverage

    if len(true_sev) < 50:
        return calibration.model_copy(update={"review_risk": None, "review_rule": "too few fully labelled dev rows"})
    rule = policy.decision
    at_least, floors, truth = band_inputs(probs, true_sev, calibration, policy)
    points = risk_coverage(at_least, floors, truth, rule.under_cost, rule.over_cost, REVIEW_GRID)
    best, why = fit_review_risk(points, rule.review_target_under_rating, rule.review_max_share)
    text = (
        f"{why}: review when P(true band above the served band) > {best.review_risk}; on {len(true_sev)} dev rows "
        f"with a known band: {best.review_share:.1%} to review, under-rating among automatic decisions "
        f"{best.under_rated_auto:.1%}, over-rating {best.over_rated:.1%} (costs under {rule.under_cost}, over "
        f"{rule.over_cost}; policy {policy.version})"
    )
    return calibration.model_copy(update={"review_risk": best.review_risk, "review_rule": text})


def known_band_rows(rows: list[dict[str, Any]]) -> list[int]:
    """Indices of prepared rows annotated on every category with exact severities (a true band exists)."""
    return [
        i
        for i, r in enumerate(rows)
        if len(r["labels"]) == len(CATEGORIES) and all(lo == hi for lo, hi in r["labels"].values())
    ]
