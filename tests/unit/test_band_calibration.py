"""Band calibration: the combined P(band >= b) mapped onto dev's band frequencies before the cost rule reads it.

Ratings issue: combining a dozen category probabilities as independent events makes a large band probability
out of small ones, so the child-first rule restricted most ordinary texts (over-rated 45-52% on the test
splits with the recorded model). The fixtures are synthetic: severities drawn at random, model probabilities
that are right about each category but, like the real model's, slightly high on every clean category.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.calibration import band_inputs, fit_band_calibration, fit_review
from training.metrics import band_decision_metrics, served_bands
from vicas.band import BandCalibration, _say_not_applied, band_at_least, band_table_key
from vicas.engine import TextPrediction
from vicas.inference import Calibration
from vicas.normalize import normalize
from vicas.policy import Policy, load_policy
from vicas.result import build_result
from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band


def synthetic(n: int, seed: int) -> tuple[np.ndarray, list[dict[str, int]]]:
    """(n, C, 3) P(severity >= k) and the true severities: a quarter of the rows harmful in one category."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.02, 0.12, size=(n, len(CATEGORIES), 3))  # every clean category a little high
    true_sev: list[dict[str, int]] = []
    for i in range(n):
        sev = dict.fromkeys(CATEGORIES, 0)
        if rng.random() < 0.25:
            c = int(rng.integers(len(CATEGORIES)))
            k = int(rng.integers(1, 4))
            sev[CATEGORIES[c]] = k
            probs[i, c, :k] = rng.uniform(0.6, 0.95, size=k)
        true_sev.append(sev)
    probs = np.minimum.accumulate(probs, axis=-1)
    return probs, true_sev


def at_costs_4_to_1() -> Policy:
    """The default policy with under-rating costing 4 and over-rating 1 (the cost rule's quantile 0.2)."""
    default = load_policy()
    return default.model_copy(update={"decision": default.decision.model_copy(update={"under_cost": 4.0})})


def identity() -> Calibration:
    return Calibration.identity()


def test_fitted_band_probabilities_match_the_band_frequencies_they_were_fitted_on() -> None:
    policy = load_policy()
    probs, true_sev = synthetic(1500, seed=1)
    raw, _, truth = band_inputs(probs, true_sev, identity(), policy)
    fitted = fit_band_calibration(probs, true_sev, identity(), policy)
    assert fitted.band_calibration is not None and "Platt" in fitted.band_calibration.rule
    cal, _, _ = band_inputs(probs, true_sev, fitted, policy)
    t13 = BAND_ORDER.index(Band.T13)
    observed = float((truth >= t13).mean())
    assert abs(raw[:, t13].mean() - observed) > 0.2  # independence: ten small probabilities make a large one
    assert cal[:, t13].mean() == pytest.approx(observed, abs=0.02)
    assert np.all(np.diff(cal, axis=1) <= 1e-12) and np.all(cal[:, 0] == 1.0)


def test_calibrated_bands_restrict_fewer_ordinary_texts_on_rows_not_fitted_on() -> None:
    """Fitted on one draw (dev), measured on another (test): far less over-rating at the policy's targets."""
    policy = load_policy()
    dev_probs, dev_sev = synthetic(1500, seed=2)
    test_probs, test_sev = synthetic(1500, seed=3)

    def served(calibration: Calibration) -> dict[str, float]:
        fitted = fit_review(dev_probs, dev_sev, calibration, policy)
        at_least, floors, truth = band_inputs(test_probs, test_sev, fitted, policy)
        bands, review = served_bands(at_least, floors, policy, fitted.review_risk)
        return band_decision_metrics(bands, review, truth)

    before = served(identity())
    after = served(fit_band_calibration(dev_probs, dev_sev, identity(), policy))
    assert after["over_rating"] < before["over_rating"] / 2
    assert after["under_rating_auto"] <= max(before["under_rating_auto"], 0.03) + 0.01
    assert after["exact"] > before["exact"]


def test_a_band_calibration_applies_only_to_the_policy_table_it_was_fitted_for(caplog) -> None:
    _say_not_applied.cache_clear()  # said once per process: this test must see it whatever ran before
    policy = load_policy()
    table = policy.band_table()
    shrink = BandCalibration(key=band_table_key(table, "independent"), slopes=[1.0] * 5, intercepts=[-3.0] * 5)
    probs = np.zeros((len(CATEGORIES), 3))
    probs[CATEGORIES.index("profanity")] = (0.9, 0.5, 0.1)
    raw = band_at_least(probs, table)
    assert band_at_least(probs, table, "independent", shrink)[1] < raw[1] - 0.3
    assert band_at_least(probs, table, "max", shrink).tolist() == band_at_least(probs, table, "max").tolist()
    other = table.copy()
    other[CATEGORIES.index("gambling")] = [0, 0, 0, 0, 0, -1]
    assert band_at_least(probs, other, "independent", shrink).tolist() == band_at_least(probs, other).tolist()
    assert "fitted for another band table" in caplog.text  # said once in the log, not silently


def test_results_are_decided_on_the_models_band_calibration_but_never_below_the_severities() -> None:
    policy = at_costs_4_to_1()
    probs = np.full((len(CATEGORIES), 3), 0.15, dtype=np.float32)  # twelve unsure categories, none decided
    pred = TextPrediction(normalize("một câu bình thường"), dict.fromkeys(CATEGORIES, 0), {}, probs, [])
    plain = identity()
    assert build_result(pred, policy, "m@1", calibration=plain).band is not Band.P  # 1 - 0.85^n: restricted
    band_cal = BandCalibration(
        key=band_table_key(policy.band_table(), policy.decision.combine), slopes=[1.0] * 5, intercepts=[-4.0] * 5
    )
    calibrated = plain.model_copy(update={"band_calibration": band_cal})
    assert build_result(pred, policy, "m@1", calibration=calibrated).band is Band.P
    decided = TextPrediction(normalize("nạp tiền chơi tài xỉu"), {"gambling": 2}, {}, probs, [])
    assert build_result(decided, policy, "m@1", calibration=calibrated).band is policy.band_for("gambling", 2)


def test_the_fitted_review_threshold_is_used_only_with_the_band_calibration_it_was_fitted_after() -> None:
    """The review threshold was fitted on calibrated probabilities: under a policy whose table the band
    calibration does not fit, the raw probabilities run higher, so only the policy's own threshold applies."""
    policy = at_costs_4_to_1()
    probs = np.zeros((len(CATEGORIES), 3), dtype=np.float32)
    probs[CATEGORIES.index("violence")] = (0.5, 0.4, 0.15)  # T16 served, P(T18) 0.15 left
    pred = TextPrediction(normalize("một câu"), dict.fromkeys(CATEGORIES, 0), {}, probs, [])
    key = band_table_key(policy.band_table(), policy.decision.combine)
    calibration = Calibration.identity().model_copy(
        update={
            "review_risk": 0.01,
            "band_calibration": BandCalibration(key=key, slopes=[1.0] * 5, intercepts=[0.0] * 5),
        }
    )
    assert build_result(pred, policy, "m@1", calibration=calibration).needs_review  # fitted for it: applies
    other_bands = {**policy.bands, "gambling": {1: Band.T16, 2: Band.T18, 3: Band.C}}
    other = policy.model_copy(update={"bands": other_bands})
    assert not build_result(pred, other, "m@1", calibration=calibration).needs_review


def test_an_older_calibration_without_a_band_calibration_still_loads_and_decides_as_before() -> None:
    old = Calibration.identity().model_dump(mode="json")
    del old["band_calibration"]
    loaded = Calibration.model_validate_json(json.dumps(old))
    assert loaded.band_calibration is None
    probs, true_sev = synthetic(200, seed=4)
    policy = load_policy()
    with_none, _, _ = band_inputs(probs, true_sev, loaded, policy)
    assert np.allclose(with_none, band_at_least(probs, policy.band_table(), policy.decision.combine))


def test_too_few_rows_or_one_sided_bands_keep_the_combined_probabilities() -> None:
    policy = load_policy()
    probs, true_sev = synthetic(40, seed=5)
    assert fit_band_calibration(probs, true_sev, identity(), policy).band_calibration is None  # < 50 rows
    clean = [dict.fromkeys(CATEGORIES, 0) for _ in range(200)]
    band = fit_band_calibration(synthetic(200, seed=6)[0], clean, identity(), policy).band_calibration
    assert band is not None and band.slopes == [1.0] * 5 and band.intercepts == [0.0] * 5  # no harmful row
