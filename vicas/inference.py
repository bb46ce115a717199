"""From model outputs to the contract: calibration, thresholds, severities, evidence.

Numpy only. Evaluation (on PyTorch or ONNX outputs) and serving call the same
functions, so the numbers measured are the numbers served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from vicas.band import BandCalibration
from vicas.normalize import Normalized
from vicas.taxonomy import ALLOWED_SEVERITIES, CATEGORIES


class Calibration(BaseModel):
    """Per category and threshold (severity >= 1, 2, 3): temperature and decision threshold."""

    temperatures: dict[str, list[float]] = Field(description="category -> 3 temperatures (logit / T)")
    thresholds: dict[str, list[float]] = Field(description="category -> 3 probability thresholds")
    evidence_threshold: float = Field(0.5, description="token probability above which a token is evidence")
    rule: str = Field("", description="how thresholds were chosen")
    review_risk: float | None = Field(
        None,
        description="under-rating risk above which an item goes to review (vicas.band), fitted on dev at export "
        "for the policy's targets; None: no review outcome",
    )
    review_rule: str = Field("", description="how review_risk was chosen, with its dev figures")
    band_calibration: BandCalibration | None = Field(
        None,
        description="the band probabilities' recalibration (vicas.band), fitted on dev at export before "
        "review_risk; None (older models, too few dev rows with a known band): the combined probabilities",
    )
    native_offsets: dict[str, list[float]] = Field(
        default_factory=dict,
        description="native head -> offsets added to its logits before the decision (argmax, or > 0 for a "
        "one-logit head), fitted on dev for that benchmark's metric; a missing head decides at offset 0",
    )

    @classmethod
    def identity(cls) -> Calibration:
        return cls(
            temperatures={c: [1.0, 1.0, 1.0] for c in CATEGORIES},
            thresholds={c: [0.5, 0.5, 0.5] for c in CATEGORIES},
            rule="uncalibrated: T = 1, thresholds 0.5",
        )

    def temperature_array(self) -> np.ndarray:
        return np.array([self.temperatures[c] for c in CATEGORIES], dtype=np.float32)

    def threshold_array(self) -> np.ndarray:
        return np.array([self.thresholds[c] for c in CATEGORIES], dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30, 30))))


def severity_probabilities(logits: np.ndarray, calibration: Calibration) -> np.ndarray:
    """(B, C, 3) cumulative logits -> calibrated P(severity >= k), made monotone in k."""
    probs = sigmoid(logits / calibration.temperature_array()[None])
    return np.asarray(np.minimum.accumulate(probs, axis=-1), dtype=np.float32)


def native_decisions(logits: np.ndarray, offsets: list[float] | None = None) -> np.ndarray:
    """(N, K) logits (or log-probabilities) of one native head -> labels.

    One logit: label 1 when logit + offset > 0. Several: argmax of logits + offsets. The offsets move the
    decision toward minority classes, which the macro-F1 of an imbalanced benchmark rewards.
    """
    z = logits + np.asarray(offsets if offsets else [0.0] * logits.shape[1], dtype=np.float64)[None]
    return (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else z.argmax(axis=1)


def native_label(probs: list[float], offsets: list[float] | None = None) -> int:
    """The served decision of one native head from the probabilities a TextPrediction carries."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-9, 1 - 1e-9)
    logits = np.log(p / (1 - p)) if len(p) == 1 else np.log(p)
    return int(native_decisions(logits[None], offsets)[0])


def snap_severity(category: str, severity: int) -> int:
    """Map onto a severity the contract defines for the category (scam has no 1: present means 2)."""
    allowed = sorted(ALLOWED_SEVERITIES[category])
    if severity in allowed:
        return severity
    return min((s for s in allowed if s >= severity), default=allowed[-1])


def severities(probs: np.ndarray, calibration: Calibration) -> list[dict[str, int]]:
    """(B, C, 3) probabilities -> per item {category: severity}, thresholds applied in order."""
    passed = probs >= calibration.threshold_array()[None]
    # severity = number of consecutive thresholds passed from k = 1
    run = np.cumprod(passed, axis=-1).sum(-1)
    out = []
    for row in run:
        out.append({c: snap_severity(c, int(s)) for c, s in zip(CATEGORIES, row, strict=True)})
    return out


def category_scores(probs: np.ndarray) -> np.ndarray:
    """(B, C, 3) -> (B, C): the probability that each category is present at all."""
    return probs[..., 0]


@dataclass(frozen=True)
class Evidence:
    category: str
    start: int  # on the original text
    end: int
    text: str
    score: float


def evidence_spans(
    token_probs: np.ndarray,
    offsets: list[tuple[int, int]],
    normalized: Normalized,
    categories: list[str],
    threshold: float,
    max_spans: int = 5,
) -> list[Evidence]:
    """Per flagged category, contiguous evidence tokens as spans of the original text.

    `token_probs` is (T, C) for one item; `offsets` the tokens' character spans on
    `normalized.text` ((0, 0) for special tokens). Falls back to the single most
    indicative token when no token passes the threshold, so every flag has evidence.
    """
    out: list[Evidence] = []
    for cat in categories:
        ci = CATEGORIES.index(cat)
        col = token_probs[:, ci]
        valid = [i for i, (s, e) in enumerate(offsets) if e > s]
        if not valid:
            continue
        hits = [i for i in valid if col[i] >= threshold] or [max(valid, key=lambda i: col[i])]
        groups: list[list[int]] = []
        for i in hits:
            if groups and (i == groups[-1][-1] + 1 or offsets[i][0] <= offsets[groups[-1][-1]][1] + 1):
                groups[-1].append(i)
            else:
                groups.append([i])
        scored = sorted(groups, key=lambda g: -float(col[g].max()))[:max_spans]
        for g in sorted(scored, key=lambda g: g[0]):
            s, e = offsets[g[0]][0], offsets[g[-1]][1]
            # tokens may start on the space before a word; keep the span on the word
            while s < e and normalized.text[s] == " ":
                s += 1
            if s >= e:
                continue
            os_, oe = normalized.to_original(s, e)
            out.append(Evidence(cat, os_, oe, normalized.original[os_:oe], round(float(col[g].max()), 4)))
    return out
