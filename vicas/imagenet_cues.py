"""Real-photo cues from ImageNet: weapons, alcohol and tobacco, slot machines, named in the evidence.

The generated-image heads learned from drawings; the backbone under them learned from ImageNet photographs,
and its original 1000-class layer knows revolvers, rifles, beer and wine bottles, syringes and slot machines.
Export keeps that original network (before fine-tuning) as `imagenet.onnx` in the image model folder, listed
with its checksum in the manifest. Which classes count, for which category, at which severity and threshold
is data: `vicas/resources/imagenet_cues.tsv`, with the reason for each row and for the classes left out.

The same network also tells where the generated-image heads may be read (`HeadsDomain`). The heads learned
from drawings and fire on photographs they have never seen (a motorcycle read as violence); export stores the
ImageNet features of the heads' training pictures and a similarity threshold fitted on their dev pictures
alone (keep 99% of them), and the heads are read only on pictures at least that close to what they learned
from. On a photograph they stay silent; open_nsfw, the cues and the OCR text read it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vicas.manifest import Manifest, ManifestError
from vicas.open_nsfw import cpu_session
from vicas.taxonomy import ALLOWED_SEVERITIES
from vicas.visual import preprocess
from vicas.visual_categories import VISUAL_CATEGORIES

CUES_TSV = Path(__file__).parent / "resources" / "imagenet_cues.tsv"
IMAGENET_FILE = "imagenet.onnx"
IMAGENET_SIZE = 224  # the resolution the ImageNet weights were trained at
N_CLASSES = 1000
DOMAIN_FILE = "heads_domain.npz"
DOMAIN_K = 5  # similarity to a picture's k nearest training pictures: one look-alike is not a domain
DOMAIN_KEEP = 0.99  # the share of the heads' own dev pictures the threshold keeps


class CueTableError(ValueError):
    """The cue table is malformed; the message names the line."""


@dataclass(frozen=True)
class Cue:
    index: int
    name: str  # ImageNet's synonyms, comma separated
    category: str
    severity: int
    threshold: float
    why: str

    @property
    def label(self) -> str:
        """The first synonym: what the evidence says ("revolver")."""
        return self.name.split(",")[0].strip()


@dataclass(frozen=True)
class CueHit:
    """One class at or above its threshold in one picture."""

    category: str
    severity: int
    label: str
    probability: float

    @property
    def text(self) -> str:
        return f"{self.label} {self.probability:.2f}"


def load_cues(path: Path = CUES_TSV) -> list[Cue]:
    """Read and check the table: known class indices once each, visual categories, contract severities."""
    cues: list[Cue] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 6:
            raise CueTableError(f"{path}:{lineno}: 6 tab-separated columns expected, got {len(cols)}")
        try:
            cue = Cue(int(cols[0]), cols[1].strip(), cols[2].strip(), int(cols[3]), float(cols[4]), cols[5].strip())
        except ValueError as e:
            raise CueTableError(f"{path}:{lineno}: {e}") from e
        if not 0 <= cue.index < N_CLASSES or any(c.index == cue.index for c in cues):
            raise CueTableError(f"{path}:{lineno}: class index {cue.index} is outside 0-999 or listed twice")
        if cue.category not in VISUAL_CATEGORIES:
            raise CueTableError(f"{path}:{lineno}: {cue.category!r} is not a visual category {VISUAL_CATEGORIES}")
        if cue.severity < 1 or cue.severity not in ALLOWED_SEVERITIES[cue.category]:
            raise CueTableError(f"{path}:{lineno}: severity {cue.severity} is not one {cue.category} has")
        if not 0.0 < cue.threshold <= 1.0:
            raise CueTableError(f"{path}:{lineno}: threshold {cue.threshold} is not a probability in (0, 1]")
        cues.append(cue)
    if not cues:
        raise CueTableError(f"{path}: no cues")
    return cues


def table_digest(path: Path = CUES_TSV) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


def cue_hits(probs: np.ndarray, cues: list[Cue]) -> list[CueHit]:
    """The cues one picture's (1000,) class probabilities reach, strongest first."""
    hits = [
        CueHit(c.category, c.severity, c.label, round(float(probs[c.index]), 4))
        for c in cues
        if probs[c.index] >= c.threshold
    ]
    return sorted(hits, key=lambda h: -h.probability)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class HeadsDomain:
    """The pictures the generated-image heads learned from, as unit ImageNet feature vectors, and the threshold."""

    features: np.ndarray  # (N, D) unit rows
    threshold: float
    k: int = DOMAIN_K

    def similarity(self, features: np.ndarray) -> np.ndarray:
        """(B, D) features -> (B,) mean cosine similarity to each picture's k nearest reference pictures."""
        sims = unit_rows(features) @ self.features.T
        k = min(self.k, self.features.shape[0])
        return np.asarray(np.sort(sims, axis=1)[:, -k:].mean(axis=1), dtype=np.float32)

    @classmethod
    def fit(cls, reference: np.ndarray, dev: np.ndarray, keep: float = DOMAIN_KEEP, k: int = DOMAIN_K) -> HeadsDomain:
        """The threshold that keeps `keep` of the heads' own dev pictures (references: their training pictures)."""
        ref = unit_rows(reference).astype(np.float16).astype(np.float32)  # as stored
        sims = cls(ref, 0.0, k).similarity(dev)
        return cls(ref, float(np.quantile(sims, 1.0 - keep)), k)

    def save(self, path: Path) -> None:
        with path.open("wb") as f:
            np.savez(f, features=self.features.astype(np.float16), threshold=np.float32(self.threshold), k=self.k)

    @classmethod
    def load(cls, path: Path) -> HeadsDomain:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["features"].astype(np.float32), float(z["threshold"]), int(z["k"]))


class ImageNetCues:
    """The exported ImageNet network of an image model folder: cues through the table, and the heads' domain.

    `cues=False` keeps the network for the domain only (no cue evidence).
    """

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        threads: int | None = None,
        cues_tsv: Path = CUES_TSV,
        cues: bool = True,
    ) -> None:
        name = manifest.imagenet_onnx
        if not name or name not in manifest.files:
            raise ManifestError(f"{folder}: the manifest lists no ImageNet network with its checksum")
        self.cues = load_cues(cues_tsv) if cues else []
        self.digest = table_digest(cues_tsv)
        self.session: Any = cpu_session(folder / name, threads)
        self.input_name = self.session.get_inputs()[0].name
        side = self.session.get_inputs()[0].shape[-1]
        self.size = side if isinstance(side, int) else IMAGENET_SIZE
        self.has_features = len(self.session.get_outputs()) > 1
        self.domain: HeadsDomain | None = None
        if manifest.heads_domain and self.has_features:
            self.domain = HeadsDomain.load(folder / manifest.heads_domain)

    @property
    def version(self) -> str:
        return f"imagenet-cues@{self.digest}" if self.cues else "imagenet-domain"

    def run(self, images: list[Image.Image], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, 1000) softmax over ImageNet classes and (B, D) pooled features (None when the file has none).

        The input is `vicas.visual.preprocess`, the backbone's own."""
        probs, feats = [], []
        for s in range(0, len(images), batch_size):
            x = np.stack([preprocess(im, self.size) for im in images[s : s + batch_size]])
            outputs = self.session.run(None, {self.input_name: x})
            probs.append(softmax(outputs[0]))
            if self.has_features:
                feats.append(np.asarray(outputs[1], dtype=np.float32))
        if not probs:
            return np.zeros((0, N_CLASSES), dtype=np.float32), None
        return np.concatenate(probs), np.concatenate(feats) if feats else None

    def probabilities(self, images: list[Image.Image], batch_size: int = 16) -> np.ndarray:
        return self.run(images, batch_size)[0]

    def hits(self, probs: np.ndarray) -> list[list[CueHit]]:
        return [cue_hits(p, self.cues) for p in probs]

    def read(self, images: list[Image.Image]) -> list[list[CueHit]]:
        return self.hits(self.probabilities(images))
