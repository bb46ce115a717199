"""The default policy agrees with shared/TAXONOMY.md cell by cell, and decide() follows it."""

from pathlib import Path

import pytest
import yaml

from vicas.policy import PolicyError, decide, load_policy
from vicas.taxonomy import CATEGORIES, Band

# The default table of shared/TAXONOMY.md, copied here by hand on purpose:
# the test is the second, independent reading of the contract.
CONTRACT_TABLE = {
    "sexual": ("T13", "T16", "T18"),
    "child_sexual": ("C", "C", "C"),
    "violence": ("K", "T16", "T18"),
    "self_harm": ("T13", "T16", "C"),
    "hate": ("T13", "T16", "C"),
    "harassment": ("K", "T13", "T16"),
    "profanity": ("K", "T13", "T16"),
    "substances": ("K", "T16", "C"),
    "gambling": ("T13", "T18", "C"),
    "dangerous_acts": ("K", "T13", "T18"),
    "scam": ("T13", "T16", "C"),
    "personal_data": ("P", "T13", "C"),
}

CELLS = [(cat, sev, CONTRACT_TABLE[cat][sev - 1]) for cat in CATEGORIES for sev in (1, 2, 3)]


@pytest.fixture(scope="module")
def policy():
    return load_policy()


def test_table_covers_every_category():
    assert set(CONTRACT_TABLE) == set(CATEGORIES)


@pytest.mark.parametrize(("category", "severity", "band"), CELLS)
def test_every_cell_of_the_default_table(policy, category, severity, band):
    d = decide({category: severity}, policy)
    assert d.band == Band(band)
    if band == "P":
        assert d.reasons[0].band == Band.P
    else:
        assert d.reasons[0].category == category
        assert d.reasons[0].severity == severity
        assert d.reasons[0].forced
    assert ("report" in d.actions) == (band == "C")
    assert ("block" in d.actions) == (band == "C")  # no audience given: only C is blocked outright
    hotline = category in ("child_sexual", "self_harm") and severity >= 2
    assert (d.support is not None) == hotline
    if hotline:
        assert d.support is not None and d.support.hotline == "111"
    assert d.policy_version == policy.version


def test_no_harm_is_P_and_allowed(policy):
    d = decide({}, policy, audience_age=6)
    assert d.band == Band.P
    assert d.actions == ["allow"]
    assert d.audience is not None and d.audience.allowed and not d.audience.guardian_required
    assert d.reasons == []


def test_band_is_the_highest_and_reasons_name_what_forced_it(policy):
    d = decide({"profanity": 1, "gambling": 2, "sexual": 1}, policy)
    assert d.band == Band.T18
    assert [r.category for r in d.reasons] == ["gambling", "sexual", "profanity"]
    assert [r.forced for r in d.reasons] == [True, False, False]


def test_two_categories_can_force_the_same_band(policy):
    d = decide({"self_harm": 2, "hate": 2}, policy)
    assert d.band == Band.T16
    assert all(r.forced for r in d.reasons)


@pytest.mark.parametrize(
    ("severities", "age", "allowed", "guardian"),
    [
        ({"violence": 1}, 8, True, True),  # K: under 13 with a guardian
        ({"violence": 1}, 13, True, False),
        ({"harassment": 2}, 12, False, False),  # T13
        ({"harassment": 2}, 13, True, False),
        ({"sexual": 2}, 15, False, False),  # T16
        ({"sexual": 2}, 16, True, False),
        ({"gambling": 2}, 17, False, False),  # T18
        ({"gambling": 2}, 18, True, False),
        ({"child_sexual": 3}, 40, False, False),  # C: nobody
    ],
)
def test_audience_decision(policy, severities, age, allowed, guardian):
    d = decide(severities, policy, audience_age=age)
    assert d.audience is not None
    assert d.audience.allowed is allowed
    assert d.audience.guardian_required is guardian
    assert ("block" in d.actions) is (not allowed)
    if allowed:
        assert "warn" in d.actions


def test_personal_data_is_redacted(policy):
    assert "redact" in decide({"personal_data": 2}, policy).actions
    assert "redact" not in decide({"personal_data": 1}, policy).actions


def test_invalid_severities_are_refused(policy):
    with pytest.raises(ValueError, match="unknown category"):
        decide({"nudity": 2}, policy)
    with pytest.raises(ValueError, match="0-3"):
        decide({"sexual": 4}, policy)
    with pytest.raises(ValueError, match="audience_age"):
        decide({"sexual": 1}, policy, audience_age=-1)


def _write(tmp_path: Path, data) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def _default_raw():
    from vicas.policy import DEFAULT_POLICY_PATH

    return yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def test_policy_with_unknown_category_is_refused(tmp_path):
    raw = _default_raw()
    raw["bands"]["nudity"] = {1: "T13", 2: "T16", 3: "T18"}
    with pytest.raises(PolicyError, match=r"unknown categories.*nudity"):
        load_policy(_write(tmp_path, raw))


def test_policy_missing_a_category_or_severity_is_refused(tmp_path):
    raw = _default_raw()
    del raw["bands"]["scam"]
    with pytest.raises(PolicyError, match=r"missing.*scam"):
        load_policy(_write(tmp_path, raw))
    raw = _default_raw()
    del raw["bands"]["scam"][2]
    with pytest.raises(PolicyError, match="exactly severities 1, 2, 3"):
        load_policy(_write(tmp_path, raw))


def test_policy_with_unknown_band_or_decreasing_bands_is_refused(tmp_path):
    raw = _default_raw()
    raw["bands"]["sexual"][3] = "R21"
    with pytest.raises(PolicyError, match=r"bands.sexual"):
        load_policy(_write(tmp_path, raw))
    raw = _default_raw()
    raw["bands"]["sexual"] = {1: "T18", 2: "T16", 3: "T18"}
    with pytest.raises(PolicyError, match="higher severity"):
        load_policy(_write(tmp_path, raw))


def test_malformed_policy_files_are_refused(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("bands: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(p)
    p.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="YAML mapping"):
        load_policy(p)
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.yaml")


def test_operator_policy_changes_take_effect_without_code(tmp_path):
    raw = _default_raw()
    raw["version"] = "strict-1"
    raw["bands"]["profanity"] = {1: "T13", 2: "T16", 3: "T18"}
    policy = load_policy(_write(tmp_path, raw))
    d = decide({"profanity": 1}, policy)
    assert d.band == Band.T13
    assert d.policy_version == "strict-1"


def test_band_order_is_the_contract_order():
    assert Band.P < Band.K < Band.T13 < Band.T16 < Band.T18 < Band.C
    assert max([Band.T13, Band.C, Band.T18]) == Band.C
