"""The result every consumer sees (CLI, API, bulk scoring): one schema, built in one place."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vicas.combine import ItemPrediction
from vicas.engine import TextPrediction
from vicas.policy import AudienceDecision, Decision, Policy, Reason, SupportReference, decide
from vicas.redact import redact
from vicas.taxonomy import CATEGORIES, Band

REDACTED = "[redacted]"


class CategoryResult(BaseModel):
    score: float = Field(description="calibrated probability that the category is present")
    severity: int = Field(ge=0, le=3)


class EvidenceSpan(BaseModel):
    category: str
    source: str = Field(
        "text",
        description="'text' (the submitted text or the page's visible text), 'image:N:ocr' (words read in "
        "image N), 'image:N:visual' (the visual classifier), 'image:N:nudity' (the optional nudity detector)",
    )
    start: int | None = Field(
        None,
        description="character offset (inclusive) in the text of the source: the submitted text, or image N's ocr_text",
    )
    end: int | None = Field(None, description="character offset (exclusive), as `start`")
    text: str | None = Field(None, description="the words, or the detector's label")
    boxes: list[tuple[int, int, int, int]] = Field(
        default_factory=list, description="image sources: (left, top, width, height) in the image's pixels"
    )
    score: float


class ImageResult(BaseModel):
    """One image's own verdict inside the item, and what its parts found."""

    index: int
    name: str
    width: int
    height: int
    band: Band
    severities: dict[str, int] = Field(description="categories this image shows (severity >= 1)")
    sources: dict[str, list[str]] = Field(description="category -> which readers found it: ocr, visual, nudity")
    ocr_text: str = Field(description="text read in the image (personal data masked)")
    ocr_confidence: float
    ocr_error: str | None = None


class ClassificationResult(BaseModel):
    band: Band
    categories: dict[str, CategoryResult]
    evidence: list[EvidenceSpan]
    actions: list[str]
    reasons: list[Reason]
    audience: AudienceDecision | None = None
    support: SupportReference | None = None
    images: list[ImageResult] = Field(default_factory=list, description="per image, for items with images")
    model_version: str
    policy_version: str


def build_result(
    pred: TextPrediction | ItemPrediction, policy: Policy, model_version: str, audience_age: int | None = None
) -> ClassificationResult:
    item = pred if isinstance(pred, ItemPrediction) else ItemPrediction.from_text(pred)
    decision: Decision = decide(item.severities, policy, audience_age=audience_age)
    redact_cats = {c for c, sev in policy.redact.items() if item.severities.get(c, 0) >= sev}
    evidence = [
        EvidenceSpan(
            category=e.category,
            source=e.source,
            start=e.start,
            end=e.end,
            text=REDACTED if e.category in redact_cats and e.start is not None else e.text,
            boxes=list(e.boxes),
            score=e.score,
        )
        for e in item.evidence
    ]
    images = []
    for part in item.images:
        r = part.reading
        ocr_ev = part.ocr.evidence if part.ocr is not None else []
        images.append(
            ImageResult(
                index=part.index,
                name=r.name,
                width=r.width,
                height=r.height,
                band=decide(part.severities, policy).band,
                severities={c: v for c, v in part.severities.items() if v > 0},
                sources=part.sources,
                ocr_text=redact(r.ocr_text, ocr_ev, redact_cats).text if r.ocr_text else "",
                ocr_confidence=round(r.ocr_confidence, 2),
                ocr_error=r.ocr_error,
            )
        )
    return ClassificationResult(
        band=decision.band,
        categories={c: CategoryResult(score=item.scores[c], severity=item.severities[c]) for c in CATEGORIES},
        evidence=evidence,
        actions=list(decision.actions),
        reasons=decision.reasons,
        audience=decision.audience,
        support=decision.support,
        images=images,
        model_version=model_version,
        policy_version=decision.policy_version,
    )
