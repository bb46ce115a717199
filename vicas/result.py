"""The result every consumer sees (CLI, API, bulk scoring): one schema, built in one place."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from vicas.band import BandCalibration, band_at_least, combine_at_least
from vicas.combine import ItemPrediction
from vicas.engine import TextPrediction
from vicas.inference import Calibration
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
        "image N), 'image:N:visual' (the visual classifier), 'image:N:open_nsfw' (the real-photo nudity reader), "
        "'image:N:imagenet' (an ImageNet object cue, `text` names the class), 'image:N:nudity' (the optional "
        "NudeNet detector), "
        "'image:N:hash' (image N is in a hash list of known abuse material: `text` names the list)",
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
    sources: dict[str, list[str]] = Field(
        description="category -> which readers found it: ocr, visual, open_nsfw, imagenet, nudity (NudeNet), or "
        "hash (a hash-list match)"
    )
    ocr_text: str = Field(description="text read in the image (personal data masked)")
    ocr_confidence: float
    ocr_error: str | None = None


class StageEvidenceResult(BaseModel):
    stage: str
    message: int = Field(description="index of the message in the conversation")
    sender: str
    score: float
    start: int | None = Field(None, description="the message's text in the item's text (the conversation)")
    end: int | None = None


class ConversationResult(BaseModel):
    """The conversation-level reading: grooming and sextortion are patterns over many messages."""

    risk: float = Field(description="probability-like risk that the conversation is grooming or sextortion")
    threshold: float
    flagged: bool = Field(description="at or above the threshold: child_sexual 3, band C, report")
    stages: dict[str, float] = Field(description="per grooming stage, the strongest message's score")
    evidence: list[StageEvidenceResult]
    model_version: str


class HashMatchResult(BaseModel):
    """An image found in a hash list of known child sexual abuse material (`vicas hashes import`). Nothing
    else about it was computed, stored or shown: it was not read (no OCR, no visual model)."""

    image: int = Field(description="the image's index in the item")
    list_name: str
    list_version: str
    hash_type: str = Field(description="what matched: pdq (perceptual), md5 or sha256 (the exact file)")
    distance: int = Field(description="PDQ Hamming distance (of 256 bits); 0 for an exact match")


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
    needs_review: bool = Field(
        False,
        description="the band is uncertain: it is served with the stricter band (as here) and the item is "
        "queued for a reviewer; actions then include 'review'",
    )
    under_rating_risk: float | None = Field(
        None, description="the model's probability that the item's true band is above the band served"
    )
    band_probabilities: dict[str, float] | None = Field(
        None, description="band -> the model's probability that the item's true band is at least that band"
    )
    conversation: ConversationResult | None = Field(None, description="for conversations: the grooming reading")
    hash_matches: list[HashMatchResult] = Field(
        default_factory=list,
        description="images found in a hash list of known abuse material: child_sexual 3, band C, block and "
        "report; the list's hash itself is not given",
    )


def item_band_at_least(
    item: ItemPrediction, policy: Policy, calibration: BandCalibration | None = None
) -> np.ndarray | None:
    """P(band >= b) from every text the model read in the item (its text, its images' OCR texts), each
    through the text model's band calibration.

    Pictures' own readings are deterministic: they enter the decision as the severities' floor.
    """
    readings = [item.text] if item.text is not None else []
    readings += [part.ocr for part in item.images if part.ocr is not None]
    readings = [r for r in readings if r.windows > 0]
    if not readings:
        return None
    table, how = policy.band_table(), policy.decision.combine
    return combine_at_least([band_at_least(r.severity_probs, table, how, calibration) for r in readings], how)


def build_result(
    pred: TextPrediction | ItemPrediction,
    policy: Policy,
    model_version: str,
    audience_age: int | None = None,
    calibration: Calibration | None = None,
) -> ClassificationResult:
    """The result of one item. `calibration` is the text model's: its band calibration and fitted review
    threshold make the band decision (None: the combined probabilities and the policy's own threshold)."""
    item = pred if isinstance(pred, ItemPrediction) else ItemPrediction.from_text(pred)
    band_cal = calibration.band_calibration if calibration else None
    review_risk = calibration.review_risk if calibration else None
    if band_cal is not None and not band_cal.applies_to(policy.band_table(), policy.decision.combine):
        review_risk = None  # fitted on calibrated probabilities of another table: only the policy's own applies
    decision: Decision = decide(
        item.severities,
        policy,
        audience_age=audience_age,
        band_at_least=item_band_at_least(item, policy, band_cal),
        review_risk=review_risk,
    )
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
        needs_review=decision.needs_review,
        under_rating_risk=decision.under_rating_risk,
        band_probabilities=decision.band_probabilities,
    )
