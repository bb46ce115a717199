"""Run the image models on pictures: OCR (Tesseract), the visual classifier, the optional nudity detector.

The text model then reads each picture's OCR text; `vicas.combine` joins it all
into one verdict. An OCR failure on one image is recorded on that image's
reading (`ocr_error`) and does not lose the visual verdict or the other images.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vicas.combine import ImageReading
from vicas.nudity import NudityDetector
from vicas.ocr import OcrConfig, OcrError, read_text
from vicas.visual import VisualEngine


@dataclass
class NamedImage:
    name: str  # file name, form field, or "image N" / the img tag's src for a page
    image: Image.Image


class ImageReader:
    """The image half of classification. Each part is optional: OCR only, visual only, or both."""

    def __init__(
        self,
        visual: VisualEngine | None = None,
        ocr: OcrConfig | None = None,
        nudity: NudityDetector | None = None,
    ) -> None:
        if visual is None and ocr is None and nudity is None:
            raise ValueError("an image reader needs OCR, a visual model or the nudity detector")
        self.visual, self.ocr, self.nudity = visual, ocr, nudity

    @property
    def version(self) -> str:
        parts = [self.visual.version] if self.visual else []
        if self.ocr is not None:
            parts.append(f"tesseract-{self.ocr.languages}")
        if self.nudity is not None:
            parts.append("nudenet-3.4")
        return "+".join(parts)

    def read(self, images: list[NamedImage]) -> list[ImageReading]:
        readings = [ImageReading(n.name, n.image.width, n.image.height) for n in images]
        if self.visual is not None and images:
            for r, pred in zip(readings, self.visual.classify([n.image for n in images]), strict=True):
                r.visual_severities = {c: v for c, v in pred.severities.items() if c in self.visual.head_categories}
                r.visual_scores = {c: pred.scores[c] for c in self.visual.head_categories}
        for r, n in zip(readings, images, strict=True):
            if self.ocr is not None:
                try:
                    res = read_text(n.image, self.ocr)
                except OcrError as e:
                    r.ocr_error = str(e)
                else:
                    r.ocr_text = res.text
                    r.ocr_words = [(w.start, w.end, w.box) for w in res.words]
                    r.ocr_confidence = res.mean_confidence
                    r.ocr_seconds = res.seconds
            if self.nudity is not None:
                r.nudity = [(d.label, d.severity, d.score, d.box) for d in self.nudity.detect(n.image)]
        return readings
