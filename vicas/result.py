"""The result every consumer sees (CLI, API, bulk scoring): one schema, built in one place."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vicas.engine import TextPrediction
from vicas.policy import AudienceDecision, Decision, Policy, Reason, SupportReference, decide
from vicas.taxonomy import CATEGORIES, Band


class CategoryResult(BaseModel):
    score: float = Field(description="calibrated probability that the category is present")
    severity: int = Field(ge=0, le=3)


class EvidenceSpan(BaseModel):
    category: str
    start: int = Field(description="character offset in the submitted text (inclusive)")
    end: int = Field(description="character offset in the submitted text (exclusive)")
    text: str
    score: float


class ClassificationResult(BaseModel):
    band: Band
    categories: dict[str, CategoryResult]
    evidence: list[EvidenceSpan]
    actions: list[str]
    reasons: list[Reason]
    audience: AudienceDecision | None = None
    support: SupportReference | None = None
    model_version: str
    policy_version: str


def build_result(
    pred: TextPrediction, policy: Policy, model_version: str, audience_age: int | None = None
) -> ClassificationResult:
    decision: Decision = decide(pred.severities, policy, audience_age=audience_age)
    redact = set(c for c, sev in policy.redact.items() if pred.severities.get(c, 0) >= sev)
    evidence = [
        EvidenceSpan(
            category=e.category,
            start=e.start,
            end=e.end,
            text="[redacted]" if e.category in redact else e.text,
            score=e.score,
        )
        for e in pred.evidence
    ]
    return ClassificationResult(
        band=decision.band,
        categories={c: CategoryResult(score=pred.scores[c], severity=pred.severities[c]) for c in CATEGORIES},
        evidence=evidence,
        actions=list(decision.actions),
        reasons=decision.reasons,
        audience=decision.audience,
        support=decision.support,
        model_version=model_version,
        policy_version=decision.policy_version,
    )
