"""Optional nudity detector: NudeNet's YOLOv8 ONNX model (PyPI `nudenet`, AGPL-3.0).

Off by default and not installed by default: the AGPL applies to a service that
uses it. Enable with `pip install -e '.[nudity]'` and `VICAS_NUDENET=1` (API) or
`vicas classify --nudenet`. Detections become `sexual` evidence with boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# NudeNet class -> contract severity of `sexual` (TAXONOMY: 2 = partial nudity, 3 = explicit).
SEVERITY_BY_CLASS: dict[str, int] = {
    "FEMALE_GENITALIA_EXPOSED": 3,
    "MALE_GENITALIA_EXPOSED": 3,
    "ANUS_EXPOSED": 3,
    "FEMALE_BREAST_EXPOSED": 2,
    "BUTTOCKS_EXPOSED": 2,
    "FEMALE_GENITALIA_COVERED": 1,
    "FEMALE_BREAST_COVERED": 1,
    "BUTTOCKS_COVERED": 1,
    "ANUS_COVERED": 1,
}


class NudityUnavailable(RuntimeError):
    """The optional detector was asked for but is not installed."""


@dataclass(frozen=True)
class NudityDetection:
    label: str
    severity: int
    score: float
    box: tuple[int, int, int, int]  # left, top, width, height


class NudityDetector:
    def __init__(self, min_score: float = 0.5) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError as e:
            raise NudityUnavailable(
                "the NudeNet detector is not installed: pip install -e '.[nudity]' (AGPL-3.0, see README)"
            ) from e
        self.detector = NudeDetector()
        self.min_score = min_score

    def detect(self, image: Image.Image) -> list[NudityDetection]:
        rgba = np.asarray(image.convert("RGBA"))  # NudeNet converts RGBA -> BGR itself
        out = []
        for d in self.detector.detect(rgba):
            severity = SEVERITY_BY_CLASS.get(str(d["class"]), 0)
            if severity and float(d["score"]) >= self.min_score:
                x, y, w, h = (int(v) for v in d["box"])
                out.append(NudityDetection(str(d["class"]), severity, round(float(d["score"]), 4), (x, y, w, h)))
        return out
