"""Visual inference on an exported image model: ONNX Runtime, Pillow, numpy. No torch.

`preprocess` is the one definition of how a picture becomes model input: training,
evaluation, export and serving all call it, so there is no train/serve skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vicas.engine import open_onnx
from vicas.inference import category_scores, severities, severity_probabilities
from vicas.manifest import Manifest, ManifestError, load_manifest
from vicas.taxonomy import CATEGORIES

# EfficientNet-Lite's input convention: (x - 127) / 128 on 0-255 values.
MEAN = 127.0 / 255.0
STD = 128.0 / 255.0


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """RGB image -> (3, size, size) float32, the whole picture squeezed to a square (banners keep their edges)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return np.ascontiguousarray(((arr - MEAN) / STD).transpose(2, 0, 1))


def expand_logits(logits: np.ndarray, head_categories: list[str]) -> np.ndarray:
    """(B, H, 3) logits over the model's categories -> (B, C, 3) over the contract's; others certainly absent."""
    out = np.full((logits.shape[0], len(CATEGORIES), 3), -30.0, dtype=np.float32)
    for hi, cat in enumerate(head_categories):
        out[:, CATEGORIES.index(cat)] = logits[:, hi]
    return out


@dataclass
class VisualPrediction:
    """The visual model's reading of one image, over all contract categories (non-visual ones are 0)."""

    severities: dict[str, int]
    scores: dict[str, float]
    severity_probs: np.ndarray  # (C, 3)


class VisualEngine:
    """Loads an exported image model folder (verified through its manifest) and classifies pictures."""

    def __init__(
        self, folder: str | Path, onnx_file: str | None = None, threads: int | None = None, check_files: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.manifest: Manifest = load_manifest(self.folder, check_files=check_files)
        if self.manifest.kind != "image" or not self.manifest.image_size or not self.manifest.head_categories:
            raise ManifestError(f"{self.folder} does not hold an image model (kind {self.manifest.kind!r})")
        self.calibration, self.session = open_onnx(self.folder, self.manifest, onnx_file, threads)
        self.size: int = self.manifest.image_size
        self.head_categories: list[str] = list(self.manifest.head_categories)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def version(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def logits(self, images: list[Image.Image], batch_size: int = 16) -> np.ndarray:
        """(B, C, 3) contract-wide logits for pictures."""
        out = []
        for s in range(0, len(images), batch_size):
            x = np.stack([preprocess(im, self.size) for im in images[s : s + batch_size]])
            out.append(self.session.run(None, {self.input_name: x})[0])
        if not out:
            return np.zeros((0, len(CATEGORIES), 3), dtype=np.float32)
        return expand_logits(np.concatenate(out), self.head_categories)

    def classify(self, images: list[Image.Image], batch_size: int = 16) -> list[VisualPrediction]:
        probs = severity_probabilities(self.logits(images, batch_size), self.calibration)
        sevs = severities(probs, self.calibration)
        scores = category_scores(probs)
        return [
            VisualPrediction(
                severities=sev,
                scores={c: round(float(v), 4) for c, v in zip(CATEGORIES, row, strict=True)},
                severity_probs=p,
            )
            for sev, row, p in zip(sevs, scores, probs, strict=True)
        ]
