"""The policy: per-category severities -> band, actions, reasons, support.

The policy is data (a versioned YAML file) so operators can change the table
without retraining. `decide` is the one function every consumer (evaluation,
API, bulk scoring, review console) uses to turn severities into a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vicas.band import decide_band, severity_band_table
from vicas.taxonomy import (
    ALLOWED_SEVERITIES,
    BAND_ORDER,
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    Band,
    check_severity,
)

DEFAULT_POLICY_PATH = Path(__file__).parent / "policies" / "default.yaml"

Action = Literal["allow", "warn", "redact", "block", "report", "review"]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says what to fix."""


class SupportReference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hotline: str
    name_vi: str
    name_en: str
    message_vi: str
    message_en: str


class SupportRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: dict[str, int]
    reference: SupportReference


class AudienceRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_age: dict[Band, int]
    guardian_band: Band | None = None
    guardian_min_age: int = 0


class DecisionRule(BaseModel):
    """How the band is chosen from the model's band probabilities (see vicas.band): child-first costs
    and the review outcome."""

    model_config = ConfigDict(extra="forbid")
    combine: Literal["independent", "max"] = Field(
        "independent", description="how the categories' probabilities make the band's (vicas.band.band_at_least)"
    )
    under_cost: float = Field(4.0, gt=0, description="cost of one band step too lenient (exposes a child)")
    over_cost: float = Field(1.0, gt=0, description="cost of one band step too strict (over-blocking)")
    review_target_under_rating: float = Field(
        0.03, ge=0, le=1, description="under-rating allowed among items decided automatically (fitted on dev)"
    )
    review_max_share: float = Field(0.15, ge=0, le=1, description="most items sent to review (fitted on dev)")
    review_risk: float | None = Field(
        None,
        ge=0,
        le=1,
        description="explicit under-rating risk above which an item goes to review; empty: the threshold the "
        "model's export fitted on dev for the two targets above",
    )

    def threshold(self, fitted: float | None) -> float | None:
        """The review threshold in force: the policy's own, else the one the model's export fitted on dev."""
        return self.review_risk if self.review_risk is not None else fitted


class Policy(BaseModel):
    """A validated policy table."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    bands: dict[str, dict[int, Band]]
    audience: AudienceRule
    redact: dict[str, int] = Field(default_factory=dict)
    support: SupportRule
    decision: DecisionRule = Field(default_factory=DecisionRule)

    def band_table(self) -> np.ndarray:
        """Per category, which severity threshold first reaches each band (for band probabilities)."""
        return severity_band_table(self.bands)

    @field_validator("bands")
    @classmethod
    def _every_category_every_severity(cls, v: dict[str, dict[int, Band]]) -> dict[str, dict[int, Band]]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories in bands: {unknown}; valid: {list(CATEGORIES)}")
        missing = [c for c in CATEGORIES if c not in v]
        if missing:
            raise ValueError(f"bands must give every category; missing: {missing}")
        for cat, table in v.items():
            if sorted(table) != [1, 2, 3]:
                raise ValueError(f"bands.{cat} must map exactly severities 1, 2, 3; got {sorted(table)}")
            ranks = [BAND_ORDER.index(table[s]) for s in (1, 2, 3)]
            if ranks != sorted(ranks):
                raise ValueError(f"bands.{cat}: a higher severity must not give a lower band")
        return v

    @model_validator(mode="after")
    def _known_categories(self) -> Policy:
        for section, mapping in (("redact", self.redact), ("support.when", self.support.when)):
            for cat, sev in mapping.items():
                if cat not in CATEGORIES:
                    raise ValueError(f"unknown category {cat!r} in {section}; valid: {list(CATEGORIES)}")
                if not 1 <= sev <= 3:
                    raise ValueError(f"{section}.{cat}: severity must be 1-3, got {sev}")
        missing = [b.value for b in BAND_ORDER if b is not Band.C and b not in self.audience.min_age]
        if missing:
            raise ValueError(f"audience.min_age must give every band but C; missing: {missing}")
        return self

    def band_for(self, category: str, severity: int) -> Band:
        """The minimum band one category at one severity calls for."""
        if severity == 0:
            return Band.P
        return self.bands[category][severity]


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy YAML file (the packaged default when path is None)."""
    p = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PolicyError(f"policy file not found: {p}") from e
    except yaml.YAMLError as e:
        raise PolicyError(f"policy file {p} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {p} must be a YAML mapping with version, bands, audience, support")
    try:
        return Policy.model_validate(raw)
    except ValidationError as e:
        lines = [f"  - {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise PolicyError(f"policy file {p} is invalid:\n" + "\n".join(lines)) from e


class Reason(BaseModel):
    category: str
    severity: int
    band: Band
    forced: bool = Field(description="true when this category alone calls for the final band")


class AudienceDecision(BaseModel):
    age: int
    allowed: bool
    guardian_required: bool


class Decision(BaseModel):
    """What every consumer gets: band, actions, reasons, audience verdict, support."""

    band: Band
    actions: list[Action]
    reasons: list[Reason]
    audience: AudienceDecision | None = None
    support: SupportReference | None = None
    policy_version: str
    needs_review: bool = Field(
        False, description="the band is uncertain: served with the stricter band and queued for a reviewer"
    )
    under_rating_risk: float | None = Field(
        None, description="the model's probability that the true band is above the band served"
    )
    band_probabilities: dict[str, float] | None = Field(
        None, description="band -> the model's probability that the item's true band is at least that band"
    )


def taxonomy_document(policy: Policy) -> dict[str, Any]:
    """Bands, categories, allowed severities and this policy's bands: what `vicas taxonomy` and the API show."""
    return {
        "bands": [b.value for b in BAND_ORDER],
        "categories": {
            c: {
                "description": CATEGORY_DESCRIPTIONS[c],
                "severities": sorted(ALLOWED_SEVERITIES[c]),
                "bands": {str(s): policy.bands[c][s].value for s in (1, 2, 3)},
            }
            for c in CATEGORIES
        },
        "policy_version": policy.version,
    }


def audience_allows(policy: Policy, band: Band, age: int) -> tuple[bool, bool]:
    """(allowed, guardian_required) for a viewer of `age` and an item of `band`."""
    if band is Band.C:
        return False, False
    if age >= policy.audience.min_age[band]:
        return True, False
    rule = policy.audience
    if rule.guardian_band is not None and band is rule.guardian_band and age >= rule.guardian_min_age:
        return True, True
    return False, False


def decide(
    severities: Mapping[str, int],
    policy: Policy,
    audience_age: int | None = None,
    band_at_least: np.ndarray | None = None,
    review_risk: float | None = None,
) -> Decision:
    """Turn per-category severities (0-3) into the contract's result.

    Categories missing from `severities` count as 0. Invalid names or values
    raise ValueError, so a model or reviewer bug cannot pass silently.

    With `band_at_least` (the model's P(band >= b), see vicas.band) the band is the child-first cost
    rule's, never below the band the severities call for, and an item whose under-rating risk stays
    above the review threshold (the policy's `decision.review_risk`, else `review_risk`, the model's
    fitted one) is served stricter and marked `needs_review`. Without it (a reviewer's severities,
    `vicas decide`) the severities decide alone.
    """
    if audience_age is not None and not 0 <= audience_age <= 150:
        raise ValueError(f"audience_age must be between 0 and 150, got {audience_age}")
    contributing: list[tuple[str, int, Band]] = []
    for cat, sev in severities.items():
        if sev == 0:
            check_severity(cat, 0)
            continue
        if isinstance(sev, bool) or not isinstance(sev, int) or not 0 <= sev <= 3:
            raise ValueError(f"severity for {cat!r} must be an integer 0-3, got {sev!r}")
        if cat not in CATEGORIES:
            check_severity(cat, sev)
        contributing.append((cat, sev, policy.band_for(cat, sev)))
    band = max((b for _, _, b in contributing), default=Band.P)
    needs_review, risk, probs = False, None, None
    if band_at_least is not None:
        rule = policy.decision
        bd = decide_band(band_at_least, band, rule.under_cost, rule.over_cost, rule.threshold(review_risk))
        band, needs_review, risk = bd.band, bd.needs_review, bd.risk
        probs = {b.value: p for b, p in zip(BAND_ORDER, bd.at_least, strict=True)}
    reasons = sorted(
        (Reason(category=c, severity=s, band=b, forced=(b == band)) for c, s, b in contributing),
        key=lambda r: (-r.band.rank, -r.severity, CATEGORIES.index(r.category)),
    )

    audience: AudienceDecision | None = None
    blocked = band is Band.C
    if audience_age is not None:
        allowed, guardian = audience_allows(policy, band, audience_age)
        audience = AudienceDecision(age=audience_age, allowed=allowed, guardian_required=guardian)
        blocked = not allowed

    actions: list[Action] = []
    if blocked:
        actions.append("block")
    elif band is not Band.P:
        actions.append("warn")
    else:
        actions.append("allow")
    if any(severities.get(cat, 0) >= min_sev for cat, min_sev in policy.redact.items()):
        actions.append("redact")
    if band is Band.C:
        actions.append("report")
    if needs_review:
        actions.append("review")

    support = None
    if any(severities.get(cat, 0) >= min_sev for cat, min_sev in policy.support.when.items()):
        support = policy.support.reference
    return Decision(
        band=band,
        actions=actions,
        reasons=reasons,
        audience=audience,
        support=support,
        policy_version=policy.version,
        needs_review=needs_review,
        under_rating_risk=risk,
        band_probabilities=probs,
    )
