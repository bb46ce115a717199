"""Decision rules fitted on dev: native-head offsets (benchmarks) and the under-rating rule (bands)."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import calibrate, fit_head_offsets, fit_native_offsets, under_rating_rate
from training.metrics import binary_f1, macro_f1
from training.text.evaluate import crossfit_decisions, fixed_decisions
from training.text.model import NATIVE_HEADS, native_slices
from vicas.inference import native_decisions, native_label, severity_probabilities
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES


def imbalanced_three_class(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits that favour the majority class: argmax under-predicts the two minority classes."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.8, 0.12, 0.08])
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += 1.2
    logits[:, 0] += 2.5
    return logits, y


def rare_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    return (rng.normal(size=n) + 1.8 * y - 3.0)[:, None], y


def test_offsets_raise_macro_f1_of_an_imbalanced_head_on_fresh_rows():
    fit_logits, fit_y = imbalanced_three_class(3000, seed=1)
    offsets = fit_head_offsets("vihsd", fit_logits, fit_y)
    assert offsets[0] == 0.0 and max(offsets[1:]) > 0  # toward a minority class
    logits, y = imbalanced_three_class(3000, seed=2)  # rows the offsets were not fitted on
    plain = macro_f1(y.tolist(), logits.argmax(1).tolist())
    tuned = macro_f1(y.tolist(), native_decisions(logits, offsets).tolist())
    assert tuned > plain + 0.05


def test_binary_threshold_raises_positive_class_f1_on_fresh_rows():
    fit_logits, fit_y = rare_binary(4000, seed=3)
    offsets = fit_head_offsets("victsd_toxic", fit_logits, fit_y)
    assert len(offsets) == 1 and offsets[0] > 0  # a rare class: the threshold moves below logit 0
    logits, y = rare_binary(4000, seed=4)
    plain = binary_f1(y.tolist(), (logits[:, 0] > 0).astype(int).tolist())
    tuned = binary_f1(y.tolist(), native_decisions(logits, offsets).tolist())
    assert tuned > plain + 0.05


def test_too_few_labels_leave_the_plain_rule():
    logits, y = imbalanced_three_class(30, seed=5)
    assert fit_head_offsets("vihsd", logits, y) == [0.0, 0.0, 0.0]
    one_class, _ = rare_binary(200, seed=5)
    assert fit_head_offsets("victsd_toxic", one_class, np.zeros(200, dtype=int)) == [0.0]


def test_served_label_from_probabilities_equals_the_decision_on_logits():
    logits, _ = imbalanced_three_class(200, seed=6)
    offsets = [0.0, 0.7, 1.1]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    served = [native_label(p.tolist(), offsets) for p in probs]
    assert served == native_decisions(logits, offsets).tolist()
    binary, _ = rare_binary(200, seed=7)
    p1 = 1 / (1 + np.exp(-binary[:, 0]))
    assert [native_label([p], [0.5]) for p in p1] == native_decisions(binary, [0.5]).tolist()


def test_cross_fitted_decisions_never_use_the_scored_rows_labels():
    n = 800
    logits, y = imbalanced_three_class(n, seed=8)
    sl = native_slices()
    nat = np.zeros((n, sum(NATIVE_HEADS.values())))
    nat[:, sl["vihsd"]] = logits
    rows = [{"source": "vihsd", "native": {"vihsd": int(v)}} for v in y]
    first = crossfit_decisions(nat, rows, seed=0)["vihsd"]
    fold = np.random.default_rng(0).integers(0, 2, size=n)  # the folds crossfit_decisions draws
    flipped = [
        {"source": "vihsd", "native": {"vihsd": (int(v) + 1) % 3 if f == 0 else int(v)}}
        for v, f in zip(y, fold, strict=True)
    ]
    second = crossfit_decisions(nat, flipped, seed=0)["vihsd"]
    # changing fold 0's labels changes only the offsets fold 1 is scored with
    assert (first[fold == 0] == second[fold == 0]).all()
    assert fixed_decisions(nat, {})["vihsd"].tolist() == logits.argmax(1).tolist()


def test_fit_native_offsets_uses_only_rows_with_the_label():
    logits, y = imbalanced_three_class(600, seed=9)
    sl = native_slices()
    nat = np.zeros((1200, sum(NATIVE_HEADS.values())))
    nat[:600, sl["vihsd"]] = logits
    labels = [{"vihsd": int(v)} for v in y] + [{} for _ in range(600)]
    offsets = fit_native_offsets(nat, labels, NATIVE_HEADS)
    assert set(offsets) == {"vihsd"}
    assert offsets["vihsd"] == fit_head_offsets("vihsd", logits, y)


def own_like_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fully annotated rows (every category, every threshold) with weak, under-confident logits."""
    rng = np.random.default_rng(seed)
    sev = np.zeros((n, len(CATEGORIES)), dtype=int)
    for i in range(n):
        if rng.random() < 0.5:
            sev[i, rng.integers(len(CATEGORIES))] = rng.integers(1, 4)
    t = (sev[..., None] >= np.arange(1, 4)[None, None]).astype(np.float32)
    logits = (2.0 * t - 1.0) * 0.8 - 1.5 + rng.normal(scale=1.2, size=t.shape)
    return logits.astype(np.float32), t, np.ones_like(t)


def test_under_rating_rule_meets_its_target_and_states_it():
    policy = load_policy()
    logits, t, m = own_like_rows(600, seed=10)
    plain = calibrate(logits, t, m, ["child_sexual", "self_harm"])
    probs = severity_probabilities(logits, plain)
    true = t.sum(-1)
    assert under_rating_rate(probs, true, plain, policy) > 0.10  # the F1 rule misses many
    safe = calibrate(logits, t, m, ["child_sexual", "self_harm"], max_under_rating=0.05, policy=policy)
    assert under_rating_rate(probs, true, safe, policy) <= 0.05
    assert "under-rating" in safe.rule and "logit shift" in safe.rule
    lowered = safe.threshold_array() <= plain.threshold_array() + 1e-6
    assert lowered.all()
    assert safe.temperatures == plain.temperatures


def test_under_rating_rule_needs_fully_annotated_rows():
    logits, t, m = own_like_rows(600, seed=11)
    m[:, 0, :] = 0  # no row annotates every category: no true band to measure
    plain = calibrate(logits, t, m, [])
    safe = calibrate(logits, t, m, [], max_under_rating=0.0, policy=load_policy())
    assert safe.thresholds == plain.thresholds


@pytest.mark.parametrize("offsets", [None, []])
def test_no_offsets_is_the_plain_rule(offsets):
    logits, _ = imbalanced_three_class(50, seed=12)
    assert native_decisions(logits, offsets).tolist() == logits.argmax(1).tolist()
