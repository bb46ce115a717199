"""One verdict per item from its parts: a text, an image (its OCR text and its picture), a page.

The rule is the contract's: an item's band is the highest band any of its harms
calls for, so each category's severity is the highest any part shows (a harmful
image makes the page harmful; a harmless image does not excuse harmful text).
Every piece of evidence names the part that produced it (`source`):

- `text`: the submitted text, or the visible text of a page (offsets into it);
- `image:N:ocr`: words read in image N (offsets into that image's `ocr_text`, with boxes);
- `image:N:visual`: the visual classifier on image N (the whole image's box);
- `image:N:nudity`: the optional nudity detector on image N (the detection's box);
- `image:N:open_nsfw`: the real-photo nudity reader on image N (whole image; text "nsfw 0.93", its P(nsfw));
- `image:N:imagenet`: an ImageNet class cue on image N (whole image; text "revolver 0.83", its probability).

The real-photo readers (open_nsfw, ImageNet cues) join like the others: each raises its category to the
severity it reads, names itself among the image's sources, and counts its probability as the category's
score only when it fires (their raw scores are not calibrated on the contract's labels).

Pure functions over predictions: no model, no Pillow, so it is easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vicas.engine import TextPrediction
from vicas.inference import Evidence
from vicas.taxonomy import CATEGORIES

Box = tuple[int, int, int, int]  # left, top, width, height in image pixels


@dataclass(frozen=True)
class SourcedEvidence:
    category: str
    source: str
    score: float
    start: int | None = None  # character offsets, for text sources
    end: int | None = None
    text: str | None = None
    boxes: tuple[Box, ...] = ()


@dataclass
class ImageReading:
    """What the image models found in one picture (before the text model reads the OCR text)."""

    name: str
    width: int
    height: int
    ocr_text: str = ""
    ocr_words: list[tuple[int, int, Box]] = field(default_factory=list)  # (start, end, box) per word
    ocr_confidence: float = 0.0
    ocr_seconds: float = 0.0
    ocr_error: str | None = None
    visual_severities: dict[str, int] = field(default_factory=dict)
    visual_scores: dict[str, float] = field(default_factory=dict)
    nudity: list[tuple[str, int, float, Box]] = field(default_factory=list)  # (label, severity, score, box)
    open_nsfw: float | None = None  # open_nsfw's P(nsfw); None when it did not read the image
    open_nsfw_severity: int = 0  # the `sexual` severity its calibration gives that score
    cues: list[tuple[str, int, str, float]] = field(default_factory=list)  # (category, severity, label, prob)
    heads_similarity: float | None = None  # closeness to the heads' training pictures (None: not measured)
    heads_read: bool = True  # False: outside the heads' domain (a photograph): the heads were not read

    def photo_findings(self) -> list[tuple[str, int, str, float, str]]:
        """The real-photo readers' findings: (category, severity, reader, probability, evidence text)."""
        out = []
        if self.open_nsfw is not None and self.open_nsfw_severity > 0:
            out.append(("sexual", self.open_nsfw_severity, "open_nsfw", self.open_nsfw, f"nsfw {self.open_nsfw:.2f}"))
        out += [(cat, v, "imagenet", p, f"{label} {p:.2f}") for cat, v, label, p in self.cues if v > 0]
        return out

    def boxes_for_span(self, start: int, end: int) -> tuple[Box, ...]:
        return tuple(b for s, e, b in self.ocr_words if s < end and e > start)


@dataclass
class ImagePart:
    """One image's own verdict inside an item, and which of its sources raised each category."""

    index: int
    reading: ImageReading
    severities: dict[str, int]
    sources: dict[str, list[str]]  # category -> ["ocr", "visual", "nudity", "open_nsfw", "imagenet"]
    ocr: TextPrediction | None


@dataclass
class ItemPrediction:
    """The combined reading of an item, before the policy: what `build_result` turns into a result."""

    severities: dict[str, int]
    scores: dict[str, float]
    evidence: list[SourcedEvidence]
    text: TextPrediction | None = None
    images: list[ImagePart] = field(default_factory=list)

    @classmethod
    def from_text(cls, pred: TextPrediction) -> ItemPrediction:
        return combine(pred, [], [])

    def text_evidence(self) -> list[Evidence]:
        """Evidence on the submitted text (for redaction of what is stored)."""
        return self.text.evidence if self.text is not None else []


def _text_evidence(pred: TextPrediction, source: str, reading: ImageReading | None = None) -> list[SourcedEvidence]:
    out = []
    for e in pred.evidence:
        boxes = reading.boxes_for_span(e.start, e.end) if reading is not None else ()
        out.append(SourcedEvidence(e.category, source, e.score, e.start, e.end, e.text, boxes))
    return out


def image_part(
    index: int, reading: ImageReading, ocr: TextPrediction | None
) -> tuple[ImagePart, list[SourcedEvidence]]:
    """An image's severities (max of OCR text, visual model, real-photo readers, nudity detector) and evidence."""
    sev = dict.fromkeys(CATEGORIES, 0)
    sources: dict[str, list[str]] = {}
    evidence: list[SourcedEvidence] = []
    whole: Box = (0, 0, reading.width, reading.height)

    def raise_to(cat: str, value: int, source: str) -> None:
        if value > 0:
            sev[cat] = max(sev[cat], value)
            if source not in sources.setdefault(cat, []):
                sources[cat].append(source)

    if ocr is not None:
        for cat, v in ocr.severities.items():
            raise_to(cat, v, "ocr")
        evidence += _text_evidence(ocr, f"image:{index}:ocr", reading)
    for cat, v in reading.visual_severities.items():
        raise_to(cat, v, "visual")
        if v > 0:
            score = reading.visual_scores.get(cat, 0.0)
            evidence.append(SourcedEvidence(cat, f"image:{index}:visual", score, boxes=(whole,)))
    for cat, v, reader, score, text in reading.photo_findings():
        raise_to(cat, v, reader)
        evidence.append(SourcedEvidence(cat, f"image:{index}:{reader}", score, text=text, boxes=(whole,)))
    for label, v, score, box in reading.nudity:
        raise_to("sexual", v, "nudity")
        evidence.append(SourcedEvidence("sexual", f"image:{index}:nudity", score, text=label, boxes=(box,)))
    return ImagePart(index, reading, sev, sources, ocr), evidence


def combine(
    text: TextPrediction | None, readings: list[ImageReading], ocr_preds: list[TextPrediction | None]
) -> ItemPrediction:
    """The item's verdict from its text (if any) and its images (readings + the text model on their OCR text)."""
    if len(readings) != len(ocr_preds):
        raise ValueError("one OCR prediction (or None) per image reading")
    sev = dict.fromkeys(CATEGORIES, 0)
    scores = dict.fromkeys(CATEGORIES, 0.0)
    evidence: list[SourcedEvidence] = []
    if text is not None:
        sev = {c: max(sev[c], text.severities.get(c, 0)) for c in CATEGORIES}
        scores = {c: max(scores[c], text.scores.get(c, 0.0)) for c in CATEGORIES}
        evidence += _text_evidence(text, "text")
    parts = []
    for i, (reading, ocr) in enumerate(zip(readings, ocr_preds, strict=True)):
        part, ev = image_part(i, reading, ocr)
        parts.append(part)
        evidence += ev
        sev = {c: max(sev[c], part.severities[c]) for c in CATEGORIES}
        part_scores = [reading.visual_scores.get(c, 0.0) for c in CATEGORIES]
        if ocr is not None:
            part_scores = [max(a, ocr.scores.get(c, 0.0)) for a, c in zip(part_scores, CATEGORIES, strict=True)]
        scores = {c: max(scores[c], s) for c, s in zip(CATEGORIES, part_scores, strict=True)}
    for part in parts:  # a nudity detection or a real-photo finding is certain enough to count as the score
        for _, v, score, _ in part.reading.nudity:
            scores["sexual"] = max(scores["sexual"], score if v else 0.0)
        for cat, _, _, score, _ in part.reading.photo_findings():
            scores[cat] = max(scores[cat], score)
    return ItemPrediction(sev, {c: round(v, 4) for c, v in scores.items()}, evidence, text, parts)


def texts_for(text: str | None, readings: list[ImageReading]) -> list[str]:
    """The texts the text model must read for an item: its own text, then each image's OCR text."""
    return ([text] if text else []) + [r.ocr_text for r in readings if r.ocr_text.strip()]


def combine_predictions(text: str | None, readings: list[ImageReading], preds: list[TextPrediction]) -> ItemPrediction:
    """`combine` with the text model's predictions for `texts_for(text, readings)`, in that order."""
    it = iter(preds)
    text_pred = next(it) if text else None
    ocr_preds = [next(it) if r.ocr_text.strip() else None for r in readings]
    if next(it, None) is not None:
        raise ValueError("more text predictions than texts_for() asked for")
    return combine(text_pred, readings, ocr_preds)
