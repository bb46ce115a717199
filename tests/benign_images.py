"""Benign stand-in pictures for the hash-list tests: made up from noise and shapes, never real material.

Hash lists are tested with hashes of these pictures; each seed gives a different, photo-like picture
(detail at every scale, so PDQ rates it high quality).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def photo_like(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    acc = np.zeros((h, w, 3))
    for octave in range(1, 8):  # fractal noise: coarse shapes down to fine texture, weaker as it gets finer
        n = 2**octave
        grid = Image.fromarray(rng.integers(0, 256, (n, n, 3), dtype=np.uint8))
        acc += np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64) / octave
    acc = (acc - acc.min()) / (np.ptp(acc) + 1e-9) * 255
    img = Image.fromarray(acc.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, w // 3)), y0 + int(rng.integers(20, h // 3))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def crop_border(img: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    return img.crop((dx, dy, img.width - dx, img.height - dy))
