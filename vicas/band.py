"""The band as one decision: band probabilities, a child-first cost rule, and a review outcome.

The severity heads give, per category, calibrated P(severity >= k). Through the policy table each
(category, k) calls for a band, so the probability that an item's true band is at least b is

    P(band >= b) = 1 - prod_c (1 - P(severity_c >= k_c(b)))

where k_c(b) is the lowest severity of category c whose band is b or higher (categories treated as
independent; correlated categories make this an over-estimate, which errs toward the child).

Under-rating (a band too lenient, the error that exposes a child) costs `under_cost` per band step and
over-rating `over_cost`. For such linear costs the band of least expected cost is a quantile of the band
distribution: the lowest b with P(band > b) <= over_cost / (under_cost + over_cost). The item is never
served below the band its own severities call for.

What is left of the risk, P(band > served band), is the item's **under-rating risk**. Above the review
threshold the item is not decided automatically: it is served with the stricter band that brings the risk
under the threshold and marked `needs_review` for the console's queue (Chow's reject option). The
threshold is fitted on dev at export (the lowest share sent to review that keeps under-rating among the
items decided automatically at the policy's target) and stored in the model's calibration.

The combined probabilities are not themselves calibrated: independence adds a dozen small category
probabilities into a large band one, so the cost rule over-rates. `BandCalibration` maps each P(band >= b)
through a logistic curve fitted on dev rows with a known band (Platt scaling of the cumulative band
probabilities) before the rule reads them; it is fitted at export, before the review threshold.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, Field

from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band

N_BANDS = len(BAND_ORDER)
log = logging.getLogger(__name__)


def severity_band_table(bands: Mapping[str, Mapping[int, Band]]) -> np.ndarray:
    """(C, N_BANDS) index k-1 into the (C, 3) severity probabilities that reaches band b, or -1 for none.

    Column b says which threshold of category c is the lowest to call for band b or higher. Cached per
    distinct table: every classified item needs it.
    """
    key = tuple(tuple(bands[c][k].value for k in (1, 2, 3)) for c in CATEGORIES)
    return _band_table(key)


@lru_cache(maxsize=16)
def _band_table(key: tuple[tuple[str, str, str], ...]) -> np.ndarray:
    table = np.full((len(CATEGORIES), N_BANDS), -1, dtype=np.int64)
    for ci, row in enumerate(key):
        for bi, band in enumerate(BAND_ORDER):
            for k in (1, 2, 3):
                if Band(row[k - 1]).rank >= band.rank:
                    table[ci, bi] = k - 1
                    break
    table.setflags(write=False)  # shared by every caller
    return table


def band_table_key(table: np.ndarray, combine: str) -> str:
    """Names one band table and one way of combining: a band calibration applies to these only."""
    digest = hashlib.sha256(np.ascontiguousarray(table, dtype=np.int64).tobytes() + combine.encode())
    return digest.hexdigest()[:16]


class BandCalibration(BaseModel):
    """P(band >= b) recalibrated: sigmoid(slope_b * logit(p) + intercept_b) for each band b above P.

    Fitted at export on dev rows with a known band (training.calibration.fit_band_calibration) for the
    band table and combine rule named by `key`; under a policy with another table it does not apply and
    the combined probabilities are used as they are.
    """

    key: str = Field(description="band_table_key of the policy table and combine rule it was fitted for")
    slopes: list[float] = Field(description="per band above P (K, T13, T16, T18, C)")
    intercepts: list[float] = Field(description="per band above P (K, T13, T16, T18, C)")
    rule: str = Field("", description="how it was fitted, with its dev figures")

    def applies_to(self, table: np.ndarray, combine: str) -> bool:
        return self.key == band_table_key(table, combine)

    def apply(self, at_least: np.ndarray) -> np.ndarray:
        """(..., N_BANDS) combined P(band >= b) -> calibrated, monotone in b, P(band >= P) = 1."""
        p = np.clip(np.asarray(at_least, dtype=np.float64), 1e-6, 1 - 1e-6)
        z = np.log(p[..., 1:] / (1 - p[..., 1:])) * np.asarray(self.slopes) + np.asarray(self.intercepts)
        out = np.concatenate([np.ones((*p.shape[:-1], 1)), 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))], axis=-1)
        return np.minimum.accumulate(out, axis=-1)


def band_at_least(
    severity_probs: np.ndarray,
    table: np.ndarray,
    combine: str = "independent",
    calibration: BandCalibration | None = None,
) -> np.ndarray:
    """(..., C, 3) calibrated P(severity >= k) -> (..., N_BANDS) P(band >= b); P(band >= P) = 1.

    `combine` says how the categories' probabilities make the band's: "independent" (1 - prod(1 - p), the
    categories as independent events) or "max" (the largest: categories that move together, such as
    profanity and harassment in one insult, the Fréchet lower bound). Independence adds up a dozen small
    probabilities into a large one; which fits is measured on dev (benchmarks/band_operating_point.py).
    A `calibration` fitted for this table and rule then maps the result onto dev's band frequencies.
    """
    probs = np.asarray(severity_probs, dtype=np.float64)
    lead = probs.shape[:-2]
    if combine not in ("independent", "max"):
        raise ValueError(f"combine must be 'independent' or 'max', got {combine!r}")
    none = np.ones((*lead, N_BANDS))
    top = np.zeros((*lead, N_BANDS))
    for ci in range(len(CATEGORIES)):
        for bi in range(1, N_BANDS):
            k = table[ci, bi]
            if k >= 0:
                none[..., bi] *= 1.0 - probs[..., ci, k]
                top[..., bi] = np.maximum(top[..., bi], probs[..., ci, k])
    out = 1.0 - none if combine == "independent" else top
    out[..., 0] = 1.0
    if calibration is not None:
        if calibration.applies_to(table, combine):
            return calibration.apply(out)
        _say_not_applied(calibration.key, band_table_key(table, combine))
    # monotone in b (it is by construction; guard against rounding)
    return np.minimum.accumulate(out, axis=-1)


@lru_cache(maxsize=16)
def _say_not_applied(fitted_for: str, policy_key: str) -> None:
    """Once per pair: a policy with its own band table gets the combined probabilities, said in the log."""
    log.warning(
        "the text model's band calibration was fitted for another band table or combine rule (%s, this policy: %s): "
        "band probabilities are used uncalibrated; refit with `dvc repro export_text` under this policy",
        fitted_for,
        policy_key,
    )


def combine_at_least(parts: Sequence[np.ndarray], combine: str = "independent") -> np.ndarray:
    """P(band >= b) of an item made of parts (a text, OCR texts, pictures), combined as the categories are."""
    if combine == "max":
        out = np.asarray(np.max(np.asarray(parts, dtype=np.float64), axis=0), dtype=np.float64)
    else:
        none = np.ones(N_BANDS)
        for p in parts:
            none *= 1.0 - np.asarray(p, dtype=np.float64)
        out = 1.0 - none
    out[0] = 1.0
    return out


def certain_at_least(band: Band) -> np.ndarray:
    """A part whose band is known (a picture's deterministic reading, a hash match): 1 up to it, 0 above."""
    return np.array([1.0 if b.rank <= band.rank else 0.0 for b in BAND_ORDER])


@dataclass(frozen=True)
class BandDecision:
    band: Band  # the band served
    needs_review: bool
    risk: float  # P(true band > served band) under the model's probabilities
    automatic_band: Band  # the cost rule's band, before any review escalation
    at_least: tuple[float, ...]  # P(band >= b) for b in BAND_ORDER


def lowest_band_within(at_least: np.ndarray, max_risk: float) -> int:
    """The lowest band index b with P(band > b) <= max_risk."""
    for b in range(N_BANDS):
        above = at_least[b + 1] if b + 1 < N_BANDS else 0.0
        if above <= max_risk + 1e-12:
            return b
    return N_BANDS - 1


def decide_band(
    at_least: np.ndarray,
    floor: Band,
    under_cost: float,
    over_cost: float,
    review_risk: float | None,
) -> BandDecision:
    """Child-first band of least expected cost, never below `floor`; review when the risk stays high."""
    quantile_risk = over_cost / (under_cost + over_cost)
    b = max(lowest_band_within(at_least, quantile_risk), floor.rank)
    risk = float(at_least[b + 1]) if b + 1 < N_BANDS else 0.0
    served, review = b, False
    if review_risk is not None and risk > review_risk:
        review = True
        served = max(b, lowest_band_within(at_least, review_risk))
    served_risk = float(at_least[served + 1]) if served + 1 < N_BANDS else 0.0
    return BandDecision(
        band=BAND_ORDER[served],
        needs_review=review,
        risk=round(risk if review else served_risk, 4),
        automatic_band=BAND_ORDER[b],
        at_least=tuple(round(float(x), 4) for x in at_least),
    )


@dataclass(frozen=True)
class ReviewPoint:
    review_risk: float
    review_share: float
    under_rated_auto: float  # among items decided automatically
    over_rated: float  # among all items, at the served band


def risk_coverage(
    at_least: np.ndarray,
    floors: np.ndarray,
    true_ranks: np.ndarray,
    under_cost: float,
    over_cost: float,
    thresholds: Sequence[float],
) -> list[ReviewPoint]:
    """Under-rating among items decided automatically against the share sent to review, per threshold.

    `at_least` (N, N_BANDS), `floors` (N,) band ranks the severities call for, `true_ranks` (N,).
    """
    points = []
    for t in thresholds:
        served, review = [], []
        for p, f in zip(at_least, floors, strict=True):
            d = decide_band(p, BAND_ORDER[int(f)], under_cost, over_cost, float(t))
            served.append(d.band.rank)
            review.append(d.needs_review)
        s, r = np.array(served), np.array(review, dtype=bool)
        auto = ~r
        under = float((s[auto] < true_ranks[auto]).mean()) if auto.any() else 0.0
        points.append(ReviewPoint(float(t), float(r.mean()), under, float((s > true_ranks).mean())))
    return points


def fit_review_risk(
    points: Sequence[ReviewPoint], target_under_rating: float, max_share: float
) -> tuple[ReviewPoint, str]:
    """The operating point: the least review that meets the target; else the most review allowed."""
    allowed = [p for p in points if p.review_share <= max_share + 1e-9]
    if not allowed:
        best = min(points, key=lambda p: p.review_share)
        return best, f"no threshold keeps review at or under {max_share:.0%}; least review taken"
    meeting = [p for p in allowed if p.under_rated_auto <= target_under_rating + 1e-9]
    if meeting:
        best = min(meeting, key=lambda p: (p.review_share, -p.review_risk))
        return best, (
            f"least review ({best.review_share:.1%}) that keeps under-rating among automatic decisions at or "
            f"under {target_under_rating:.0%} on dev"
        )
    best = min(allowed, key=lambda p: (p.under_rated_auto, p.review_share))
    return best, (
        f"target {target_under_rating:.0%} not reachable within {max_share:.0%} review on dev; "
        f"lowest under-rating within the review cap taken"
    )
