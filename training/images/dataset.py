"""Labelled images as training tensors: targets, masks for unknown labels, augmentation.

Input tensors come from `vicas.visual.preprocess`, the function serving uses.
Augmentation changes the picture before that step, never the conversion itself.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageEnhance

from training.images.manifest import ImageRecord
from vicas.images import to_rgb
from vicas.visual import preprocess
from vicas.visual_categories import VISUAL_CATEGORIES


@dataclass
class ImageExample:
    image: Image.Image
    target: np.ndarray  # (H, 3) 1 where severity >= k
    mask: np.ndarray  # (H, 3) 0 where the category is not annotated


def severity_targets(severities: dict[str, int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative targets and masks over VISUAL_CATEGORIES; None (not annotated) is masked, not negative."""
    target = np.zeros((len(VISUAL_CATEGORIES), 3), dtype=np.float32)
    mask = np.zeros_like(target)
    for i, cat in enumerate(VISUAL_CATEGORIES):
        sev = severities.get(cat)
        if sev is None:
            continue
        mask[i] = 1.0
        target[i, :sev] = 1.0
    return target, mask


def load_examples(records: list[ImageRecord], keep_side: int) -> list[ImageExample]:
    """Decode once, kept at a modest size so epochs do not re-read files."""
    out = []
    for r in records:
        with Image.open(r.path) as im:
            im.load()
            img = to_rgb(im).copy()
        img.thumbnail((keep_side, keep_side))
        target, mask = severity_targets(r.severities)
        out.append(ImageExample(img, target, mask))
    return out


def augment(img: Image.Image, rng: random.Random) -> Image.Image:
    """Crops that keep most of the picture, flips, colour and JPEG changes: what re-posted images go through."""
    w, h = img.size
    scale = rng.uniform(0.75, 1.0)
    cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.75, 1.25))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.75, 1.25))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    if rng.random() < 0.3:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(35, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def batches(
    examples: list[ImageExample],
    size: int,
    batch_size: int,
    rng: random.Random | None = None,
    augmented: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Tensors in batches; shuffled (and augmented unless `augmented` is False) when `rng` is given."""
    order = list(range(len(examples)))
    if rng is not None:
        rng.shuffle(order)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        pics = [augment(examples[i].image, rng) if rng and augmented else examples[i].image for i in idx]
        x = torch.from_numpy(np.stack([preprocess(p, size) for p in pics]))
        t = torch.from_numpy(np.stack([examples[i].target for i in idx]))
        m = torch.from_numpy(np.stack([examples[i].mask for i in idx]))
        yield x, t, m
