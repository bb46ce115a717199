"""The band as one decision: band probabilities, the child-first cost rule, the review outcome."""

from __future__ import annotations

import numpy as np
import pytest

from vicas.band import (
    band_at_least,
    certain_at_least,
    combine_at_least,
    decide_band,
    fit_review_risk,
    risk_coverage,
    severity_band_table,
)
from vicas.policy import PolicyError, decide, load_policy
from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band


def probs_with(**cells: tuple[float, float, float]) -> np.ndarray:
    """(C, 3) P(severity >= k) with the given categories set, the rest 0."""
    p = np.zeros((len(CATEGORIES), 3))
    for cat, row in cells.items():
        p[CATEGORIES.index(cat)] = row
    return p


def test_table_finds_the_lowest_severity_reaching_each_band() -> None:
    policy = load_policy()
    table = severity_band_table(policy.bands)
    prof = CATEGORIES.index("profanity")  # 1 K, 2 T13, 3 T16
    assert table[prof].tolist() == [0, 0, 1, 2, -1, -1]
    child = CATEGORIES.index("child_sexual")  # every severity is C
    assert table[child].tolist() == [0, 0, 0, 0, 0, 0]


def test_band_probabilities_follow_the_policy() -> None:
    policy = load_policy()
    p = probs_with(profanity=(0.9, 0.5, 0.1))
    at = band_at_least(p, policy.band_table())
    assert at.tolist() == pytest.approx([1.0, 0.9, 0.5, 0.1, 0.0, 0.0])
    # two independent categories: P(band >= T16) = 1 - (1 - 0.1)(1 - 0.3)
    p2 = probs_with(profanity=(0.9, 0.5, 0.1), self_harm=(0.6, 0.3, 0.0))
    at2 = band_at_least(p2, policy.band_table())
    assert at2[BAND_ORDER.index(Band.T16)] == pytest.approx(1 - 0.9 * 0.7)
    assert np.all(np.diff(at2) <= 1e-12)


def test_cost_rule_is_the_quantile_and_never_goes_below_the_severities() -> None:
    at = np.array([1.0, 0.9, 0.5, 0.1, 0.0, 0.0])  # P >= P, K, T13, T16, T18, C
    # under 4 : over 1 -> the lowest band with P(band above it) <= 0.2: T13 (P(> T13) = 0.1)
    d = decide_band(at, Band.P, under_cost=4, over_cost=1, review_risk=None)
    assert d.band is Band.T13 and not d.needs_review and d.risk == pytest.approx(0.1)
    # symmetric costs -> the median: K (P(> K) = 0.5 <= 0.5)
    assert decide_band(at, Band.P, 1, 1, None).band is Band.K
    # the severities' own band is a floor
    assert decide_band(at, Band.T18, 4, 1, None).band is Band.T18


def test_review_serves_the_stricter_band_and_is_marked() -> None:
    at = np.array([1.0, 0.9, 0.5, 0.1, 0.0, 0.0])
    d = decide_band(at, Band.P, 4, 1, review_risk=0.05)
    assert d.needs_review
    assert d.automatic_band is Band.T13
    assert d.band is Band.T16  # P(band > T16) = 0 <= 0.05
    assert d.risk == pytest.approx(0.1)  # the risk that sent it to review
    sure = decide_band(np.array([1.0, 0.99, 0.01, 0.0, 0.0, 0.0]), Band.P, 4, 1, review_risk=0.05)
    assert not sure.needs_review and sure.band is Band.K


def test_parts_combine_and_certain_parts_are_a_floor() -> None:
    text = np.array([1.0, 0.5, 0.2, 0.0, 0.0, 0.0])
    picture = certain_at_least(Band.T16)
    both = combine_at_least([text, picture])
    assert both.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])


def test_decide_with_band_probabilities_adds_review_and_probabilities() -> None:
    default = load_policy()  # costs 4 : 1 here (the rule's quantile 0.2), whatever the default's
    policy = default.model_copy(update={"decision": default.decision.model_copy(update={"under_cost": 4.0})})
    sev = {"profanity": 1}
    at = band_at_least(probs_with(profanity=(0.9, 0.5, 0.1)), policy.band_table())
    plain = decide(sev, policy)
    assert plain.band is Band.K and not plain.needs_review and plain.band_probabilities is None
    d = decide(sev, policy, band_at_least=at, review_risk=0.05)
    assert d.band is Band.T16 and d.needs_review
    assert "review" in d.actions
    assert d.band_probabilities is not None and d.band_probabilities["T13"] == pytest.approx(0.5)
    # a policy's explicit review_risk wins over the model's fitted one
    strict = policy.model_copy(update={"decision": policy.decision.model_copy(update={"review_risk": 0.5})})
    assert not decide(sev, strict, band_at_least=at, review_risk=0.05).needs_review


def test_policy_decision_section_is_validated(tmp_path) -> None:
    default = load_policy()
    text = default.model_dump_json().replace(f'"under_cost":{default.decision.under_cost}', '"under_cost":-1')
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="under_cost"):
        load_policy(bad)


def test_risk_coverage_and_the_operating_point() -> None:
    # three sure items and one uncertain one whose true band is above the automatic band
    at = np.array(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 0.0, 0.0, 0.0],
            [1.0, 0.9, 0.5, 0.15, 0.0, 0.0],
        ]
    )
    floors = np.zeros(4, dtype=int)
    truth = np.array([0, 1, 2, 3])
    points = risk_coverage(at, floors, truth, 4, 1, [0.1, 0.2])
    low, high = points
    assert low.review_share == pytest.approx(0.25) and low.under_rated_auto == 0.0
    assert high.review_share == 0.0 and high.under_rated_auto == pytest.approx(0.25)
    best, why = fit_review_risk(points, target_under_rating=0.03, max_share=0.5)
    assert best.review_risk == 0.1 and "least review" in why
    capped, why = fit_review_risk(points, target_under_rating=0.03, max_share=0.1)
    assert capped.review_risk == 0.2 and "not reachable" in why
