"""Generate the default labelled image set for the visual classifier (no public dataset fits).

Every picture is drawn with Pillow: emoji glyphs (Noto Color Emoji) as objects,
procedural shapes (chips, roulette wheels, handguns, powder lines, buildings,
blood splatter), varied backgrounds, clutter, Vietnamese text, colour jitter and
JPEG re-compression. A scene painter draws one scene into a box and returns the
severities it shows; the rules are tabled in data_cards/generated_images.md.
Hard negatives (a kitchen knife among vegetables, pills at a pharmacy, cards in a
family game) share objects with positives and are labelled 0.

Output: `<out>/images/<split>/<split>_<n>.jpg`, `<out>/labels.csv` (the format
`training.images.manifest` reads) and `<out>/generation_meta.csv` (scene names per
image, for error analysis; not part of the user-facing format).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont
from pydantic import Field, model_validator
from tqdm import tqdm

from training.config import StageConfig, load_section
from training.images.manifest import CSV_HEADER, MANIFEST_NAME, SPLITS
from vicas.visual_categories import VISUAL_CATEGORIES

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the only size Noto Color Emoji's bitmap strikes offer
META_NAME = "generation_meta.csv"

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/truetype/liberation2",
    "/usr/share/fonts/truetype/liberation",
    "/usr/share/fonts/truetype/noto",
)
# Candidate text fonts by style; each is used only if it has Vietnamese glyphs (Liberation 1.x lacks them).
_FONT_NAMES: dict[str, tuple[str, ...]] = {
    "regular": ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "NotoSans-Regular.ttf", "DejaVuSansCondensed.ttf"),
    "bold": (
        "DejaVuSans-Bold.ttf",
        "LiberationSans-Bold.ttf",
        "NotoSans-Bold.ttf",
        "DejaVuSansCondensed-Bold.ttf",
        "NotoSansDisplay-Bold.ttf",
        "LiberationSans-BoldItalic.ttf",
    ),
    "serif": ("DejaVuSerif-Bold.ttf", "LiberationSerif-Bold.ttf", "NotoSerif-Bold.ttf", "NotoSerif-Italic.ttf"),
}
_VIETNAMESE_PROBE = "ậứẵốỗữặịọụỳỹđẫẩơưỏẻể"

RGB = tuple[int, int, int]
Labels = dict[str, int]


class ImageDataConfig(StageConfig):
    """Section `image_data` of params.yaml: size and mix of the generated image set."""

    n_train: int = Field(2400, ge=1)
    n_dev: int = Field(300, ge=1)
    n_test: int = Field(300, ge=0)
    size: int = Field(224, ge=32, le=1024, description="square side in pixels")
    seed: int = 13
    negative_fraction: float = Field(0.35, ge=0, lt=1, description="share of images with every severity 0")
    hard_negative_share: float = Field(0.65, ge=0, le=1, description="share of negatives that are hard negatives")
    multi_label_fraction: float = Field(0.2, ge=0, le=1, description="share of positives showing a second category")
    caption_probability: float = Field(0.3, ge=0, le=1, description="share of images with a neutral caption bar")
    jpeg_quality_range: tuple[int, int] = (45, 95)

    @model_validator(mode="after")
    def _quality(self) -> ImageDataConfig:
        lo, hi = self.jpeg_quality_range
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"jpeg_quality_range must be two qualities 1 <= low <= high <= 100, got {lo}, {hi}")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# Drawing primitives


@dataclass(frozen=True)
class Box:
    """A region of the canvas in pixels; painters place things at fractions of it."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def m(self) -> float:
        return min(self.w, self.h)

    def p(self, fx: float, fy: float) -> tuple[float, float]:
        return self.x0 + fx * self.w, self.y0 + fy * self.h

    def sub(self, fx0: float, fy0: float, fx1: float, fy1: float) -> Box:
        return Box(self.x0 + fx0 * self.w, self.y0 + fy0 * self.h, self.x0 + fx1 * self.w, self.y0 + fy1 * self.h)

    def xy(self) -> tuple[int, int, int, int]:
        return round(self.x0), round(self.y0), round(self.x1), round(self.y1)


@cache
def _emoji_font() -> ImageFont.FreeTypeFont:
    if not EMOJI_FONT.is_file():
        raise SystemExit(f"{EMOJI_FONT} is missing: install Debian's fonts-noto-color-emoji")
    return ImageFont.truetype(str(EMOJI_FONT), EMOJI_FONT_SIZE)


@cache
def _glyph(ch: str) -> Image.Image:
    """One emoji rendered once at the font's native size and cropped to its ink."""
    im = Image.new("RGBA", (EMOJI_FONT_SIZE * 3, EMOJI_FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((4, 4), ch, font=_emoji_font(), embedded_color=True)
    bbox = im.getbbox()
    if bbox is None:
        raise ValueError(f"the emoji font has no glyph for {ch!r}")
    return im.crop(bbox)


def _has_vietnamese(path: Path) -> bool:
    font = ImageFont.truetype(str(path), 24)
    notdef = bytes(font.getmask("\U0010fffd"))
    return all(bytes(font.getmask(ch)) != notdef for ch in _VIETNAMESE_PROBE)


@cache
def _font_paths(style: str) -> tuple[str, ...]:
    found: list[str] = []
    for name in _FONT_NAMES[style]:
        for d in _FONT_DIRS:
            path = Path(d) / name
            if path.is_file() and _has_vietnamese(path):
                found.append(str(path))
                break
    if not found:
        raise SystemExit(f"no {style} font with Vietnamese glyphs found (install fonts-dejavu-core)")
    return tuple(found)


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def jitter(c: RGB, rng: random.Random, amount: int = 20) -> RGB:
    r, g, b = (max(0, min(255, v + rng.randint(-amount, amount))) for v in c)
    return r, g, b


def rand_color(rng: random.Random, lo: int = 0, hi: int = 255) -> RGB:
    return rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi)


class Scene:
    """The canvas of one image with the helpers painters draw with."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self.rng = rng
        self.img = Image.new("RGB", (size, size), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.img, "RGBA")

    def nrng(self) -> np.random.Generator:
        return np.random.default_rng(self.rng.getrandbits(32))

    def emoji(
        self, ch: str, x: float, y: float, h: float, angle: float | None = None, flip: bool = False, alpha: float = 1.0
    ) -> None:
        """Paste an emoji centred at (x, y), about h pixels tall, turned and mirrored."""
        g = _glyph(ch)
        h = max(4.0, h * self.rng.uniform(0.9, 1.1))
        w = max(4, round(g.width * h / g.height))
        im = g.resize((w, round(h)), Image.Resampling.LANCZOS)
        if flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        a = self.rng.uniform(-15, 15) if angle is None else angle
        if abs(a) > 0.5:
            im = im.rotate(a, resample=Image.Resampling.BICUBIC, expand=True)
        if alpha < 1.0:
            im.putalpha(im.getchannel("A").point(lambda v: int(v * alpha)))
        self.img.paste(im, (round(x - im.width / 2), round(y - im.height / 2)), im)

    def text(
        self,
        s: str,
        x: float,
        y: float,
        h: float,
        fill: RGB | tuple[int, int, int, int] = (255, 255, 255),
        *,
        style: str = "bold",
        max_w: float | None = None,
        stroke: RGB | None = None,
        anchor: str = "mm",
    ) -> None:
        """Draw text about h pixels tall, shrunk to fit max_w."""
        path = self.rng.choice(_font_paths(style))
        size = max(6, round(h))
        font = _font(path, size)
        if max_w is not None:
            length = font.getlength(s)
            if length > max_w and length > 0:
                size = max(6, int(size * max_w / length))
                font = _font(path, size)
        sw = max(1, size // 12) if stroke is not None else 0
        self.draw.text((x, y), s, font=font, fill=fill, anchor=anchor, stroke_width=sw, stroke_fill=stroke)

    def soft(self, paint: Callable[[ImageDraw.ImageDraw], None], blur: float) -> None:
        """Draw on a transparent layer, blur it and blend it in (smoke, glow, steam)."""
        layer = Image.new("RGBA", self.img.size, (0, 0, 0, 0))
        paint(ImageDraw.Draw(layer))
        layer = layer.filter(ImageFilter.GaussianBlur(max(0.5, blur)))
        base = self.img.convert("RGBA")
        base.alpha_composite(layer)
        self.img = base.convert("RGB")
        self.draw = ImageDraw.Draw(self.img, "RGBA")

    def scatter(self, chars: Sequence[str], n: int, box: Box, h: float) -> None:
        """Place n emoji from chars at spread-out random spots in box."""
        spots: list[tuple[float, float]] = []
        for _ in range(n):
            best = box.p(self.rng.uniform(0.1, 0.9), self.rng.uniform(0.1, 0.9))
            for _ in range(6):
                cand = box.p(self.rng.uniform(0.1, 0.9), self.rng.uniform(0.1, 0.9))
                if all(math.dist(cand, s) > h * 0.8 for s in spots):
                    best = cand
                    break
            spots.append(best)
            self.emoji(self.rng.choice(chars), best[0], best[1], h * self.rng.uniform(0.8, 1.2))


# ---------------------------------------------------------------------------------------------------------------------
# Backgrounds and settings


def _gradient(size: int, c0: RGB, c1: RGB, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    t = np.clip((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle) + 0.5, 0, 1)[..., None]
    out: np.ndarray = np.asarray(c0, np.float32) * (1 - t) + np.asarray(c1, np.float32) * t
    return out


def background(sc: Scene) -> None:
    """Fill the canvas with one of several backgrounds: gradient, noise, texture, blurred 'photo' blobs, room."""
    rng, s = sc.rng, sc.size
    kind = rng.choice(["gradient", "radial", "noise", "tiles", "wood", "blobs", "blobs", "room", "plain"])
    c0, c1 = rand_color(rng), rand_color(rng)
    nr = sc.nrng()
    if kind == "gradient":
        arr = _gradient(s, c0, c1, rng.uniform(0, math.tau))
    elif kind == "radial":
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
        t = np.clip(np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) * 1.4, 0, 1)[..., None]
        arr = np.asarray(c0, np.float32) * (1 - t) + np.asarray(c1, np.float32) * t
    elif kind == "noise":
        small = nr.normal(0, 1, (max(2, s // 16), max(2, s // 16), 1)).astype(np.float32)
        up = np.asarray(Image.fromarray(((small[..., 0] + 3) * 40).clip(0, 255).astype(np.uint8)).resize((s, s)))
        t = (up.astype(np.float32) / 255.0)[..., None]
        arr = np.asarray(c0, np.float32) * (1 - t) + np.asarray(c1, np.float32) * t
    elif kind == "tiles":
        n = rng.randint(4, 12)
        yy, xx = np.mgrid[0:s, 0:s]
        t = (((xx * n) // s + (yy * n) // s) % 2).astype(np.float32)[..., None]
        if rng.random() < 0.5:  # stripes instead of a checkerboard
            t = (((xx + yy * rng.choice([0, 1])) * n // s) % 2).astype(np.float32)[..., None]
        c1 = jitter(c0, rng, 40)
        arr = np.asarray(c0, np.float32) * (1 - t) + np.asarray(c1, np.float32) * t
    elif kind == "wood":
        base = rng.choice([(150, 100, 60), (190, 140, 90), (110, 70, 40), (210, 180, 140)])
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        grain = np.sin((xx * rng.uniform(20, 50)) + np.sin(yy * rng.uniform(2, 6)) * 3) * 0.5 + 0.5
        t = (grain * 0.35)[..., None]
        arr = np.asarray(base, np.float32) * (1 - t) + np.asarray(jitter(base, rng, 50), np.float32) * t
    else:
        arr = np.empty((s, s, 3), np.float32)
        arr[:] = c0
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    if kind in ("blobs", "room"):
        d = ImageDraw.Draw(img)
        if kind == "room":
            wall, floor = rand_color(rng, 120, 240), rand_color(rng, 60, 200)
            horizon = rng.uniform(0.5, 0.75) * s
            d.rectangle((0, 0, s, horizon), fill=wall)
            d.rectangle((0, horizon, s, s), fill=floor)
            if rng.random() < 0.6:  # a window or a picture frame on the wall
                x = rng.uniform(0.1, 0.6) * s
                d.rectangle((x, 0.1 * s, x + 0.3 * s, 0.1 * s + 0.25 * s), fill=rand_color(rng, 150, 255))
        for _ in range(rng.randint(5, 12)):
            x, y, r = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(0.08, 0.35) * s
            d.ellipse((x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r), fill=rand_color(rng))
        img = img.filter(ImageFilter.GaussianBlur(s / rng.uniform(8, 25)))
    if rng.random() < 0.5:
        arr2 = np.asarray(img, np.float32) + nr.normal(0, rng.uniform(2, 10), (s, s, 1))
        img = Image.fromarray(arr2.clip(0, 255).astype(np.uint8), "RGB")
    sc.img.paste(img)


_CLUTTER = "☕ 📱 🔑 🖊️ 🪴 👟 📦 📚 🕶️ 🧢 🎧 ⏰ 🪑 🖼️ 💡 🧦 🧴 🌵 📎 🛋️ 🕰️ 🧺"  # nothing child-coded (no toys)
CLUTTER: tuple[str, ...] = tuple(_CLUTTER.split())  # neutral objects: never evidence for any category


def clutter(sc: Scene) -> None:
    """A few neutral objects anywhere, drawn before the scene so they never hide its evidence."""
    for _ in range(sc.rng.choice([0, 0, 1, 1, 2, 3])):
        sc.emoji(
            sc.rng.choice(CLUTTER),
            sc.rng.uniform(0, sc.size),
            sc.rng.uniform(0, sc.size),
            sc.size * sc.rng.uniform(0.08, 0.16),
            alpha=sc.rng.uniform(0.6, 1.0),
        )


def table(sc: Scene, box: Box, top: float = 0.45, kind: str | None = None) -> Box:
    """A table top over the lower part of box; returns its surface."""
    rng = sc.rng
    kind = kind or rng.choice(["wood", "cloth", "felt", "white", "dark"])
    color = {
        "wood": (150, 100, 60),
        "cloth": rand_color(rng, 120, 240),
        "felt": (20, 110, 50),
        "white": (235, 235, 230),
        "dark": (50, 45, 50),
    }[kind]
    surface = box.sub(0, top, 1, 1)
    if rng.random() < 0.5:
        sc.draw.ellipse(box.sub(-0.1, top, 1.1, 1.3).xy(), fill=jitter(color, rng), outline=(40, 30, 20), width=2)
    else:
        sc.draw.rectangle(surface.xy(), fill=jitter(color, rng))
        sc.draw.line((box.x0, surface.y0, box.x1, surface.y0), fill=(30, 25, 20), width=max(1, sc.size // 100))
    return surface


def sky(sc: Scene, box: Box, night: bool | None = None) -> bool:
    night = sc.rng.random() < 0.3 if night is None else night
    top, bottom = ((10, 15, 50), (40, 40, 90)) if night else ((90, 150, 230), (190, 220, 250))
    arr = _gradient(max(2, round(box.m)), jitter(top, sc.rng), jitter(bottom, sc.rng), math.pi / 2)
    im = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB").resize((max(1, round(box.w)), max(1, round(box.h))))
    sc.img.paste(im, (round(box.x0), round(box.y0)))
    if night:
        for _ in range(int(box.w * box.h / 600)):
            x, y = box.p(sc.rng.random(), sc.rng.random() * 0.6)
            sc.draw.point((x, y), fill=(255, 255, 220))
    elif sc.rng.random() < 0.6:
        sc.emoji("☁️", *box.p(sc.rng.uniform(0.15, 0.85), sc.rng.uniform(0.08, 0.25)), box.m * 0.18, angle=0)
    return night


def building(sc: Scene, box: Box, x0: float, x1: float, roof: float) -> None:
    """A tall building from fractions x0..x1 of box, roof at fraction roof, windows in a grid."""
    rng = sc.rng
    wall = jitter(rng.choice([(170, 170, 175), (200, 180, 150), (120, 130, 150), (220, 220, 210)]), rng)
    b = box.sub(x0, roof, x1, 1.0)
    sc.draw.rectangle(b.xy(), fill=wall, outline=(60, 60, 60))
    sc.draw.rectangle(box.sub(x0 - 0.01, roof - 0.015, x1 + 0.01, roof + 0.01).xy(), fill=jitter(wall, rng, 40))
    cols, rows = rng.randint(3, 5), rng.randint(6, 10)
    win = jitter((120, 170, 210), rng)
    for i in range(cols):
        for j in range(rows):
            wb = b.sub((i + 0.25) / cols, 0.04 + j / rows * 0.95, (i + 0.75) / cols, 0.04 + (j + 0.5) / rows * 0.95)
            sc.draw.rectangle(wb.xy(), fill=win)


def road(sc: Scene, box: Box, top: float = 0.6) -> Box:
    r = box.sub(0, top, 1, 1)
    sc.draw.rectangle(r.xy(), fill=jitter((70, 70, 75), sc.rng))
    y = r.y0 + r.h * 0.5
    x = r.x0
    while x < r.x1:
        sc.draw.rectangle((x, y - 1, x + r.w * 0.1, y + max(1, sc.size // 100)), fill=(240, 240, 240))
        x += r.w * 0.18
    return r


def poster(sc: Scene, box: Box, color: RGB | None = None) -> Box:
    """A sheet or board inside box with a border; returns its inner area."""
    color = color or sc.rng.choice([(250, 250, 245), (255, 240, 200), (230, 245, 255), (30, 30, 40), (250, 225, 230)])
    inner = box.sub(0.04, 0.04, 0.96, 0.96)
    sc.draw.rounded_rectangle(inner.xy(), radius=max(2, box.m * 0.04), fill=jitter(color, sc.rng, 10))
    sc.draw.rounded_rectangle(
        inner.xy(), radius=max(2, box.m * 0.04), outline=rand_color(sc.rng, 0, 200), width=max(1, sc.size // 80)
    )
    return inner.sub(0.05, 0.05, 0.95, 0.95)


def ink_for(color: RGB) -> RGB:
    return (20, 20, 20) if sum(color) > 400 else (250, 250, 250)


def phone(sc: Scene, box: Box) -> Box:
    """A phone (or a web page) frame; returns the screen."""
    if sc.rng.random() < 0.6:
        w = box.m * 0.62
        cx = box.p(0.5, 0.5)[0]
        body = Box(cx - w / 2, box.y0 + box.h * 0.02, cx + w / 2, box.y1 - box.h * 0.02)
        sc.draw.rounded_rectangle(body.xy(), radius=max(3, w * 0.12), fill=(20, 20, 25))
        screen = body.sub(0.07, 0.06, 0.93, 0.94)
    else:
        screen = box.sub(0.02, 0.08, 0.98, 0.98)
        sc.draw.rectangle(box.sub(0.02, 0.02, 0.98, 0.1).xy(), fill=(225, 225, 230))
        sc.text("https://", *box.sub(0.05, 0.02, 0.4, 0.1).p(0.5, 0.5), box.h * 0.05, (90, 90, 90), style="regular")
    sc.draw.rectangle(screen.xy(), fill=jitter(sc.rng.choice([(25, 10, 40), (120, 10, 20), (10, 40, 20)]), sc.rng))
    return screen


def news_frame(sc: Scene, box: Box, headline: str) -> Box:
    """A TV news frame: a 'photo' area, a red TIN NÓNG tag and the headline bar; returns the photo area."""
    rng = sc.rng
    bar = box.sub(0, 0.78, 1, 1)
    sc.draw.rectangle(bar.xy(), fill=jitter((20, 40, 120), rng))
    sc.text(headline, *bar.p(0.5, 0.5), bar.h * 0.42, (255, 255, 255), max_w=bar.w * 0.95)
    tag = box.sub(0.02, 0.68, 0.36, 0.78)
    sc.draw.rectangle(tag.xy(), fill=(200, 20, 20))
    sc.text(rng.choice(["TIN NÓNG", "THỜI SỰ", "TIN TỨC", "BẢN TIN"]), *tag.p(0.5, 0.5), tag.h * 0.6, max_w=tag.w * 0.9)
    return box.sub(0.05, 0.05, 0.95, 0.66)


def banner(sc: Scene, box: Box, s: str, bg: RGB, fg: RGB | None = None) -> None:
    sc.draw.rounded_rectangle(box.xy(), radius=max(2, box.h * 0.25), fill=bg)
    sc.text(s, *box.p(0.5, 0.52), box.h * 0.62, fg or ink_for(bg), max_w=box.w * 0.92)


def splatter(sc: Scene, x: float, y: float, r: float, drips: bool = True) -> None:
    """Blood-like red splatter: a blob, satellite droplets and drips."""
    rng = sc.rng
    red = (rng.randint(120, 200), rng.randint(0, 20), rng.randint(0, 25), 235)
    for _ in range(rng.randint(5, 9)):
        dx, dy, rr = rng.gauss(0, r * 0.35), rng.gauss(0, r * 0.35), r * rng.uniform(0.3, 0.6)
        sc.draw.ellipse((x + dx - rr, y + dy - rr, x + dx + rr, y + dy + rr), fill=red)
    for _ in range(rng.randint(8, 20)):
        a, d = rng.uniform(0, math.tau), r * rng.uniform(0.9, 2.2)
        rr = r * rng.uniform(0.04, 0.14)
        px, py = x + math.cos(a) * d, y + math.sin(a) * d
        sc.draw.ellipse((px - rr, py - rr, px + rr, py + rr), fill=red)
    if drips:
        for _ in range(rng.randint(2, 5)):
            px = x + rng.uniform(-r * 0.6, r * 0.6)
            length = r * rng.uniform(0.5, 1.6)
            wd = max(1, r * rng.uniform(0.06, 0.14))
            sc.draw.line((px, y, px, y + length), fill=red, width=round(wd))
            sc.draw.ellipse((px - wd, y + length - wd, px + wd, y + length + wd), fill=red)


def handgun(sc: Scene, x: float, y: float, length: float, angle: float, facing_left: bool = False) -> None:
    """A dark pistol silhouette (Noto's 🔫 is a water pistol, kept for the toy hard negative)."""
    pts = [(0, 0), (1.0, 0), (1.0, 0.22), (0.42, 0.22), (0.36, 0.3), (0.4, 0.72), (0.2, 0.75), (0.12, 0.3), (0, 0.26)]
    guard = [(0.36, 0.25), (0.5, 0.25), (0.5, 0.38), (0.34, 0.4)]
    color = jitter(sc.rng.choice([(35, 35, 40), (60, 60, 65), (25, 25, 25)]), sc.rng, 10)
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    sign = -1 if facing_left else 1

    def tr(poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out = []
        for px, py in poly:
            lx, ly = (px - 0.5) * length * sign, (py - 0.3) * length
            out.append((x + lx * ca - ly * sa, y + lx * sa + ly * ca))
        return out

    sc.draw.polygon(tr(pts), fill=color, outline=(10, 10, 10))
    sc.draw.polygon(tr(guard), outline=color, width=max(1, round(length * 0.04)))


def chips(sc: Scene, x: float, y: float, r: float, n: int) -> None:
    """A stack of casino chips."""
    color = sc.rng.choice([(200, 30, 30), (30, 30, 30), (30, 80, 200), (20, 140, 60), (240, 240, 240)])
    for i in range(n):
        cy = y - i * r * 0.25
        sc.draw.ellipse((x - r, cy - r * 0.45, x + r, cy + r * 0.45), fill=color, outline=(255, 255, 255), width=1)
    cy = y - (n - 1) * r * 0.25
    sc.draw.ellipse((x - r * 0.6, cy - r * 0.27, x + r * 0.6, cy + r * 0.27), outline=(255, 255, 255), width=1)


def roulette(sc: Scene, x: float, y: float, r: float) -> None:
    n = 18
    sc.draw.ellipse((x - r * 1.12, y - r * 1.12, x + r * 1.12, y + r * 1.12), fill=(110, 60, 25))
    for i in range(n):
        color = (0, 140, 50) if i == 0 else ((190, 20, 20) if i % 2 else (20, 20, 20))
        sc.draw.pieslice((x - r, y - r, x + r, y + r), i * 360 / n, (i + 1) * 360 / n, fill=color)
    sc.draw.ellipse((x - r * 0.6, y - r * 0.6, x + r * 0.6, y + r * 0.6), fill=(150, 90, 40))
    sc.draw.ellipse((x - r * 0.15, y - r * 0.15, x + r * 0.15, y + r * 0.15), fill=(220, 190, 80))
    a = sc.rng.uniform(0, math.tau)
    bx, by = x + math.cos(a) * r * 0.8, y + math.sin(a) * r * 0.8
    sc.draw.ellipse((bx - r * 0.07, by - r * 0.07, bx + r * 0.07, by + r * 0.07), fill=(250, 250, 250))


def playing_card(sc: Scene, x: float, y: float, w: float, angle: float) -> None:
    rng = sc.rng
    suit = rng.choice("♠♥♦♣")
    rank = rng.choice(["A", "K", "Q", "J", "10", "9", "7", "5", "3"])
    cw, ch = max(6, round(w)), max(8, round(w * 1.4))
    card = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
    d = ImageDraw.Draw(card)
    d.rounded_rectangle((0, 0, cw - 1, ch - 1), radius=max(1, cw // 8), fill=(250, 250, 250), outline=(80, 80, 80))
    color = (200, 20, 20) if suit in "♥♦" else (20, 20, 20)
    font = _font(_font_paths("bold")[0], max(6, round(cw * 0.3)))
    d.text((cw * 0.08, ch * 0.04), rank, font=font, fill=color)
    big = _font(_font_paths("regular")[0], max(6, round(cw * 0.6)))
    d.text((cw / 2, ch * 0.58), suit, font=big, fill=color, anchor="mm")
    card = card.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    sc.img.paste(card, (round(x - card.width / 2), round(y - card.height / 2)), card)


def tablets(sc: Scene, x: float, y: float, r: float, n: int, colors: Sequence[RGB] | None = None) -> None:
    """A pile of small round pills."""
    palette = colors or [(250, 250, 250), (240, 200, 60), (120, 190, 240), (240, 120, 160)]
    for _ in range(n):
        px, py = x + sc.rng.gauss(0, r * 0.4), y + sc.rng.gauss(0, r * 0.25)
        pr = r * sc.rng.uniform(0.1, 0.16)
        sc.draw.ellipse(
            (px - pr, py - pr * 0.8, px + pr, py + pr * 0.8), fill=sc.rng.choice(palette), outline=(90, 90, 90)
        )


def pill_bottle(sc: Scene, x: float, y: float, h: float) -> None:
    w = h * 0.55
    body = jitter(sc.rng.choice([(230, 120, 30), (250, 250, 250), (90, 150, 220)]), sc.rng)
    sc.draw.rounded_rectangle((x - w / 2, y - h * 0.35, x + w / 2, y + h / 2), radius=max(1, w * 0.1), fill=body)
    sc.draw.rectangle(
        (x - w * 0.55, y - h / 2, x + w * 0.55, y - h * 0.33), fill=(240, 240, 240), outline=(120, 120, 120)
    )
    sc.draw.rectangle((x - w * 0.4, y - h * 0.1, x + w * 0.4, y + h * 0.25), fill=(255, 255, 255))


def powder_lines(sc: Scene, box: Box) -> None:
    """White powder lines on a dark mirror with a card and a rolled banknote."""
    rng = sc.rng
    m = box.sub(0.05, 0.3, 0.95, 0.95)
    sc.draw.rounded_rectangle(m.xy(), radius=max(2, m.m * 0.05), fill=jitter((40, 45, 55), rng, 10))
    for i in range(rng.randint(2, 4)):
        y = m.y0 + m.h * (0.2 + i * 0.18)
        x0 = m.x0 + m.w * rng.uniform(0.1, 0.25)
        x1 = x0 + m.w * rng.uniform(0.35, 0.55)
        sc.draw.rounded_rectangle((x0, y, x1, y + max(2, m.h * 0.05)), radius=2, fill=(245, 245, 245))
        for _ in range(6):
            px, py = rng.uniform(x0, x1), y + rng.uniform(-2, m.h * 0.07)
            sc.draw.point((px, py), fill=(230, 230, 230))
    cx, cy = m.p(0.8, 0.75)
    sc.draw.rectangle(
        (cx - m.w * 0.12, cy - m.h * 0.1, cx + m.w * 0.12, cy + m.h * 0.05), fill=rand_color(rng, 80, 230)
    )
    rx, ry = m.p(0.78, 0.28)
    sc.draw.line(
        (rx - m.w * 0.15, ry, rx + m.w * 0.1, ry - m.h * 0.1), fill=(120, 170, 110), width=max(2, round(m.h * 0.07))
    )


def zip_bag(sc: Scene, x: float, y: float, w: float, content: str) -> None:
    h = w * 1.2
    sc.draw.rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=(235, 240, 245, 150), outline=(160, 160, 170))
    sc.draw.line((x - w / 2, y - h * 0.38, x + w / 2, y - h * 0.38), fill=(200, 40, 40), width=max(1, round(w * 0.05)))
    if content == "powder":
        sc.draw.ellipse((x - w * 0.35, y - h * 0.05, x + w * 0.35, y + h * 0.42), fill=(250, 250, 250))
    elif content == "pills":
        tablets(sc, x, y + h * 0.15, w * 0.8, 7, [(240, 120, 200), (120, 220, 120), (250, 220, 80)])
    else:
        sc.emoji("🌿", x, y + h * 0.1, h * 0.6)


def price_tag(sc: Scene, x: float, y: float, h: float, text: str) -> None:
    w = h * 2.6
    color = sc.rng.choice([(250, 220, 40), (230, 40, 40), (255, 255, 255), (40, 200, 90)])
    sc.draw.rounded_rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), radius=max(1, h * 0.2), fill=color)
    sc.text(text, x, y, h * 0.65, ink_for(color), max_w=w * 0.9)


def burst(sc: Scene, x: float, y: float, r: float, color: RGB) -> None:
    """A comic 'pow' star."""
    n = sc.rng.randint(9, 14)
    pts = []
    for i in range(n * 2):
        rr = r if i % 2 == 0 else r * sc.rng.uniform(0.45, 0.65)
        a = i * math.pi / n
        pts.append((x + math.cos(a) * rr, y + math.sin(a) * rr))
    sc.draw.polygon(pts, fill=color, outline=(30, 30, 30))


def warning_sign(sc: Scene, x: float, y: float, r: float) -> None:
    pts = [(x, y - r), (x + r * 0.95, y + r * 0.7), (x - r * 0.95, y + r * 0.7)]
    sc.draw.polygon(pts, fill=(250, 200, 20), outline=(20, 20, 20), width=max(1, round(r * 0.08)))
    sc.text("!", x, y + r * 0.15, r * 0.9, (20, 20, 20))


def prohibit(sc: Scene, x: float, y: float, r: float) -> None:
    w = max(2, round(r * 0.16))
    sc.draw.ellipse((x - r, y - r, x + r, y + r), outline=(220, 20, 20), width=w)
    d = r * 0.7
    sc.draw.line((x - d, y - d, x + d, y + d), fill=(220, 20, 20), width=w)


def red_cross(sc: Scene, x: float, y: float, r: float, color: RGB = (220, 30, 30)) -> None:
    a, b = r, r * 0.33
    sc.draw.rectangle((x - b, y - a, x + b, y + a), fill=color)
    sc.draw.rectangle((x - a, y - b, x + a, y + b), fill=color)


SKIN_TONES: tuple[str, ...] = ("\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff")


@cache
def _glyph_color(ch: str) -> RGB:
    """Median colour of a glyph's opaque centre (the skin of a hand emoji with a tone modifier)."""
    g = _glyph(ch)
    arr = np.asarray(g.crop((g.width // 4, g.height // 3, 3 * g.width // 4, 5 * g.height // 6)))
    opaque = arr[arr[..., 3] > 200][:, :3]
    if len(opaque) == 0:
        return (224, 172, 130)
    r, gg, b = (int(v) for v in np.median(opaque, axis=0))
    return r, gg, b


def forearm(sc: Scene, box: Box) -> tuple[float, float, float, float]:
    """A forearm (tapered shape) ending in a hand emoji of the same skin tone; returns wrist and direction."""
    rng = sc.rng
    hand = rng.choice(["✋", "🤚"]) + rng.choice(SKIN_TONES)
    skin = _glyph_color(hand)
    x0, y0 = box.p(rng.uniform(-0.1, 0.05), rng.uniform(0.6, 0.9))
    x1, y1 = box.p(rng.uniform(0.5, 0.6), rng.uniform(0.35, 0.55))
    dx, dy = (x1 - x0), (y1 - y0)
    n = math.hypot(dx, dy) or 1.0
    dx, dy = dx / n, dy / n
    px, py = -dy, dx
    we, ww = box.m * rng.uniform(0.22, 0.26) / 2, box.m * rng.uniform(0.14, 0.17) / 2
    pts = [(x0 + px * we, y0 + py * we), (x1 + px * ww, y1 + py * ww), (x1 - px * ww, y1 - py * ww)]
    pts.append((x0 - px * we, y0 - py * we))
    sc.draw.polygon(pts, fill=skin)
    sc.draw.ellipse((x0 - we, y0 - we, x0 + we, y0 + we), fill=skin)
    shade = tuple(max(0, v - 25) for v in skin)
    sc.draw.line((x0 - px * we * 0.8, y0 - py * we * 0.8, x1 - px * ww * 0.8, y1 - py * ww * 0.8), fill=shade, width=2)
    hand_h = box.m * 0.4
    angle = math.degrees(math.atan2(-dy, dx)) - 90
    sc.emoji(hand, x1 + dx * hand_h * 0.42, y1 + dy * hand_h * 0.42, hand_h, angle=angle)
    return x1 - dx * ww, y1 - dy * ww, dx, dy


def marks_on_arm(sc: Scene, wx: float, wy: float, dx: float, dy: float, length: float, n: int) -> None:
    """Short red strokes across the arm near the wrist (drawn abstractly: no anatomy, no wounds in detail)."""
    px, py = -dy, dx
    for i in range(n):
        ox, oy = wx - dx * length * 0.25 * i, wy - dy * length * 0.25 * i
        half = length * sc.rng.uniform(0.3, 0.45)
        sc.draw.line(
            (ox - px * half, oy - py * half, ox + px * half, oy + py * half),
            fill=(sc.rng.randint(150, 200), 10, 20),
            width=max(1, round(length * 0.05)),
        )


def mannequin(sc: Scene, box: Box) -> None:
    """A headless dress form wearing lingerie shapes (never a body)."""
    rng = sc.rng
    form = jitter(rng.choice([(200, 190, 180), (60, 60, 60), (230, 220, 200)]), rng, 10)
    cx = box.p(0.5, 0)[0]
    w, top, bottom = box.w * 0.5, box.y0 + box.h * 0.12, box.y0 + box.h * 0.78
    pts = [
        (cx - w * 0.35, top),
        (cx + w * 0.35, top),
        (cx + w * 0.5, top + (bottom - top) * 0.25),
        (cx + w * 0.32, top + (bottom - top) * 0.6),
        (cx + w * 0.45, bottom),
        (cx - w * 0.45, bottom),
        (cx - w * 0.32, top + (bottom - top) * 0.6),
        (cx - w * 0.5, top + (bottom - top) * 0.25),
    ]
    sc.draw.polygon(pts, fill=form, outline=(40, 40, 40))
    sc.draw.rectangle((cx - w * 0.03, bottom, cx + w * 0.03, box.y1), fill=(80, 70, 60))
    sc.draw.ellipse((cx - w * 0.12, top - w * 0.12, cx + w * 0.12, top + w * 0.02), fill=form)
    lace = jitter(rng.choice([(200, 10, 40), (20, 20, 20), (240, 120, 170), (130, 20, 90)]), rng, 15)
    by = top + (bottom - top) * 0.3
    for side in (-1, 1):
        bx = cx + side * w * 0.2
        sc.draw.chord((bx - w * 0.2, by - w * 0.18, bx + w * 0.2, by + w * 0.18), 0, 180, fill=lace)
        sc.draw.line((bx, by, cx + side * w * 0.3, top), fill=lace, width=max(1, round(w * 0.03)))
        for k in range(4):  # scalloped lace edge
            sx = bx - w * 0.18 + k * w * 0.12
            sc.draw.ellipse((sx - w * 0.03, by - w * 0.03, sx + w * 0.03, by + w * 0.03), fill=lace)
    py = top + (bottom - top) * 0.78
    sc.draw.polygon(
        [
            (cx - w * 0.42, py),
            (cx + w * 0.42, py),
            (cx + w * 0.08, bottom - (bottom - top) * 0.02),
            (cx - w * 0.08, bottom),
        ],
        fill=lace,
    )


def person_on(sc: Scene, x: float, y: float, h: float) -> None:
    """A person standing with their feet at (x, y)."""
    sc.emoji(
        sc.rng.choice(["🧍", "🧍", "🧍\u200d♂️", "🧍\u200d♀️", "🕺", "🤸"]), x, y - h / 2, h, angle=sc.rng.uniform(-8, 8)
    )


def phone_number(rng: random.Random) -> str:
    return "0" + rng.choice(["9", "8", "3", "7"]) + "".join(str(rng.randint(0, 9)) for _ in range(8))


def multiline(sc: Scene, box: Box, lines: Sequence[str], color: RGB, style: str = "bold") -> None:
    n = len(lines)
    for i, line in enumerate(lines):
        sc.text(line, *box.p(0.5, (i + 0.5) / n), box.h / n * 0.62, color, style=style, max_w=box.w * 0.96)


# ---------------------------------------------------------------------------------------------------------------------
# Scene painters. Each draws into a box and returns the severities it shows.

Painter = Callable[[Scene, Box], Labels]
POSITIVE: dict[tuple[str, int], list[Painter]] = {}
HARD_NEGATIVE: list[Painter] = []
CLEAN: list[Painter] = []


def positive(category: str, severity: int) -> Callable[[Painter], Painter]:
    def register(fn: Painter) -> Painter:
        POSITIVE.setdefault((category, severity), []).append(fn)
        return fn

    return register


def hard_negative(fn: Painter) -> Painter:
    HARD_NEGATIVE.append(fn)
    return fn


def clean(fn: Painter) -> Painter:
    CLEAN.append(fn)
    return fn


def pick(rng: random.Random, items: Sequence[str]) -> str:
    return rng.choice(items)


# --- sexual (adults only, never nudity; no person emoji other than the adult kissing couple) ---


@positive("sexual", 1)
def romance_kiss(sc: Scene, b: Box) -> Labels:
    sc.scatter(["❤️", "💕", "💖", "🌹"], sc.rng.randint(3, 6), b, b.m * 0.16)
    sc.emoji(pick(sc.rng, ["💏", "💋", "💏"]), *b.p(0.5, 0.5), b.m * 0.45)
    if sc.rng.random() < 0.6:
        text = pick(sc.rng, ["Anh yêu em", "Nhớ em nhiều", "Hẹn hò cuối tuần", "Nụ hôn đầu", "Mãi bên nhau"])
        sc.text(text, *b.p(0.5, 0.88), b.h * 0.1, (240, 40, 90), stroke=(255, 255, 255), max_w=b.w * 0.9)
    return {"sexual": 1}


@positive("sexual", 1)
def flirt_innuendo(sc: Scene, b: Box) -> Labels:
    sc.emoji(pick(sc.rng, ["😏", "😘", "😉"]), *b.p(0.3, 0.35), b.m * 0.35)
    sc.emoji("💋", *b.p(0.72, 0.35), b.m * 0.25)
    lines = pick(
        sc.rng, ["tối nay qua nhà anh|xem phim nha", "nhớ hơi em quá|ngủ ngon nha", "em có người yêu chưa|làm quen nhé"]
    )
    multiline(sc, b.sub(0.05, 0.62, 0.95, 0.95), lines.split("|"), (250, 60, 120))
    return {"sexual": 1}


@positive("sexual", 2)
def fruit_innuendo(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.emoji("🍑", *b.p(0.62, 0.5), b.m * 0.4)
    sc.emoji("🍆", *b.p(0.28, 0.45), b.m * 0.38, angle=rng.uniform(-40, -20))
    for _ in range(rng.randint(1, 3)):
        sc.emoji("💦", *b.p(rng.uniform(0.4, 0.9), rng.uniform(0.15, 0.35)), b.m * 0.16)
    if rng.random() < 0.7:
        sc.emoji(pick(rng, ["🔥", "😏", "🔞", "👅"]), *b.p(0.85, 0.82), b.m * 0.18)
    if rng.random() < 0.6:
        text = pick(rng, ["18+", "tối nay nhé", "nóng bỏng", "chuyện người lớn", "ai hiểu thì hiểu"])
        sc.text(text, *b.p(0.4, 0.86), b.h * 0.11, (255, 40, 80), stroke=(20, 20, 20), max_w=b.w * 0.7)
    return {"sexual": 2}


@positive("sexual", 2)
def lingerie_mannequin(sc: Scene, b: Box) -> Labels:
    mannequin(sc, b.sub(0.1, 0.05, 0.75, 0.98))
    sc.emoji(pick(sc.rng, ["🔥", "💋", "💦"]), *b.p(0.85, 0.25), b.m * 0.2)
    text = pick(sc.rng, ["nóng bỏng", "hàng hot 18+", "quyến rũ", "sexy", "gợi cảm"])
    sc.text(text, *b.p(0.5, 0.92), b.h * 0.1, (255, 60, 120), stroke=(0, 0, 0), max_w=b.w * 0.9)
    return {"sexual": 2}


@positive("sexual", 2)
def bikini_hot(sc: Scene, b: Box) -> Labels:
    sc.emoji("👙", *b.p(0.45, 0.45), b.m * 0.5)
    sc.emoji(pick(sc.rng, ["🔥", "💦", "🍑"]), *b.p(0.8, 0.25), b.m * 0.2)
    sc.emoji(pick(sc.rng, ["👅", "😍", "🔥"]), *b.p(0.18, 0.25), b.m * 0.16)
    text = pick(sc.rng, ["ảnh bikini hở bạo", "nóng mắt quá", "body nóng bỏng", "18+ không che"])
    sc.text(text, *b.p(0.5, 0.88), b.h * 0.1, (255, 230, 0), stroke=(0, 0, 0), max_w=b.w * 0.92)
    return {"sexual": 2}


@positive("sexual", 3)
def sex_sale_ad(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = phone(sc, b) if rng.random() < 0.5 else poster(sc, b, (25, 15, 30))
    sc.emoji("🔞", *inner.p(0.2, 0.15), inner.m * 0.2)
    sc.emoji(pick(rng, ["🍆", "🍑", "💋"]), *inner.p(0.55, 0.15), inner.m * 0.18)
    sc.emoji(pick(rng, ["💦", "🔥", "👅"]), *inner.p(0.82, 0.15), inner.m * 0.16)
    offer = pick(
        rng,
        ["GÁI GỌI CAO CẤP", "CLIP NÓNG FULL", "SUGAR BABY", "CHAT SEX 18+", "PHIM 18+ KHÔNG CHE", "DỊCH VỤ NGƯỜI LỚN"],
    )
    price = pick(rng, ["500K/ĐÊM", "1TR5/lần", "xem free", "200K/giờ", "link trong bio"])
    multiline(sc, inner.sub(0, 0.32, 1, 0.95), [offer, price, f"LH: {phone_number(rng)}"], (255, 80, 150))
    return {"sexual": 3}


# --- violence ---


@positive("violence", 1)
def cartoon_fight(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    burst(sc, *b.p(0.5, 0.45), b.m * 0.32, rand_color(rng, 180, 255))
    sc.emoji("🤛", *b.p(0.2, 0.45), b.m * 0.3, angle=0)
    sc.emoji("🤜", *b.p(0.8, 0.45), b.m * 0.3, angle=0)
    sc.text(
        pick(rng, ["BỤP!", "BAM!", "POW!", "BỐP!"]), *b.p(0.5, 0.45), b.m * 0.16, (200, 20, 20), stroke=(255, 255, 255)
    )
    if rng.random() < 0.5:
        sc.scatter(["⭐", "💫", "💥"], 3, b.sub(0, 0.7, 1, 1), b.m * 0.12)
    return {"violence": 1}


@positive("violence", 1)
def game_battle(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.draw.rectangle(b.xy(), fill=jitter((30, 30, 60), rng))
    for i, col in enumerate([(220, 40, 40), (40, 180, 60)]):
        bar = b.sub(0.05 + i * 0.5, 0.05, 0.45 + i * 0.5, 0.1)
        sc.draw.rectangle(bar.xy(), outline=(255, 255, 255))
        sc.draw.rectangle(bar.sub(0, 0, rng.uniform(0.2, 1), 1).xy(), fill=col)
    sc.emoji(pick(rng, ["👾", "🤖", "🐉"]), *b.p(0.72, 0.5), b.m * 0.32)
    sc.emoji(pick(rng, ["⚔️", "🗡️", "🏹", "🛡️"]), *b.p(0.28, 0.5), b.m * 0.3)
    sc.text(
        pick(rng, ["LEVEL 3", "GAME OVER", "YOU WIN", "BOSS", "COMBO x5"]), *b.p(0.5, 0.86), b.h * 0.1, (255, 220, 0)
    )
    return {"violence": 1}


@positive("violence", 1)
def crime_news(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    headline = pick(
        rng,
        [
            "Bắt giữ nghi phạm cướp tiệm vàng",
            "Công an điều tra vụ ẩu đả",
            "Khởi tố vụ án cố ý gây thương tích",
            "Truy bắt đối tượng trộm xe",
        ],
    )
    photo = news_frame(sc, b, headline)
    sc.emoji(pick(rng, ["🚓", "🚨", "👮"]), *photo.p(0.35, 0.55), photo.m * 0.55)
    sc.emoji(pick(rng, ["🚨", "🏢", "⛓️"]), *photo.p(0.75, 0.55), photo.m * 0.4)
    return {"violence": 1}


@positive("violence", 1)
def museum_weapons(sc: Scene, b: Box) -> Labels:
    inner = poster(sc, b, (120, 80, 50))
    sc.emoji(pick(sc.rng, ["⚔️", "🏹", "🗡️"]), *inner.p(0.5, 0.42), inner.m * 0.5)
    sc.emoji("🛡️", *inner.p(0.82, 0.42), inner.m * 0.25)
    sc.text(
        pick(sc.rng, ["Bảo tàng Lịch sử", "Trận Bạch Đằng 938", "Vũ khí thời xưa"]),
        *inner.p(0.5, 0.88),
        inner.h * 0.1,
        (255, 240, 200),
        max_w=inner.w * 0.9,
    )
    return {"violence": 1}


@positive("violence", 2)
def gun_threat(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    left = rng.random() < 0.5
    gx = 0.32 if not left else 0.68
    handgun(sc, *b.p(gx, 0.45), b.m * 0.45, rng.uniform(-12, 12), facing_left=left)
    sc.emoji(pick(rng, ["😱", "😨", "😰"]), *b.p(1 - gx + (0.05 if not left else -0.05), 0.42), b.m * 0.3)
    if rng.random() < 0.6:
        text = pick(rng, ["Đưa tiền đây!", "Im lặng!", "Đứng yên!", "Giơ tay lên!"])
        sc.text(text, *b.p(0.5, 0.85), b.h * 0.11, (255, 255, 255), stroke=(0, 0, 0), max_w=b.w * 0.9)
    return {"violence": 2}


@positive("violence", 2)
def knife_threat(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.emoji(pick(rng, ["🔪", "🗡️", "🪓"]), *b.p(0.35, 0.42), b.m * 0.45, angle=rng.uniform(20, 50))
    sc.emoji(pick(rng, ["😡", "😤", "👿"]), *b.p(0.75, 0.3), b.m * 0.22)
    for _ in range(rng.randint(1, 3)):
        sc.emoji("🩸", *b.p(rng.uniform(0.2, 0.5), rng.uniform(0.6, 0.75)), b.m * 0.1)
    text = pick(rng, ["mày chết chắc", "liệu hồn đấy", "gặp tao là biết tay", "tao xử mày"])
    sc.text(text, *b.p(0.5, 0.88), b.h * 0.11, (230, 0, 0), stroke=(255, 255, 255), max_w=b.w * 0.9)
    return {"violence": 2}


@positive("violence", 2)
def lit_bomb(sc: Scene, b: Box) -> Labels:
    sc.emoji("💣", *b.p(0.5, 0.5), b.m * 0.45)
    sc.emoji("🔥", *b.p(0.66, 0.24), b.m * 0.15)
    sc.scatter(["😱", "😨", "🏃"], sc.rng.randint(2, 4), b.sub(0, 0.6, 1, 1), b.m * 0.16)
    return {"violence": 2}


@positive("violence", 2)
def horror(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.draw.rectangle(b.xy(), fill=(rng.randint(5, 25), 5, rng.randint(5, 25)))
    sc.emoji(pick(rng, ["💀", "👻", "🧟", "🕷️"]), *b.p(0.5, 0.45), b.m * 0.45, alpha=rng.uniform(0.7, 1))
    ex, ey = b.p(0.5, 0.25)
    for dx in (-1, 1):
        x = ex + dx * b.m * 0.3
        sc.draw.ellipse((x - b.m * 0.04, ey - b.m * 0.02, x + b.m * 0.04, ey + b.m * 0.02), fill=(255, 0, 0))
    sc.text(
        pick(rng, ["ĐỪNG NHÌN LẠI", "NÓ ĐANG Ở ĐÂY", "ĐÊM KINH HOÀNG"]),
        *b.p(0.5, 0.88),
        b.h * 0.1,
        (200, 0, 0),
        style="serif",
        max_w=b.w * 0.9,
    )
    return {"violence": 2}


@positive("violence", 3)
def gore_splatter(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    splatter(sc, *b.p(0.5, 0.5), b.m * 0.25)
    if rng.random() < 0.5:
        splatter(sc, *b.p(rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)), b.m * 0.12)
    sc.emoji(pick(rng, ["🔪", "🗡️", "🪓"]), *b.p(0.4, 0.55), b.m * 0.35, angle=rng.uniform(-60, 60))
    sc.scatter(["🩸", "🩸", "💀"], rng.randint(2, 4), b, b.m * 0.13)
    if rng.random() < 0.5:
        text = pick(rng, ["ĐÁNG ĐỜI", "GIẾT HẾT", "xử đẹp", "máu me thật sự"])
        sc.text(text, *b.p(0.5, 0.9), b.h * 0.11, (255, 255, 255), stroke=(120, 0, 0), max_w=b.w * 0.9)
    return {"violence": 3}


@positive("violence", 3)
def victim_pool(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    cx, cy = b.p(0.5, 0.62)
    red = (rng.randint(110, 170), 0, 10, 230)
    for _ in range(7):
        rx, ry = b.m * rng.uniform(0.15, 0.3), b.m * rng.uniform(0.06, 0.12)
        ox, oy = rng.gauss(0, b.m * 0.08), rng.gauss(0, b.m * 0.03)
        sc.draw.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=red)
    sc.emoji(pick(rng, ["🧍", "🧍\u200d♂️", "🧍\u200d♀️"]), cx, cy - b.m * 0.04, b.m * 0.45, angle=rng.choice([90, -90]))
    splatter(sc, cx + rng.uniform(-0.1, 0.1) * b.m, cy, b.m * 0.08, drips=False)
    sc.emoji(pick(rng, ["🔪", "🗡️"]), *b.p(0.25, 0.3), b.m * 0.25, angle=rng.uniform(-90, 90))
    sc.scatter(["🩸"], rng.randint(1, 3), b.sub(0, 0, 1, 0.45), b.m * 0.12)
    return {"violence": 3}


# --- substances ---


@positive("substances", 1)
def dinner_with_alcohol(sc: Scene, b: Box) -> Labels:
    t = table(sc, b)
    sc.emoji(pick(sc.rng, ["🍺", "🍷", "🍾", "🍶"]), *t.p(0.78, 0.2), b.m * 0.3, angle=0)
    sc.emoji(pick(sc.rng, ["🍜", "🍲", "🍚", "🥘", "🍗"]), *t.p(0.35, 0.45), b.m * 0.3, angle=0)
    sc.emoji("🥢", *t.p(0.12, 0.55), b.m * 0.15)
    return {"substances": 1}


@positive("substances", 1)
def prevention_poster(sc: Scene, b: Box) -> Labels:
    inner = poster(sc, b)
    ch = pick(sc.rng, ["💊", "🌿", "🚬", "💉"])
    if ch == "🚬" and sc.rng.random() < 0.5:
        sc.emoji("🚭", *inner.p(0.5, 0.4), inner.m * 0.5)
    else:
        sc.emoji(ch, *inner.p(0.5, 0.4), inner.m * 0.4)
        prohibit(sc, *inner.p(0.5, 0.4), inner.m * 0.3)
    text = pick(
        sc.rng, ["NÓI KHÔNG VỚI MA TÚY", "KHÔNG HÚT THUỐC LÁ", "PHÒNG CHỐNG MA TÚY", "TRƯỜNG HỌC KHÔNG KHÓI THUỐC"]
    )
    sc.text(text, *inner.p(0.5, 0.86), inner.h * 0.1, (200, 20, 20), max_w=inner.w * 0.95)
    return {"substances": 1}


def smoke(sc: Scene, x: float, y: float, r: float) -> None:
    def paint(d: ImageDraw.ImageDraw) -> None:
        for i in range(6):
            px, py = x + sc.rng.gauss(0, r * 0.3) + i * r * 0.1, y - i * r * 0.35
            rr = r * (0.3 + i * 0.08)
            d.ellipse((px - rr, py - rr, px + rr, py + rr), fill=(235, 235, 235, 210))

    sc.soft(paint, r * 0.12)


@positive("substances", 2)
def smoking(sc: Scene, b: Box) -> Labels:
    sc.emoji(pick(sc.rng, ["🧑", "👨", "👩", "😎", "😌"]), *b.p(0.4, 0.55), b.m * 0.5, angle=0)
    # Noto's cigarette has its filter on the right: mirrored, the filter sits at the mouth
    sc.emoji("🚬", *b.p(0.55, 0.7), b.m * 0.22, angle=sc.rng.uniform(-5, 15), flip=True)
    smoke(sc, *b.p(0.72, 0.5), b.m * 0.15)
    return {"substances": 2}


@positive("substances", 2)
def drinking_party(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    t = table(sc, b, top=0.5)
    for i in range(rng.randint(3, 6)):
        sc.emoji(pick(rng, ["🍺", "🍻", "🍾", "🥃"]), *t.p(0.1 + i * 0.16, rng.uniform(0.1, 0.4)), b.m * 0.2)
    sc.emoji("🍻", *b.p(0.5, 0.25), b.m * 0.3)
    sc.text(
        pick(rng, ["DZÔ!", "1 2 3 DZÔ", "nhậu tới bến", "100% nha ae", "không say không về"]),
        *b.p(0.5, 0.07),
        b.h * 0.1,
        (255, 230, 0),
        stroke=(0, 0, 0),
        max_w=b.w * 0.9,
    )
    return {"substances": 2}


@positive("substances", 2)
def drug_use(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    kind = pick(rng, ["powder", "syringe", "joint"])
    if kind == "powder":
        powder_lines(sc, b)
        sc.emoji("💵", *b.p(0.25, 0.15), b.m * 0.2)
    elif kind == "syringe":
        t = table(sc, b, kind="dark")
        sc.emoji("💉", *t.p(0.4, 0.35), b.m * 0.35, angle=rng.uniform(-30, 30))
        sc.draw.ellipse(t.sub(0.6, 0.1, 0.9, 0.4).xy(), fill=(200, 200, 205))  # a spoon bowl
        sc.draw.ellipse(t.sub(0.68, 0.17, 0.82, 0.33).xy(), fill=(240, 235, 220))
        tablets(sc, *t.p(0.2, 0.75), b.m * 0.2, 6)
    else:
        sc.emoji("🌿", *b.p(0.3, 0.6), b.m * 0.3)
        sc.draw.line((*b.p(0.45, 0.7), *b.p(0.75, 0.55)), fill=(245, 240, 230), width=round(b.m * 0.05))
        sc.draw.ellipse((*b.p(0.73, 0.52), *b.p(0.78, 0.58)), fill=(250, 120, 20))
        smoke(sc, *b.p(0.78, 0.35), b.m * 0.18)
    if rng.random() < 0.5:
        sc.text(
            pick(rng, ["phê quá", "bay lắc", "đêm nay quẩy", "lên tiên"]),
            *b.p(0.5, 0.08),
            b.h * 0.1,
            (255, 255, 255),
            stroke=(0, 0, 0),
            max_w=b.w * 0.9,
        )
    return {"substances": 2}


@positive("substances", 2)
def vaping(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    x, y = b.p(0.35, 0.6)
    w, h = b.m * 0.12, b.m * 0.4
    color = rand_color(rng, 40, 240)
    sc.draw.rounded_rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), radius=round(w * 0.3), fill=color)
    sc.draw.rectangle((x - w * 0.25, y - h * 0.62, x + w * 0.25, y - h / 2), fill=(30, 30, 30))
    smoke(sc, x + b.m * 0.15, y - h * 0.7, b.m * 0.25)
    sc.text(
        pick(rng, ["pod vị dưa hấu", "phê", "vape chill", "hút pod"]),
        *b.p(0.62, 0.88),
        b.h * 0.09,
        (255, 255, 255),
        stroke=(0, 0, 0),
        max_w=b.w * 0.7,
    )
    return {"substances": 2}


@positive("substances", 3)
def drug_sale(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    for i in range(rng.randint(2, 3)):
        x, y = b.p(0.2 + i * 0.3, 0.42)
        zip_bag(sc, x, y, b.m * 0.22, pick(rng, ["powder", "pills", "weed"]))
        price_tag(sc, x, y + b.m * 0.2, b.m * 0.08, pick(rng, ["500K", "1TR2", "300K", "2TR", "150K/viên"]))
    text = pick(rng, ["SHIP KÍN TẬN NƠI", "HÀNG CHUẨN - IB NGAY", "cỏ Mỹ, kẹo, ke", "bán pod, cỏ giá tốt"])
    sc.text(text, *b.p(0.5, 0.1), b.h * 0.1, (255, 240, 0), stroke=(0, 0, 0), max_w=b.w * 0.95)
    sc.text(f"Zalo {phone_number(rng)}", *b.p(0.5, 0.9), b.h * 0.08, (255, 255, 255), stroke=(0, 0, 0), max_w=b.w * 0.9)
    return {"substances": 3}


@positive("substances", 3)
def alcohol_vape_ad(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    color = rng.choice([(200, 20, 30), (20, 20, 60), (250, 200, 0)])
    inner = poster(sc, b, color)
    ink = ink_for(color)
    sc.emoji(pick(rng, ["🍺", "🍾", "🥃", "🚬", "🍷"]), *inner.p(0.3, 0.38), inner.m * 0.4)
    sc.emoji(pick(rng, ["🍺", "🚬", "🍻"]), *inner.p(0.72, 0.38), inner.m * 0.3)
    deal = pick(rng, ["GIẢM 50%", "MUA 2 TẶNG 1", "CHỈ 99K", "FREESHIP"])
    multiline(
        sc, inner.sub(0, 0.66, 1, 1), [deal, pick(rng, ["giao hàng tận nơi", "đặt ngay", "số lượng có hạn"])], ink
    )
    return {"substances": 3}


# --- gambling ---


@positive("gambling", 1)
def lottery_results(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = poster(sc, b, (250, 250, 240))
    sc.text(
        pick(rng, ["KẾT QUẢ XỔ SỐ", "XỔ SỐ KIẾN THIẾT", "VÉ SỐ"]),
        *inner.p(0.5, 0.1),
        inner.h * 0.11,
        (200, 20, 20),
        max_w=inner.w * 0.95,
    )
    for i in range(4):
        y = inner.p(0, 0.3 + i * 0.18)[1]
        sc.draw.line((inner.x0, y - inner.h * 0.08, inner.x1, y - inner.h * 0.08), fill=(150, 150, 150))
        num = "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(2, 6)))
        sc.text(pick(rng, ["ĐB", "G1", "G2", "G3", "G7"]), inner.x0 + inner.w * 0.12, y, inner.h * 0.09, (20, 20, 20))
        sc.text(num, inner.x0 + inner.w * 0.6, y, inner.h * 0.1, (200, 20, 20), style="regular")
    return {"gambling": 1}


@positive("gambling", 1)
def gambling_news(sc: Scene, b: Box) -> Labels:
    headline = pick(
        sc.rng, ["Triệt phá đường dây đánh bạc", "Bắt ổ cờ bạc trá hình", "Cảnh báo cá độ bóng đá", "Xử phạt ổ tài xỉu"]
    )
    photo = news_frame(sc, b, headline)
    sc.emoji(pick(sc.rng, ["🃏", "🎲", "🎰"]), *photo.p(0.35, 0.55), photo.m * 0.5)
    sc.emoji(pick(sc.rng, ["🚓", "👮", "⚖️"]), *photo.p(0.75, 0.55), photo.m * 0.45)
    return {"gambling": 1}


@positive("gambling", 1)
def bau_cua_tet(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    board = b.sub(0.05, 0.15, 0.95, 0.8)
    sc.draw.rectangle(board.xy(), fill=jitter((230, 200, 60), rng))
    for i, ch in enumerate(["🦀", "🐟", "🐓", "🦌", "🍐", "🦐"]):
        cell = board.sub((i % 3) / 3, (i // 3) / 2, (i % 3 + 1) / 3, (i // 3 + 1) / 2)
        sc.draw.rectangle(cell.xy(), outline=(150, 30, 20), width=max(1, sc.size // 100))
        sc.emoji(ch, *cell.p(0.5, 0.5), cell.m * 0.65, angle=0)
        if rng.random() < 0.4:  # peanuts or a small coin as the stake
            sc.draw.ellipse(cell.sub(0.7, 0.7, 0.9, 0.9).xy(), fill=(170, 120, 60))
    for i in range(3):
        sc.emoji("🎲", *b.p(0.3 + i * 0.2, 0.9), b.m * 0.14)
    if rng.random() < 0.5:
        sc.text("Tết", *b.p(0.12, 0.07), b.h * 0.1, (200, 20, 20))
    return {"gambling": 1}


@positive("gambling", 2)
def casino_table(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    t = table(sc, b, top=0.35, kind="felt")
    roulette(sc, *t.p(0.3, 0.45), b.m * 0.22)
    for i in range(rng.randint(2, 4)):
        chips(sc, *t.p(0.6 + i * 0.1, rng.uniform(0.4, 0.8)), b.m * 0.07, rng.randint(2, 6))
    sc.emoji(pick(rng, ["🎰", "💰", "🎲"]), *b.p(0.82, 0.2), b.m * 0.22)
    sc.text(
        pick(rng, ["CASINO", "CASINO ONLINE", "VIP ROOM", "ROYAL CASINO"]),
        *b.p(0.38, 0.14),
        b.h * 0.12,
        (255, 215, 0),
        stroke=(80, 0, 0),
        max_w=b.w * 0.6,
    )
    return {"gambling": 2}


@positive("gambling", 2)
def jackpot(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.emoji("🎰", *b.p(0.5, 0.48), b.m * 0.45, angle=0)
    sc.scatter(["💰", "🪙", "💵", "💎"], rng.randint(3, 6), b, b.m * 0.13)
    sc.text(
        pick(rng, ["NỔ HŨ", "JACKPOT", "777", "TRÚNG LỚN", "x100"]),
        *b.p(0.5, 0.12),
        b.h * 0.13,
        (255, 215, 0),
        stroke=(120, 0, 0),
        max_w=b.w * 0.9,
    )
    if rng.random() < 0.6:
        sc.text(
            pick(rng, ["hôm qua nổ 5 củ", "ae vào chơi đi", "đỏ quá anh em ơi"]),
            *b.p(0.5, 0.9),
            b.h * 0.08,
            (255, 255, 255),
            stroke=(0, 0, 0),
            max_w=b.w * 0.9,
        )
    return {"gambling": 2}


@positive("gambling", 2)
def cards_and_money(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    t = table(sc, b, top=0.2, kind=pick(rng, ["felt", "wood", "dark"]))
    for i in range(rng.randint(3, 5)):
        playing_card(sc, *t.p(0.15 + i * 0.14, rng.uniform(0.3, 0.5)), b.m * 0.16, rng.uniform(-25, 25))
    for _ in range(rng.randint(2, 4)):
        sc.emoji(pick(rng, ["💵", "💰", "💸"]), *t.p(rng.uniform(0.15, 0.85), rng.uniform(0.65, 0.9)), b.m * 0.16)
    if rng.random() < 0.5:
        chips(sc, *t.p(0.85, 0.4), b.m * 0.06, rng.randint(3, 6))
    if rng.random() < 0.6:
        sc.text(
            pick(rng, ["tất tay!", "cược 500k", "đánh bài ăn tiền", "all in"]),
            *b.p(0.5, 0.08),
            b.h * 0.1,
            (255, 255, 255),
            stroke=(0, 0, 0),
            max_w=b.w * 0.9,
        )
    return {"gambling": 2}


@positive("gambling", 3)
def betting_site(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    screen = phone(sc, b)
    sc.text(
        pick(rng, ["TÀI XỈU", "NỔ HŨ", "CÁ ĐỘ", "BẮN CÁ ĐỔI THƯỞNG", "XÓC ĐĨA"]),
        *screen.p(0.5, 0.1),
        screen.h * 0.1,
        (255, 215, 0),
        max_w=screen.w * 0.95,
    )
    sc.emoji(pick(rng, ["🎲", "🎰", "💰", "🃏"]), *screen.p(0.3, 0.32), screen.m * 0.28)
    sc.emoji(pick(rng, ["💰", "🪙", "💎"]), *screen.p(0.72, 0.32), screen.m * 0.24)
    offer = pick(rng, ["NẠP 50K NHẬN 100K", "TẶNG 88K", "HOÀN TRẢ 1.5%", "NẠP LẦN ĐẦU X2"])
    link = pick(rng, ["taixiu88.club", "nohu.vip", "link bio", "code: VIP888", "789win.bet"])
    multiline(sc, screen.sub(0, 0.5, 1, 0.75), [offer, link], (255, 255, 255))
    banner(sc, screen.sub(0.15, 0.8, 0.85, 0.95), pick(rng, ["CHƠI NGAY", "ĐĂNG KÝ", "NẠP NGAY"]), (230, 40, 40))
    return {"gambling": 3}


# --- self_harm (abstract; no method is shown or named) ---


@positive("self_harm", 1)
def support_poster(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = poster(sc, b, rng.choice([(225, 245, 235), (230, 240, 255), (255, 250, 235)]))
    sc.emoji(pick(rng, ["💚", "🫂", "🤝", "📞"]), *inner.p(0.5, 0.32), inner.m * 0.4)
    lines = pick(
        rng,
        [
            "Bạn không một mình|Gọi 111",
            "Hãy nói chuyện|với ai đó",
            "Phòng chống tự tử|đường dây 111",
            "Sức khỏe tâm thần|quan trọng",
        ],
    )
    multiline(sc, inner.sub(0, 0.62, 1, 1), lines.split("|"), (20, 90, 60))
    return {"self_harm": 1}


@positive("self_harm", 1)
def awareness_ribbon(sc: Scene, b: Box) -> Labels:
    sc.emoji("🎗️", *b.p(0.5, 0.4), b.m * 0.5)
    text = pick(sc.rng, ["Ngày thế giới phòng chống tự tử", "Lắng nghe để cứu một mạng người", "Hãy lên tiếng"])
    sc.text(text, *b.p(0.5, 0.85), b.h * 0.1, (40, 40, 40), stroke=(255, 255, 255), max_w=b.w * 0.95)
    return {"self_harm": 1}


@positive("self_harm", 2)
def marked_arm(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    wx, wy, dx, dy = forearm(sc, b)
    marks_on_arm(sc, wx, wy, dx, dy, b.m * 0.22, rng.randint(2, 4))
    for _ in range(rng.randint(1, 3)):
        sc.emoji("🩸", wx + rng.uniform(-1, 1) * b.m * 0.1, wy + b.m * rng.uniform(0.12, 0.25), b.m * 0.1)
    if rng.random() < 0.6:
        sc.emoji("🪒", *b.p(0.8, 0.8), b.m * 0.2)
    if rng.random() < 0.5:
        sc.text(
            pick(rng, ["lại nữa rồi", "không ai hiểu", "đau mới thấy nhẹ"]),
            *b.p(0.5, 0.1),
            b.h * 0.09,
            (240, 240, 240),
            stroke=(0, 0, 0),
            max_w=b.w * 0.9,
        )
    return {"self_harm": 2}


@positive("self_harm", 2)
def pills_despair(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    tablets(sc, *b.p(0.35, 0.5), b.m * 0.35, rng.randint(12, 22))
    sc.emoji("💊", *b.p(0.6, 0.45), b.m * 0.18)
    sc.emoji(pick(rng, ["😢", "😭", "😞", "😔"]), *b.p(0.8, 0.25), b.m * 0.25)
    text = pick(rng, ["mình không muốn sống nữa", "mệt mỏi quá rồi", "không ai cần mình", "chắc đây là lần cuối"])
    sc.text(text, *b.p(0.5, 0.86), b.h * 0.09, (255, 255, 255), stroke=(0, 0, 0), max_w=b.w * 0.95)
    return {"self_harm": 2}


@positive("self_harm", 2)
def dark_ideation(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.draw.rectangle(b.xy(), fill=jitter((35, 40, 55), rng, 10))
    for _ in range(int(b.w * b.h / 400)):  # rain
        x, y = b.p(rng.random(), rng.random())
        sc.draw.line((x, y, x - 2, y + b.m * 0.05), fill=(150, 160, 190, 160))
    sc.emoji(pick(rng, ["😞", "😔", "😢", "🥀"]), *b.p(0.5, 0.38), b.m * 0.35)
    lines = pick(rng, ["chán sống quá|không ai hiểu mình", "biến mất chắc|sẽ tốt hơn", "tối qua lại|tự làm đau mình"])
    multiline(sc, b.sub(0.05, 0.65, 0.95, 0.97), lines.split("|"), (230, 230, 240), "regular")
    return {"self_harm": 2}


@positive("self_harm", 3)
def harm_challenge(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = phone(sc, b) if rng.random() < 0.5 else poster(sc, b, (15, 15, 25))
    sc.text(
        pick(rng, ["THỬ THÁCH 50 NGÀY", "NGÀY 27/50", "THỬ THÁCH CUỐI"]),
        *inner.p(0.5, 0.1),
        inner.h * 0.1,
        (230, 30, 30),
        max_w=inner.w * 0.95,
    )
    sc.emoji(pick(rng, ["🐋", "🪒", "🩸"]), *inner.p(0.3, 0.38), inner.m * 0.3)
    sc.emoji(pick(rng, ["🩸", "🪒", "💀"]), *inner.p(0.72, 0.38), inner.m * 0.25)
    for i in range(3):  # a checklist of "tasks"
        y = inner.p(0, 0.6 + i * 0.1)[1]
        sc.draw.rectangle(
            (inner.x0 + inner.w * 0.1, y - 3, inner.x0 + inner.w * 0.1 + 6, y + 3), outline=(230, 230, 230)
        )
    text = pick(rng, ["làm đi, đừng sợ", "cùng nhau kết thúc đi", "không làm là hèn", "hoàn thành rồi gửi ảnh"])
    sc.text(text, *inner.p(0.55, 0.9), inner.h * 0.09, (255, 255, 255), max_w=inner.w * 0.85)
    return {"self_harm": 3}


@positive("self_harm", 3)
def harm_encouragement(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    wx, wy, dx, dy = forearm(sc, b.sub(0, 0.15, 1, 0.85))
    marks_on_arm(sc, wx, wy, dx, dy, b.m * 0.2, rng.randint(2, 4))
    sc.emoji("🪒", *b.p(0.82, 0.78), b.m * 0.18)
    top = pick(rng, ["làm đi", "đi chết đi", "tự tử đi", "cùng nhau kết thúc"])
    sc.text(top, *b.p(0.5, 0.08), b.h * 0.11, (255, 30, 30), stroke=(0, 0, 0), max_w=b.w * 0.9)
    sc.text(
        pick(rng, ["ai dám thì làm", "#thuthach", "gửi ảnh lên nhóm"]),
        *b.p(0.4, 0.93),
        b.h * 0.08,
        (255, 255, 255),
        stroke=(0, 0, 0),
        max_w=b.w * 0.7,
    )
    return {"self_harm": 3}


# --- dangerous_acts ---


@positive("dangerous_acts", 1)
def safety_sign(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = poster(sc, b, (255, 255, 255))
    warning_sign(sc, *inner.p(0.3, 0.35), inner.m * 0.25)
    sc.emoji(pick(rng, ["🧨", "🔥", "🏊", "🪜", "⚡"]), *inner.p(0.72, 0.35), inner.m * 0.3)
    text = pick(rng, ["NGUY HIỂM - CẤM LEO TRÈO", "KHÔNG NGHỊCH PHÁO", "CẤM TẮM SÔNG", "CẤM CHƠI GẦN ĐƯỜNG RAY"])
    sc.text(text, *inner.p(0.5, 0.82), inner.h * 0.1, (200, 20, 20), max_w=inner.w * 0.95)
    return {"dangerous_acts": 1}


@positive("dangerous_acts", 1)
def challenge_news(sc: Scene, b: Box) -> Labels:
    headline = pick(
        sc.rng,
        [
            "Học sinh bị thương khi làm thử thách",
            "Cảnh báo trào lưu nguy hiểm trên mạng",
            "Bé trai nhập viện vì nghịch pháo",
        ],
    )
    photo = news_frame(sc, b, headline)
    sc.emoji(pick(sc.rng, ["🚑", "🏥"]), *photo.p(0.35, 0.55), photo.m * 0.5)
    sc.emoji(pick(sc.rng, ["⚠️", "📱"]), *photo.p(0.75, 0.55), photo.m * 0.4)
    return {"dangerous_acts": 1}


def _roof_edge(sc: Scene, b: Box) -> None:
    sky(sc, b, night=False)
    roof = sc.rng.uniform(0.35, 0.5)
    x0 = sc.rng.uniform(0.05, 0.25)
    building(sc, b, x0, x0 + 0.5, roof)
    if sc.rng.random() < 0.5:
        building(sc, b, 0.78, 1.0, roof + 0.2)
    person_on(sc, *b.p(x0 + 0.47, roof - 0.01), b.h * 0.22)


def _car_surf(sc: Scene, b: Box) -> None:
    sky(sc, b)
    r = road(sc, b, 0.55)
    sc.emoji(pick(sc.rng, ["🚗", "🚙", "🚕"]), *r.p(0.5, 0.25), b.m * 0.42, angle=0)
    person_on(sc, *r.p(0.5, 0.03), b.h * 0.22)
    for i in range(4):  # speed lines
        y = r.p(0, 0.1 + i * 0.1)[1]
        sc.draw.line((b.x0 + b.w * 0.02, y, b.x0 + b.w * 0.22, y), fill=(255, 255, 255), width=max(1, sc.size // 90))


def _fire_person(sc: Scene, b: Box) -> None:
    def glow(d: ImageDraw.ImageDraw) -> None:
        x, y = b.p(0.5, 0.55)
        r = b.m * 0.35
        d.ellipse((x - r, y - r, x + r, y + r), fill=(255, 140, 0, 160))

    sc.soft(glow, b.m * 0.08)
    person_on(sc, *b.p(0.5, 0.85), b.h * 0.5)
    for _ in range(sc.rng.randint(2, 4)):
        sc.emoji("🔥", *b.p(sc.rng.uniform(0.3, 0.7), sc.rng.uniform(0.4, 0.75)), b.m * 0.25)


def _firecracker_hand(sc: Scene, b: Box) -> None:
    sc.emoji(pick(sc.rng, ["🤚", "✋", "🖐️"]), *b.p(0.4, 0.62), b.m * 0.45, angle=sc.rng.uniform(-20, 20))
    sc.emoji("🧨", *b.p(0.5, 0.4), b.m * 0.3, angle=sc.rng.uniform(-30, 30))
    burst(sc, *b.p(0.68, 0.25), b.m * 0.14, (255, 200, 40))
    sc.emoji("💥", *b.p(0.7, 0.24), b.m * 0.2)


def _train_tracks(sc: Scene, b: Box) -> None:
    sky(sc, b)
    ground = b.sub(0, 0.45, 1, 1)
    sc.draw.rectangle(ground.xy(), fill=jitter((120, 110, 90), sc.rng))
    vx, vy = b.p(0.5, 0.45)
    for fx in (0.2, 0.8):
        sc.draw.line((vx, vy, *b.p(fx, 1.0)), fill=(90, 90, 95), width=max(1, sc.size // 70))
    for i in range(6):
        t = (i + 1) / 7
        y = vy + (b.y1 - vy) * t
        half = b.w * 0.3 * t
        sc.draw.line((vx - half, y, vx + half, y), fill=(100, 70, 40), width=max(1, round(sc.size / 80 * t * 2)))
    sc.emoji("🚆", vx, vy - b.m * 0.02, b.m * 0.22, angle=0)
    person_on(sc, *b.p(0.5, 0.9), b.h * 0.3)


DANGER_DEPICTIONS: tuple[Callable[[Scene, Box], None], ...] = (
    _roof_edge,
    _car_surf,
    _fire_person,
    _firecracker_hand,
    _train_tracks,
)


@positive("dangerous_acts", 2)
def dangerous_depiction(sc: Scene, b: Box) -> Labels:
    sc.rng.choice(DANGER_DEPICTIONS)(sc, b)
    return {"dangerous_acts": 2}


@positive("dangerous_acts", 3)
def dangerous_challenge(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    rng.choice(DANGER_DEPICTIONS)(sc, b)
    top = pick(rng, ["THỬ THÁCH", "#challenge", "AI DÁM KHÔNG?", "TRÀO LƯU MỚI"])
    sc.text(top, *b.p(0.5, 0.08), b.h * 0.11, (255, 230, 0), stroke=(0, 0, 0), max_w=b.w * 0.9)
    bottom = pick(rng, ["ai không dám là gà", "quay clip gửi tao", "làm đi mới ngầu", "thử ngay đi"])
    sc.text(bottom, *b.p(0.5, 0.93), b.h * 0.085, (255, 255, 255), stroke=(0, 0, 0), max_w=b.w * 0.92)
    return {"dangerous_acts": 3}


@positive("dangerous_acts", 3)
def explosive_howto(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    inner = poster(sc, b, (245, 245, 240))
    sc.text(
        pick(rng, ["TỰ CHẾ PHÁO", "CÁCH LÀM PHÁO", "TỰ LÀM PHÁO NỔ"]),
        *inner.p(0.5, 0.1),
        inner.h * 0.11,
        (200, 20, 20),
        max_w=inner.w * 0.95,
    )
    items = ["🧪", pick(rng, ["🧂", "🥫", "📦"]), "🧨"]
    for i, ch in enumerate(items):
        x, y = inner.p(0.17 + i * 0.33, 0.5)
        sc.emoji(ch, x, y, inner.m * 0.22, angle=0)
        sc.text(f"B{i + 1}", x, y + inner.m * 0.2, inner.h * 0.08, (20, 20, 20))
        if i < 2:
            ax, half = x + inner.w * 0.165, inner.w * 0.04
            sc.draw.line((ax - half, y, ax + half, y), fill=(20, 20, 20), width=max(1, sc.size // 90))
            sc.draw.polygon(
                [(ax + half * 1.5, y), (ax + half * 0.5, y - half * 0.6), (ax + half * 0.5, y + half * 0.6)],
                fill=(20, 20, 20),
            )
    sc.text(
        pick(rng, ["dễ lắm, làm thử đi", "nổ to cực", "ai cũng làm được"]),
        *inner.p(0.5, 0.9),
        inner.h * 0.08,
        (40, 40, 40),
        max_w=inner.w * 0.9,
    )
    return {"dangerous_acts": 3}


# --- hard negatives: objects the positives use, in a benign context ---


@hard_negative
def cooking_knife(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.3, kind=pick(sc.rng, ["wood", "white"]))
    sc.draw.rounded_rectangle(
        t.sub(0.1, 0.1, 0.9, 0.8).xy(), radius=round(b.m * 0.04), fill=jitter((190, 140, 90), sc.rng)
    )
    sc.emoji("🔪", *t.p(0.35, 0.4), b.m * 0.35, angle=sc.rng.uniform(-60, 60))
    sc.scatter(["🥕", "🥒", "🍅", "🧅", "🥬", "🧄", "🌶️"], sc.rng.randint(3, 5), t.sub(0.3, 0, 1, 0.9), b.m * 0.15)
    if sc.rng.random() < 0.4:
        sc.emoji("🧑\u200d🍳", *b.p(0.8, 0.18), b.m * 0.25)
    return {}


@hard_negative
def pharmacy(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sign = b.sub(0.05, 0.03, 0.95, 0.22)
    sc.draw.rectangle(sign.xy(), fill=jitter((20, 130, 70), rng))
    red_cross(sc, *sign.p(0.1, 0.5), sign.h * 0.38, (255, 255, 255))
    sc.text(
        pick(rng, ["NHÀ THUỐC", "QUẦY THUỐC", "PHARMACY", "TỦ THUỐC GIA ĐÌNH"]),
        *sign.p(0.56, 0.5),
        sign.h * 0.55,
        max_w=sign.w * 0.78,
    )
    shelf = table(sc, b, top=0.5, kind="white")
    for i in range(rng.randint(2, 4)):
        pill_bottle(sc, *shelf.p(0.15 + i * 0.22, 0.35), b.m * 0.2)
    tablets(sc, *shelf.p(0.6, 0.75), b.m * 0.2, rng.randint(4, 8))
    sc.emoji(pick(rng, ["💊", "🩹", "🌡️", "🧴"]), *b.p(0.75, 0.38), b.m * 0.18)
    if rng.random() < 0.5:
        red_cross(sc, *b.p(0.2, 0.38), b.m * 0.08)
    return {}


@hard_negative
def vaccination(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.emoji("🏥", *b.p(0.25, 0.3), b.m * 0.3, angle=0)
    sc.emoji("💉", *b.p(0.6, 0.45), b.m * 0.3, angle=rng.uniform(-30, 30))
    sc.emoji(pick(rng, ["🧑\u200d⚕️", "👩\u200d⚕️", "🧒", "👵"]), *b.p(0.8, 0.3), b.m * 0.25)
    sc.emoji("🩹", *b.p(0.3, 0.7), b.m * 0.15)
    sc.text(
        pick(rng, ["TIÊM CHỦNG MIỄN PHÍ", "Tiêm vắc xin đầy đủ", "Trạm y tế phường"]),
        *b.p(0.5, 0.88),
        b.h * 0.09,
        (20, 90, 160),
        stroke=(255, 255, 255),
        max_w=b.w * 0.92,
    )
    return {}


@hard_negative
def family_board_game(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    t = table(sc, b, top=0.35, kind=pick(rng, ["wood", "felt", "cloth"]))
    board = t.sub(0.05, 0.05, 0.55, 0.9)
    n = 5
    for i in range(n):
        for j in range(n):
            cell = board.sub(i / n, j / n, (i + 1) / n, (j + 1) / n)
            sc.draw.rectangle(cell.xy(), fill=(250, 250, 240) if (i + j) % 2 else rand_color(rng, 120, 240))
    for i in range(rng.randint(2, 4)):
        playing_card(sc, *t.p(0.65 + i * 0.08, 0.4), b.m * 0.13, rng.uniform(-20, 20))
    sc.emoji("🎲", *t.p(0.85, 0.78), b.m * 0.12)
    if rng.random() < 0.6:
        sc.emoji(pick(rng, ["♟️", "🧩", "🃏"]), *t.p(0.3, 0.45), b.m * 0.14)
    sc.scatter(["😀", "😄", "🧒", "👩", "👨", "👵"], rng.randint(2, 3), b.sub(0, 0, 1, 0.35), b.m * 0.17)
    return {}


@hard_negative
def birthday(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.55)
    sc.emoji("🎂", *t.p(0.5, 0.1), b.m * 0.4, angle=0)
    sc.emoji("🕯️", *b.p(0.2, 0.4), b.m * 0.2)
    sc.scatter(["🎈", "🎁", "🎉"], sc.rng.randint(2, 4), b.sub(0, 0, 1, 0.4), b.m * 0.15)
    if sc.rng.random() < 0.6:
        sc.text(
            "Chúc mừng sinh nhật", *b.p(0.5, 0.08), b.h * 0.09, (230, 60, 120), stroke=(255, 255, 255), max_w=b.w * 0.9
        )
    return {}


@hard_negative
def distant_fireworks(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sky(sc, b, night=True)
    for _ in range(rng.randint(2, 4)):
        x, y = b.p(rng.uniform(0.15, 0.85), rng.uniform(0.12, 0.45))
        r, col = b.m * rng.uniform(0.08, 0.16), rand_color(rng, 120, 255)
        for k in range(14):
            a = k * math.tau / 14
            sc.draw.line((x, y, x + math.cos(a) * r, y + math.sin(a) * r), fill=col, width=1)
    for i in range(rng.randint(6, 10)):  # skyline
        x0 = b.x0 + b.w * i / 8
        sc.draw.rectangle((x0, b.y1 - b.h * rng.uniform(0.15, 0.4), x0 + b.w / 8, b.y1), fill=(20, 20, 30))
    if rng.random() < 0.5:
        sc.text(
            pick(rng, ["Chúc mừng năm mới", "Mừng Quốc khánh 2/9"]),
            *b.p(0.5, 0.9),
            b.h * 0.08,
            (255, 230, 120),
            max_w=b.w * 0.9,
        )
    return {}


@hard_negative
def empty_beach(sc: Scene, b: Box) -> Labels:
    sky(sc, b, night=False)
    sea = b.sub(0, 0.4, 1, 0.65)
    sc.draw.rectangle(sea.xy(), fill=jitter((30, 120, 190), sc.rng))
    sand = b.sub(0, 0.63, 1, 1)
    sc.draw.rectangle(sand.xy(), fill=jitter((235, 210, 150), sc.rng))
    sc.emoji("⛱️", *b.p(sc.rng.uniform(0.2, 0.5), 0.62), b.m * 0.3, angle=0)
    sc.scatter(["🐚", "🦀", "🏐", "🪣", "🌴"], sc.rng.randint(2, 3), sand, b.m * 0.12)
    sc.emoji("☀️", *b.p(0.85, 0.12), b.m * 0.15)
    return {}


@hard_negative
def fruit_market(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    fruits = ["🍑", "🍆", "🍎", "🍌", "🍇", "🍊", "🍉", "🥭", "🍍", "🥥"]
    for i in range(2):
        for j in range(3):
            crate = b.sub(0.03 + j * 0.32, 0.2 + i * 0.4, 0.32 + j * 0.32, 0.55 + i * 0.4)
            sc.draw.rectangle(crate.xy(), fill=jitter((160, 110, 60), rng), outline=(90, 60, 30))
            ch = "🍑" if (i, j) == (0, 0) else ("🍆" if (i, j) == (1, 1) else rng.choice(fruits))
            for k in range(3):
                sc.emoji(ch, *crate.p(0.25 + k * 0.25, 0.45), crate.m * 0.55)
            price_tag(sc, *crate.p(0.5, 0.95), crate.h * 0.2, f"{rng.choice([15, 20, 25, 30, 45])}K/KG")
    sc.text(
        pick(rng, ["Chợ quê", "Trái cây tươi", "Sạp rau quả cô Ba"]),
        *b.p(0.5, 0.08),
        b.h * 0.09,
        (40, 110, 40),
        stroke=(255, 255, 255),
        max_w=b.w * 0.9,
    )
    return {}


@hard_negative
def water_pistol_play(sc: Scene, b: Box) -> Labels:
    sc.draw.rectangle(b.sub(0, 0.6, 1, 1).xy(), fill=jitter((60, 170, 220), sc.rng))
    sc.emoji("🔫", *b.p(0.35, 0.4), b.m * 0.35)
    sc.scatter(["💦", "💧"], 3, b.sub(0.45, 0.2, 1, 0.6), b.m * 0.12)
    sc.emoji(pick(sc.rng, ["😆", "😄", "🏊", "🤽"]), *b.p(0.78, 0.72), b.m * 0.22)
    sc.emoji("☀️", *b.p(0.12, 0.12), b.m * 0.15)
    return {}


@hard_negative
def red_paint(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    canvas = b.sub(0.15, 0.05, 0.85, 0.7)
    sc.draw.rectangle(canvas.xy(), fill=(250, 250, 245), outline=(120, 90, 50), width=max(1, sc.size // 60))
    for _ in range(rng.randint(3, 6)):
        x0, y0 = canvas.p(rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.8))
        col = rng.choice([(200, 20, 30), (210, 40, 20), rand_color(rng)])
        sc.draw.line(
            (x0, y0, x0 + canvas.w * rng.uniform(0.1, 0.3), y0 + rng.uniform(-8, 8)),
            fill=col,
            width=max(2, round(canvas.h * 0.06)),
        )
    if rng.random() < 0.5:
        splatter(sc, *canvas.p(0.5, 0.5), canvas.m * 0.15, drips=False)
    sc.emoji("🎨", *b.p(0.2, 0.82), b.m * 0.25)
    sc.emoji("🖌️", *b.p(0.7, 0.82), b.m * 0.22)
    if rng.random() < 0.4:
        sc.text(
            pick(rng, ["Lớp vẽ thiếu nhi", "Giờ mỹ thuật"]), *b.p(0.5, 0.96), b.h * 0.07, (40, 40, 40), max_w=b.w * 0.9
        )
    return {}


@hard_negative
def fries_ketchup(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.35)
    sc.draw.ellipse(t.sub(0.1, 0.05, 0.9, 0.95).xy(), fill=(250, 250, 250), outline=(180, 180, 180))
    sc.emoji(pick(sc.rng, ["🍟", "🌭", "🍔"]), *t.p(0.4, 0.45), b.m * 0.28)
    x, y = t.p(0.68, 0.5)
    for i in range(4):
        sc.draw.arc(
            (x - 10 - i * 4, y - 6, x + 10 + i * 4, y + 6 + i * 2),
            0,
            180,
            fill=(190, 20, 20),
            width=max(2, sc.size // 60),
        )
    sc.emoji("🥤", *b.p(0.82, 0.2), b.m * 0.2)
    return {}


@hard_negative
def piggy_bank(sc: Scene, b: Box) -> Labels:
    sc.emoji("🐷", *b.p(0.4, 0.5), b.m * 0.42)
    sc.scatter(["🪙", "💵", "🪙"], sc.rng.randint(2, 4), b.sub(0.5, 0.2, 1, 0.9), b.m * 0.14)
    sc.text(
        pick(sc.rng, ["Tiết kiệm mỗi ngày", "Heo đất của bé", "Quỹ học tập"]),
        *b.p(0.5, 0.88),
        b.h * 0.09,
        (200, 80, 120),
        stroke=(255, 255, 255),
        max_w=b.w * 0.9,
    )
    return {}


@hard_negative
def campfire(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sky(sc, b, night=rng.random() < 0.7)
    sc.draw.rectangle(b.sub(0, 0.6, 1, 1).xy(), fill=jitter((40, 70, 40), rng, 25))
    tent_x = rng.uniform(0.15, 0.4)
    sc.emoji("⛺", *b.p(tent_x, 0.6), b.m * rng.uniform(0.25, 0.35), angle=0)
    fire_x = rng.uniform(tent_x + 0.3, 0.85)
    sc.emoji("🔥", *b.p(fire_x, 0.74), b.m * rng.uniform(0.12, 0.18), angle=0)
    sc.emoji("🪵", *b.p(fire_x, 0.82), b.m * 0.14, angle=0)
    if rng.random() < 0.5:
        sc.emoji(pick(rng, ["🧑", "👨\u200d👩\u200d👧", "🎸", "🌭"]), *b.p(fire_x - 0.2, 0.85), b.m * 0.14)
    sc.scatter(["🌲", "🌲", "🌳", "🏕️"], rng.randint(2, 4), b.sub(0, 0.25, 1, 0.55), b.m * 0.2)
    return {}


@hard_negative
def bandaged_arm(sc: Scene, b: Box) -> Labels:
    wx, wy, dx, dy = forearm(sc, b)
    w = b.m * 0.12
    sc.draw.line(
        (wx - dx * w, wy - dy * w, wx + dx * w * 0.3, wy + dy * w * 0.3), fill=(245, 245, 245), width=round(b.m * 0.26)
    )
    sc.emoji(pick(sc.rng, ["🩹", "🏥", "🧑\u200d⚕️", "🩺"]), *b.p(0.2, 0.2), b.m * 0.2)
    if sc.rng.random() < 0.5:
        sc.emoji(pick(sc.rng, ["⌚", "⚽", "🛹"]), *b.p(0.8, 0.8), b.m * 0.16)
    return {}


@hard_negative
def juice_party(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.5)
    for i in range(sc.rng.randint(3, 5)):
        sc.emoji(pick(sc.rng, ["🧃", "🥤", "🧋", "🥛", "🍰"]), *t.p(0.12 + i * 0.19, 0.25), b.m * 0.18)
    sc.scatter(["🎉", "🎈", "🎊"], 3, b.sub(0, 0, 1, 0.45), b.m * 0.15)
    if sc.rng.random() < 0.6:
        sc.text(
            pick(sc.rng, ["Liên hoan cuối năm", "Tiệc lớp 5A", "Mừng 1/6"]),
            *b.p(0.5, 0.07),
            b.h * 0.09,
            (200, 50, 100),
            stroke=(255, 255, 255),
            max_w=b.w * 0.9,
        )
    return {}


@hard_negative
def steaming_food(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.45)
    sc.emoji(pick(sc.rng, ["🍜", "🍲", "☕", "🍵"]), *t.p(0.5, 0.2), b.m * 0.4, angle=0)
    smoke(sc, *b.p(0.5, 0.3), b.m * 0.15)
    return {}


@hard_negative
def mothers_day(sc: Scene, b: Box) -> Labels:
    sc.emoji(pick(sc.rng, ["💐", "🌹", "🌷"]), *b.p(0.5, 0.42), b.m * 0.45)
    sc.scatter(["❤️", "💕", "🌸"], 3, b.sub(0, 0, 1, 0.3), b.m * 0.13)
    text = pick(sc.rng, ["Con yêu mẹ", "Ngày của Mẹ", "Mừng 20/10", "Tri ân thầy cô 20/11"])
    sc.text(text, *b.p(0.5, 0.86), b.h * 0.1, (220, 40, 100), stroke=(255, 255, 255), max_w=b.w * 0.9)
    return {}


@hard_negative
def safe_building(sc: Scene, b: Box) -> Labels:
    """A tall building with people on the ground (the roof-edge positive without the edge)."""
    sky(sc, b)
    building(sc, b, 0.2, 0.75, sc.rng.uniform(0.1, 0.35))
    sc.draw.rectangle(b.sub(0, 0.9, 1, 1).xy(), fill=jitter((120, 120, 120), sc.rng))
    for fx in (0.1, 0.87):
        person_on(sc, *b.p(fx, 0.97), b.h * 0.18)
    return {}


@hard_negative
def car_trip(sc: Scene, b: Box) -> Labels:
    """A car with luggage on the roof rack (the car-surfing positive without a person on top)."""
    sky(sc, b)
    r = road(sc, b, 0.55)
    sc.emoji(pick(sc.rng, ["🚗", "🚙", "🚐"]), *r.p(0.5, 0.25), b.m * 0.42, angle=0)
    if sc.rng.random() < 0.6:
        sc.emoji("🧳", *r.p(0.5, -0.1), b.m * 0.16, angle=0)
    sc.scatter(["🌳", "🏡", "⛰️"], 2, b.sub(0, 0.15, 1, 0.5), b.m * 0.16)
    return {}


@hard_negative
def train_station(sc: Scene, b: Box) -> Labels:
    sc.draw.rectangle(b.sub(0, 0.6, 1, 1).xy(), fill=jitter((170, 170, 160), sc.rng))
    sc.draw.rectangle(b.sub(0, 0.62, 1, 0.65).xy(), fill=(250, 210, 0))
    sc.emoji(pick(sc.rng, ["🚆", "🚄", "🚉"]), *b.p(0.35, 0.4), b.m * 0.4, angle=0)
    for fx in (0.7, 0.85):
        person_on(sc, *b.p(fx, 0.92), b.h * 0.22)
    return {}


@hard_negative
def clothing_shop(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sc.draw.line((*b.p(0.05, 0.2), *b.p(0.95, 0.2)), fill=(120, 120, 120), width=max(1, sc.size // 70))
    for i in range(4):
        x, y = b.p(0.15 + i * 0.23, 0.45)
        sc.emoji(pick(rng, ["👗", "👕", "👖", "🧥", "👔"]), x, y, b.m * 0.28, angle=0)
        price_tag(sc, x, y + b.m * 0.2, b.m * 0.06, f"{rng.choice([99, 149, 199, 259])}K")
    sc.text(
        pick(rng, ["SALE CUỐI TUẦN", "Thời trang công sở", "Đồng phục học sinh"]),
        *b.p(0.5, 0.88),
        b.h * 0.09,
        (200, 30, 60),
        stroke=(255, 255, 255),
        max_w=b.w * 0.9,
    )
    return {}


@hard_negative
def benign_news(sc: Scene, b: Box) -> Labels:
    """The news frame of the 'mention' positives, with ordinary news."""
    rng = sc.rng
    headline = pick(
        rng,
        [
            "Đội tuyển thắng 2-0",
            "Hà Nội đón gió mùa",
            "Khai trương tuyến metro mới",
            "Giá xăng giảm nhẹ",
            "Mưa lớn ở miền Trung",
        ],
    )
    photo = news_frame(sc, b, headline)
    sc.emoji(pick(rng, ["⚽", "🌧️", "🚇", "⛽", "🏙️", "🌾"]), *photo.p(0.35, 0.55), photo.m * 0.5)
    sc.emoji(pick(rng, ["🏆", "☔", "🚆", "📈", "🏗️", "🧑\u200d🌾"]), *photo.p(0.75, 0.55), photo.m * 0.4)
    return {}


@hard_negative
def shopping_app(sc: Scene, b: Box) -> Labels:
    """The phone screen, big offer text and button of the gambling and sale positives, selling ordinary goods."""
    rng = sc.rng
    screen = phone(sc, b)
    title = pick(rng, ["SIÊU SALE 11.11", "FLASH SALE", "ĐẶT ĐỒ ĂN", "HỌC ONLINE", "SÁCH GIÁO KHOA"])
    sc.text(title, *screen.p(0.5, 0.1), screen.h * 0.1, (255, 215, 0), max_w=screen.w * 0.95)
    sc.emoji(pick(rng, ["👟", "🎒", "🍜", "📚", "🧸", "🎧"]), *screen.p(0.3, 0.32), screen.m * 0.28)
    sc.emoji(pick(rng, ["🛒", "📦", "🛵", "💻"]), *screen.p(0.72, 0.32), screen.m * 0.24)
    offer = pick(rng, ["GIẢM 50K ĐƠN ĐẦU", "FREESHIP 0Đ", "CHỈ 99K", "TẶNG VOUCHER 20K"])
    multiline(
        sc,
        screen.sub(0, 0.5, 1, 0.75),
        [offer, pick(rng, ["shopee.vn", "Mã: HOCSINH", "đến hết 30/6"])],
        (255, 255, 255),
    )
    banner(sc, screen.sub(0.15, 0.8, 0.85, 0.95), pick(rng, ["MUA NGAY", "ĐĂNG KÝ", "XEM THÊM"]), (230, 40, 40))
    return {}


@hard_negative
def school_notice(sc: Scene, b: Box) -> Labels:
    """The poster frame of the prevention and sign positives, with a school notice."""
    rng = sc.rng
    paper = rng.choice([(250, 250, 245), (255, 240, 200), (230, 245, 255), (30, 60, 40)])
    inner = poster(sc, b, paper)
    ink = ink_for(paper)
    sc.emoji(pick(rng, ["📚", "🏫", "🎓", "📝", "🎨", "⚽"]), *inner.p(0.5, 0.35), inner.m * 0.38)
    lines = pick(
        rng,
        [
            "NGÀY HỘI ĐỌC SÁCH|thứ Bảy 9h",
            "THÔNG BÁO|nghỉ Tết từ 25/1",
            "LỊCH THI HỌC KỲ|khối 6-9",
            "CHÀO MỪNG 20/11|kính tặng thầy cô",
            "CÂU LẠC BỘ BÓNG ĐÁ|tuyển thành viên",
        ],
    )
    multiline(sc, inner.sub(0, 0.64, 1, 1), lines.split("|"), ink)
    return {}


@hard_negative
def blood_donation(sc: Scene, b: Box) -> Labels:
    """The blood-drop emoji of the violence and self-harm positives, in a blood-donation drive."""
    rng = sc.rng
    inner = poster(sc, b, (255, 245, 245))
    sc.emoji("🩸", *inner.p(0.35, 0.35), inner.m * 0.35)
    sc.emoji(pick(rng, ["❤️", "🏥", "🤝", "💉"]), *inner.p(0.7, 0.35), inner.m * 0.28)
    lines = pick(rng, ["HIẾN MÁU NHÂN ĐẠO|Giọt máu đào", "NGÀY HỘI HIẾN MÁU|Chủ nhật đỏ", "MỘT GIỌT MÁU|MỘT CUỘC ĐỜI"])
    multiline(sc, inner.sub(0, 0.64, 1, 1), lines.split("|"), (200, 20, 40))
    return {}


@hard_negative
def bathroom_shelf(sc: Scene, b: Box) -> Labels:
    """The razor of the self-harm positives on a bathroom shelf."""
    rng = sc.rng
    mirror = b.sub(0.15, 0.05, 0.85, 0.5)
    sc.draw.rounded_rectangle(mirror.xy(), radius=round(b.m * 0.05), fill=(200, 225, 235), outline=(150, 150, 160))
    shelf = table(sc, b, top=0.62, kind="white")
    sc.emoji("🪒", *shelf.p(0.2, 0.2), b.m * 0.2, angle=rng.uniform(-30, 30))
    for i, ch in enumerate(rng.sample(["🧴", "🪥", "🧼", "🧽", "🪮", "🧻"], 3)):
        sc.emoji(ch, *shelf.p(0.45 + i * 0.18, 0.15), b.m * 0.17)
    return {}


# --- clean images ---


@clean
def animals(sc: Scene, b: Box) -> Labels:
    sc.draw.rectangle(b.sub(0, 0.6, 1, 1).xy(), fill=jitter((90, 170, 70), sc.rng))
    sc.scatter(["🐶", "🐱", "🐰", "🐘", "🦒", "🐄", "🐓", "🦆", "🐼", "🐢"], sc.rng.randint(2, 4), b, b.m * 0.25)
    return {}


@clean
def school(sc: Scene, b: Box) -> Labels:
    sc.emoji("🏫", *b.p(0.5, 0.4), b.m * 0.45, angle=0)
    sc.scatter(["📚", "✏️", "🎒", "📐", "🖍️"], 3, b.sub(0, 0.65, 1, 1), b.m * 0.15)
    if sc.rng.random() < 0.6:
        sc.text(
            pick(sc.rng, ["Chào năm học mới", "Trường Tiểu học Hoa Sen", "Khai giảng"]),
            *b.p(0.5, 0.08),
            b.h * 0.09,
            (30, 60, 160),
            stroke=(255, 255, 255),
            max_w=b.w * 0.9,
        )
    return {}


@clean
def sports(sc: Scene, b: Box) -> Labels:
    field_ = b.sub(0, 0.3, 1, 1)
    sc.draw.rectangle(field_.xy(), fill=jitter((40, 150, 60), sc.rng))
    sc.draw.line((*field_.p(0.5, 0), *field_.p(0.5, 1)), fill=(255, 255, 255), width=max(1, sc.size // 100))
    sc.draw.ellipse(field_.sub(0.35, 0.3, 0.65, 0.7).xy(), outline=(255, 255, 255), width=max(1, sc.size // 100))
    sc.scatter(["⚽", "🏀", "🏸", "🏐", "🏃", "🥅", "🏆"], sc.rng.randint(2, 4), b, b.m * 0.18)
    return {}


@clean
def food(sc: Scene, b: Box) -> Labels:
    t = table(sc, b, top=0.35)
    sc.scatter(["🍚", "🍜", "🥗", "🍱", "🍤", "🥟", "🍉", "🥢", "🍵"], sc.rng.randint(3, 5), t, b.m * 0.2)
    return {}


@clean
def landscape(sc: Scene, b: Box) -> Labels:
    rng = sc.rng
    sky(sc, b)
    for k in range(rng.randint(1, 3)):  # mountain ranges
        base = b.p(0, 0.55 + k * 0.08)[1]
        pts = [(b.x0, b.y1), (b.x0, base)]
        for i in range(7):
            pts.append((b.x0 + b.w * (i + 0.5) / 6, base - b.h * rng.uniform(0.05, 0.25)))
        pts += [(b.x1, base), (b.x1, b.y1)]
        sc.draw.polygon(pts, fill=jitter((60 + k * 20, 110 + k * 20, 80), rng))
    field_ = b.sub(0, 0.78, 1, 1)
    sc.draw.rectangle(field_.xy(), fill=jitter((120, 190, 70), rng))
    for i in range(5):  # rice paddy rows
        y = field_.p(0, (i + 0.5) / 5)[1]
        sc.draw.line((field_.x0, y, field_.x1, y), fill=(90, 150, 50), width=1)
    sc.scatter(["🌳", "🌾", "🏡", "🐃"], rng.randint(1, 3), field_.sub(0, -0.6, 1, 0.6), b.m * 0.14)
    return {}


@clean
def traffic(sc: Scene, b: Box) -> Labels:
    sky(sc, b)
    r = road(sc, b, 0.5)
    for i in range(sc.rng.randint(2, 4)):
        sc.emoji(
            pick(sc.rng, ["🛵", "🚌", "🚲", "🚗", "🚕"]),
            *r.p(0.15 + i * 0.25, sc.rng.uniform(0.2, 0.7)),
            b.m * 0.2,
            angle=0,
        )
    return {}


@clean
def music_and_hobbies(sc: Scene, b: Box) -> Labels:
    sc.scatter(["🎸", "🎹", "🎵", "🎶", "🥁", "📷", "🎮", "🧩", "🪁"], sc.rng.randint(3, 5), b, b.m * 0.2)
    return {}


@clean
def nature_and_sky(sc: Scene, b: Box) -> Labels:
    night = sky(sc, b)
    sc.emoji("🌙" if night else "☀️", *b.p(0.75, 0.2), b.m * 0.2)
    sc.scatter(["🌸", "🌻", "🌷", "🦋", "🐝", "🪴", "🌳", "🚀"], sc.rng.randint(2, 4), b.sub(0, 0.4, 1, 1), b.m * 0.2)
    return {}


# ---------------------------------------------------------------------------------------------------------------------
# Planning and rendering

NEUTRAL_CAPTIONS = (
    "Cuối tuần vui vẻ!",
    "Chia sẻ nếu thấy hay",
    "Hà Nội mùa thu",
    "Góc nhỏ bình yên",
    "Ảnh: sưu tầm",
    "Hôm nay trời đẹp quá",
    "Xem đến cuối nhé",
    "Một ngày của mình",
    "#viral #fyp",
    "Bạn nghĩ sao?",
    "Sài Gòn 2024",
    "Like và share nha",
    "Nhật ký thứ Hai",
    "Đà Nẵng ơi",
    "Ghim lại xem sau",
    "Thứ Sáu rồi!",
)


# Scenes with children, school or family cues. They never share a picture with a sexual scene: the
# juxtaposition would read as sexualising minors (child_sexual), which this set must never depict.
CHILD_CUES: frozenset[str] = frozenset(
    {
        "family_board_game",
        "vaccination",
        "juice_party",
        "water_pistol_play",
        "school",
        "school_notice",
        "shopping_app",
        "red_paint",
        "piggy_bank",
        "clothing_shop",
        "mothers_day",
        "campfire",
        "birthday",
        "challenge_news",
    }
)


@dataclass(frozen=True)
class ItemSpec:
    """What one image will show, fixed before drawing so counts are exact and reproducible."""

    split: str
    index: int
    kind: str  # positive, hard_negative, clean
    category: str | None = None
    severity: int = 0
    second: str | None = None  # a second category (multi-label) or "negative" (a benign side panel)

    @property
    def rel_path(self) -> str:
        return f"images/{self.split}/{self.split}_{self.index:05d}.jpg"


@dataclass
class Rendered:
    image: Image.Image
    labels: Labels
    scenes: list[str] = field(default_factory=list)


def plan_split(split: str, n: int, cfg: ImageDataConfig) -> list[ItemSpec]:
    """Exact mix for one split: negatives, then positives cycling over every (category, severity)."""
    rng = random.Random(f"{cfg.seed}:plan:{split}")
    n_neg = round(n * cfg.negative_fraction)
    n_hard = round(n_neg * cfg.hard_negative_share)
    kinds: list[tuple[str, str | None, int, str | None]] = []
    for i in range(n_neg):
        kind = "hard_negative" if i < n_hard else "clean"
        kinds.append((kind, None, 0, "negative" if rng.random() < cfg.multi_label_fraction else None))
    offset = rng.randrange(len(VISUAL_CATEGORIES))
    for i in range(n - n_neg):
        cat = VISUAL_CATEGORIES[(i + offset) % len(VISUAL_CATEGORIES)]
        sev = 1 + (i // len(VISUAL_CATEGORIES)) % 3
        second: str | None = None
        r = rng.random()
        if r < cfg.multi_label_fraction:
            second = rng.choice([c for c in VISUAL_CATEGORIES if c != cat])
        elif r < cfg.multi_label_fraction + 0.1:
            second = "negative"
        kinds.append(("positive", cat, sev, second))
    rng.shuffle(kinds)
    return [ItemSpec(split, i, k, c, s, sec) for i, (k, c, s, sec) in enumerate(kinds)]


def plan(cfg: ImageDataConfig) -> list[ItemSpec]:
    sizes = {"train": cfg.n_train, "dev": cfg.n_dev, "test": cfg.n_test}
    return [spec for split in SPLITS for spec in plan_split(split, sizes[split], cfg)]


def _merge(into: Labels, new: Labels) -> None:
    for c, s in new.items():
        into[c] = max(into.get(c, 0), s)


def _postprocess(img: Image.Image, rng: random.Random) -> Image.Image:
    """What re-posted pictures go through: slight crop, colour shifts, blur or noise."""
    s = img.width
    if rng.random() < 0.5:
        m = round(s * rng.uniform(0.0, 0.05))
        if m > 0:
            x, y = rng.randint(0, m), rng.randint(0, m)
            img = img.crop((x, y, x + s - m, y + s - m)).resize((s, s), Image.Resampling.BILINEAR)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.85, 1.15))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.15))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.75, 1.2))
    if rng.random() < 0.2:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * s / 224))
    return img


def render(spec: ItemSpec, cfg: ImageDataConfig) -> Rendered:
    """Draw one image from its spec; the same spec and seed give the same pixels."""
    rng = random.Random(f"{cfg.seed}:{spec.split}:{spec.index}")
    sc = Scene(cfg.size, rng)
    background(sc)
    clutter(sc)
    s = float(cfg.size)
    margin = s * 0.05
    area = Box(margin, margin, s - margin, s - margin)
    caption_at: str | None = None
    if rng.random() < cfg.caption_probability:
        caption_at = rng.choice(["top", "bottom"])
        area = area.sub(0, 0.14, 1, 1) if caption_at == "top" else area.sub(0, 0, 1, 0.86)
    main, side = area, None
    if spec.second is not None:
        frac = rng.uniform(0.5, 0.6)
        horizontal = rng.random() < 0.5
        if horizontal:
            main, side = area.sub(0, 0, frac, 1), area.sub(frac + 0.02, 0.1, 1, 0.9)
        else:
            main, side = area.sub(0, 0, 1, frac), area.sub(0.1, frac + 0.02, 0.9, 1)
        if rng.random() < 0.5:  # the main scene on the right or at the bottom instead
            if horizontal:
                main, side = area.sub(1 - frac, 0, 1, 1), area.sub(0, 0.1, 0.98 - frac, 0.9)
            else:
                main, side = area.sub(0, 1 - frac, 1, 1), area.sub(0.1, 0, 0.9, 0.98 - frac)

    labels: Labels = dict.fromkeys(VISUAL_CATEGORIES, 0)
    scenes: list[str] = []

    sexual_panel = spec.category == "sexual" or spec.second == "sexual"

    def paint(painters: Sequence[Painter], box: Box) -> None:
        if sexual_panel:  # never a child or school cue in the same picture as sexual content
            painters = [p for p in painters if p.__name__ not in CHILD_CUES]
        fn = rng.choice(painters)
        _merge(labels, fn(sc, box))
        scenes.append(fn.__name__)

    if spec.kind == "positive":
        assert spec.category is not None
        paint(POSITIVE[(spec.category, spec.severity)], main)
    else:
        paint(HARD_NEGATIVE if spec.kind == "hard_negative" else CLEAN, main)
    if side is not None:
        if spec.second == "negative":
            paint(HARD_NEGATIVE + CLEAN, side)
        else:
            assert spec.second is not None
            paint(POSITIVE[(spec.second, rng.randint(1, 3))], side)
    if caption_at is not None:
        band = Box(0, 0, s, s * 0.14) if caption_at == "top" else Box(0, s * 0.86, s, s)
        bg = rng.choice([(0, 0, 0, 160), (255, 255, 255, 190), (*rand_color(rng), 200)])
        sc.draw.rectangle(band.xy(), fill=bg)
        ink = ink_for((bg[0], bg[1], bg[2])) if bg[3] > 170 else (255, 255, 255)
        sc.text(
            rng.choice(NEUTRAL_CAPTIONS),
            *band.p(0.5, 0.5),
            band.h * 0.5,
            ink,
            style=rng.choice(["regular", "bold"]),
            max_w=band.w * 0.92,
        )
    return Rendered(_postprocess(sc.img, rng), labels, scenes)


def encode_jpeg(img: Image.Image, rng: random.Random, quality: tuple[int, int]) -> bytes:
    """JPEG at a random quality; a third of images are re-compressed once more (as re-shared pictures are)."""
    lo, hi = quality
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(lo, hi))
    if rng.random() < 0.33:
        again = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        buf = io.BytesIO()
        again.save(buf, "JPEG", quality=rng.randint(lo, hi))
    return buf.getvalue()


def generate(cfg: ImageDataConfig, out: Path, progress: bool = True) -> list[tuple[ItemSpec, Labels, list[str]]]:
    """Write images, labels.csv and generation_meta.csv under out; returns what was written."""
    specs = plan(cfg)
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
    done: list[tuple[ItemSpec, Labels, list[str]]] = []
    for spec in tqdm(specs, desc="images", unit="img", disable=not progress):
        r = render(spec, cfg)
        jrng = random.Random(f"{cfg.seed}:jpeg:{spec.split}:{spec.index}")
        (out / spec.rel_path).write_bytes(encode_jpeg(r.image, jrng, cfg.jpeg_quality_range))
        done.append((spec, r.labels, r.scenes))
    with (out / MANIFEST_NAME).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for spec, labels, _ in done:
            w.writerow([spec.rel_path, spec.split, *(labels[c] for c in VISUAL_CATEGORIES)])
    with (out / META_NAME).open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "kind", "scenes"])
        for spec, labels, scenes in done:
            kind = "multi_label" if sum(v > 0 for v in labels.values()) > 1 else spec.kind
            w.writerow([spec.rel_path, kind, "+".join(scenes)])
    return done


def stats_markdown(done: list[tuple[ItemSpec, Labels, list[str]]], cfg: ImageDataConfig) -> str:
    """Counts per split: images by kind, and images per category and severity."""
    kinds: Counter[tuple[str, str]] = Counter()
    sev: Counter[tuple[str, int, str]] = Counter()
    for spec, labels, _ in done:
        kind = "multi_label" if sum(v > 0 for v in labels.values()) > 1 else spec.kind
        kinds[(kind, spec.split)] += 1
        for c in VISUAL_CATEGORIES:
            sev[(c, labels[c], spec.split)] += 1
    lines = [
        "# Generated images: counts",
        "",
        f"Written by `python -m training.images.synth` (seed {cfg.seed}, {cfg.size}x{cfg.size} px, "
        f"{len(done)} images). See `data_cards/generated_images.md`.",
        "",
        "| kind | " + " | ".join(SPLITS) + " | total |",
        "|---|" + "---|" * (len(SPLITS) + 1),
    ]
    for kind in ("positive", "multi_label", "hard_negative", "clean"):
        row = [kinds[(kind, s)] for s in SPLITS]
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    lines += ["", "Images per category and severity (an image counts once per category):", ""]
    lines += ["| category | severity | " + " | ".join(SPLITS) + " | total |", "|---|---|" + "---|" * (len(SPLITS) + 1)]
    for c in VISUAL_CATEGORIES:
        for level in (1, 2, 3, 0):
            row = [sev[(c, level, s)] for s in SPLITS]
            lines.append(f"| {c} | {level} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    return "\n".join(lines) + "\n"


def contact_sheet(out: Path, png: Path, n: int = 48, cols: int = 8) -> None:
    """A grid of the first n training images with their labels, for eyeballing the set."""
    with (out / MANIFEST_NAME).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    short = {
        "sexual": "sex",
        "violence": "vio",
        "substances": "sub",
        "gambling": "gam",
        "self_harm": "sh",
        "dangerous_acts": "dan",
    }
    cell, pad = 160, 22
    sheet = Image.new("RGB", (cols * cell, ((len(rows) + cols - 1) // cols) * (cell + pad)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    font = _font(_font_paths("regular")[0], 13)
    for i, row in enumerate(rows):
        with Image.open(out / row["path"]) as im:
            thumb = im.convert("RGB").resize((cell - 4, cell - 4))
        x, y = (i % cols) * cell, (i // cols) * (cell + pad)
        sheet.paste(thumb, (x + 2, y + 2))
        label = " ".join(f"{short[c]}{row[c]}" for c in VISUAL_CATEGORIES if row[c] not in ("", "0")) or "neg"
        d.text((x + 4, y + cell), label, font=font, fill=(200, 0, 0) if label != "neg" else (0, 120, 0))
    png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Generate the default labelled image set for the visual classifier (section 'image_data' of "
            "params.yaml): drawn scenes with emoji objects, hard negatives and clean images, labelled 0-3 for "
            f"{', '.join(VISUAL_CATEGORIES)}. Writes <out>/images/<split>/*.jpg and <out>/labels.csv."
        ),
    )
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file with an image_data section")
    parser.add_argument(
        "--out",
        default="data/images/generated",
        type=Path,
        help="output folder; an earlier set's images/ there are replaced",
    )
    parser.add_argument(
        "--stats", default="data_cards/image_stats/generated_images.md", type=Path, help="markdown table of the counts"
    )
    parser.add_argument("--contact-sheet", type=Path, help="also save a PNG grid of the first training images")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "image_data", ImageDataConfig)

    if (args.out / MANIFEST_NAME).exists() or (args.out / "images").exists():
        shutil.rmtree(args.out / "images", ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = generate(cfg, args.out)
    seconds = time.perf_counter() - start
    md = stats_markdown(done, cfg)
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    args.stats.write_text(md, encoding="utf-8")
    if args.contact_sheet is not None:
        contact_sheet(args.out, args.contact_sheet)
    print(md)
    print(f"{len(done)} images in {seconds:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
