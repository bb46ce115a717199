"""Run the image models on pictures: OCR (Tesseract), the visual classifier, the real-photo readers, NudeNet.

The readers: the generated-image heads (`vicas.visual`, learned from drawings), the ImageNet cues of the same
model folder (`vicas.imagenet_cues`, weapons, drinks, slot machines in photographs), open_nsfw (`vicas.open_nsfw`,
nudity in photographs, on by default) and the optional NudeNet detector (boxes). The text model then reads
each picture's OCR text; `vicas.combine` joins it all into one verdict. An OCR failure on one image is
recorded on that image's reading (`ocr_error`) and does not lose the visual verdict or the other images.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vicas.combine import ImageReading
from vicas.imagenet_cues import ImageNetCues
from vicas.nudity import NudityDetector
from vicas.ocr import OcrConfig, OcrError, engine_name, read_text
from vicas.open_nsfw import OpenNsfw, OpenNsfwCalibration
from vicas.visual import VisualEngine


@dataclass
class NamedImage:
    name: str  # file name, form field, or "image N" / the img tag's src for a page
    image: Image.Image
    digests: tuple[str, str] | None = None  # MD5 and SHA-256 of its file's bytes, for exact hash-list matches


class ImageReader:
    """The image half of classification. Each part is optional: any of OCR, the visual model, its ImageNet
    cues, open_nsfw and NudeNet."""

    def __init__(
        self,
        visual: VisualEngine | None = None,
        ocr: OcrConfig | None = None,
        nudity: NudityDetector | None = None,
        open_nsfw: OpenNsfw | None = None,
        cues: ImageNetCues | None = None,
    ) -> None:
        if visual is None and ocr is None and nudity is None and open_nsfw is None and cues is None:
            raise ValueError("an image reader needs OCR, a visual model, open_nsfw or the nudity detector")
        self.visual, self.ocr, self.nudity = visual, ocr, nudity
        self.open_nsfw, self.cues = open_nsfw, cues

    @property
    def version(self) -> str:
        """Every reader that looks at the pictures, so an answer names what made it."""
        parts = [self.visual.version] if self.visual else []
        if self.cues is not None:
            parts.append(self.cues.version)
        if self.open_nsfw is not None:
            parts.append(self.open_nsfw.version)
        if self.ocr is not None:
            parts.append(f"tesseract-{self.ocr.languages}-{engine_name(self.ocr.engine)}")
        if self.nudity is not None:
            parts.append("nudenet-3.4")
        return "+".join(parts)

    def read(self, images: list[NamedImage]) -> list[ImageReading]:
        readings = [ImageReading(n.name, n.image.width, n.image.height) for n in images]
        if self.cues is not None and images:
            probs, features = self.cues.run([n.image for n in images])
            for r, hits in zip(readings, self.cues.hits(probs), strict=True):
                r.cues = [(h.category, h.severity, h.label, h.probability) for h in hits]
            domain = self.cues.domain
            if domain is not None and features is not None:  # the heads read only pictures like their own
                for r, sim in zip(readings, domain.similarity(features), strict=True):
                    r.heads_similarity, r.heads_read = round(float(sim), 4), bool(sim >= domain.threshold)
        read_by_heads = [i for i, r in enumerate(readings) if r.heads_read]
        if self.visual is not None and read_by_heads:
            preds = self.visual.classify([images[i].image for i in read_by_heads])
            for i, pred in zip(read_by_heads, preds, strict=True):
                r = readings[i]
                r.visual_severities = {c: v for c, v in pred.severities.items() if c in self.visual.head_categories}
                r.visual_scores = {c: pred.scores[c] for c in self.visual.head_categories}
        if self.open_nsfw is not None and images:
            for r, (score, severity) in zip(readings, self.open_nsfw.read([n.image for n in images]), strict=True):
                r.open_nsfw, r.open_nsfw_severity = score, severity
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


def open_nsfw_calibration(visual: VisualEngine | None) -> OpenNsfwCalibration:
    """The thresholds stored with the image model, or the documented defaults when there is none."""
    if visual is None or not visual.manifest.open_nsfw_calibration:
        return OpenNsfwCalibration()
    return OpenNsfwCalibration.load(visual.folder / visual.manifest.open_nsfw_calibration)


def build_image_reader(
    visual: VisualEngine | None,
    ocr: OcrConfig | None,
    nudity: NudityDetector | None = None,
    *,
    open_nsfw: bool = True,
    imagenet_cues: bool = True,
    threads: int | None = None,
) -> ImageReader | None:
    """The one way the CLI, the API and bulk scoring assemble their readers (None: nothing reads images).

    open_nsfw is on unless turned off, with or without an image model (its thresholds come from the model's
    calibration, else the defaults); the ImageNet cues come with an image model whose manifest lists its
    ImageNet network, which also runs without the cues when the model limits its heads to their domain.
    A missing open_nsfw package raises rather than silently reading photos without it.
    """
    cues = None
    m = visual.manifest if visual is not None else None
    if visual is not None and m is not None and m.imagenet_onnx and (imagenet_cues or m.heads_domain):
        cues = ImageNetCues(visual.folder, m, threads, cues=imagenet_cues)
    nsfw = OpenNsfw(open_nsfw_calibration(visual), threads) if open_nsfw else None
    if visual is None and ocr is None and nudity is None and nsfw is None:
        return None
    return ImageReader(visual, ocr, nudity, nsfw, cues)
