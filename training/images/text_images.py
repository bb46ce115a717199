"""Render text into images the way it reaches a content filter: posters, memes, chat screenshots.

Shared by the OCR evaluation, the image-classifier data and the tests. Every image
comes with the `RenderCondition` that made it, so errors can be broken down by
font, size, style, rotation and compression. Pillow and numpy only (no torch).
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Style = Literal["plain", "dark", "colour", "meme", "chat"]
STYLES: tuple[Style, ...] = ("plain", "dark", "colour", "meme", "chat")

FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".fonts",
    Path.home() / ".local/share/fonts",
)

# Font name -> file name (regular, bold). All of these cover the Vietnamese Latin range.
FONT_FILES: dict[str, tuple[str, str]] = {
    "dejavu_sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "dejavu_serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "liberation_sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    "liberation_serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
    "noto_sans": ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    "noto_serif": ("NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf"),
}

VIETNAMESE_LETTERS = "ẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹđĐơƠưƯ"


class FontNotFound(FileNotFoundError):
    """None of the files of a font are installed."""


@cache
def _font_index() -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for d in FONT_DIRS:
        if d.is_dir():
            # newest first where a family ships twice (liberation2/ before liberation/)
            for p in sorted(d.rglob("*.tt[fc]"), key=lambda q: str(q), reverse=True):
                index.setdefault(p.name, []).append(p)
    return index


@cache
def covers_vietnamese(path: Path) -> bool:
    """True when the font draws every Vietnamese letter (Liberation 1.x, for one, lacks ạ ấ ầ ... ỹ)."""
    font = ImageFont.truetype(str(path), 24)
    tofu = (font.getbbox("\ue000"), bytes(font.getmask("\ue000")))
    return all((font.getbbox(ch), bytes(font.getmask(ch))) != tofu for ch in VIETNAMESE_LETTERS)


def font_path(name: str, bold: bool = False) -> Path:
    """The installed file of a font in FONT_FILES that covers Vietnamese (a path to a .ttf also works)."""
    if name not in FONT_FILES:
        p = Path(name)
        if p.is_file():
            return p
        raise FontNotFound(f"unknown font {name!r}; known: {sorted(FONT_FILES)} or a path to a .ttf file")
    file = FONT_FILES[name][1 if bold else 0]
    for found in _font_index().get(file, []):
        if covers_vietnamese(found):
            return found
    raise FontNotFound(
        f"no {file} with Vietnamese letters under {[str(d) for d in FONT_DIRS]}: "
        "apt-get install fonts-dejavu-core fonts-liberation2 fonts-noto-core"
    )


def available_fonts() -> list[str]:
    """Fonts of FONT_FILES whose regular and bold files are installed."""
    out = []
    for name in FONT_FILES:
        try:
            font_path(name)
            font_path(name, bold=True)
        except FontNotFound:
            continue
        out.append(name)
    return out


@cache
def load_font(name: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name, bold)), size)


@dataclass(frozen=True)
class RenderCondition:
    """How one image was made. `rotation` in degrees (counter-clockwise); `jpeg_quality` None = lossless."""

    font: str = "dejavu_sans"
    size: int = 28
    style: Style = "plain"
    rotation: float = 0.0
    jpeg_quality: int | None = None
    noise_sigma: float = 0.0
    blur: float = 0.0
    width: int = 800  # wrapping width of the text block in pixels
    bold: bool = False
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RenderedText:
    image: Image.Image
    text: str  # the text as drawn: the input with the line breaks of the wrapping
    condition: RenderCondition
    line_boxes: list[tuple[int, int, int, int]]  # (left, top, width, height) of each line, before rotation


def wrap_text(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels; keeps the text's own line breaks, splits over-long words."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        words = para.split()
        line = ""
        for w in words:
            candidate = f"{line} {w}" if line else w
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.getlength(w) > width and len(w) > 1:
                cut = len(w) - 1
                while cut > 1 and font.getlength(w[:cut]) > width:
                    cut -= 1
                lines.append(w[:cut])
                w = w[cut:]
            line = w
        if line:
            lines.append(line)
    return lines


_PALETTES: dict[Style, list[tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    # (foreground, background)
    "plain": [((0, 0, 0), (255, 255, 255)), ((33, 33, 33), (250, 248, 240))],
    "dark": [((255, 255, 255), (20, 20, 20)), ((230, 230, 230), (30, 40, 60)), ((255, 221, 0), (15, 15, 15))],
    "colour": [((200, 20, 30), (255, 245, 200)), ((20, 60, 160), (220, 235, 250)), ((255, 255, 255), (200, 30, 40))],
    # meme: white letters with a black outline on a busy photo-like background
    "meme": [((255, 255, 255), (0, 0, 0))],
    # chat: (text, bubble) on a white screen: Messenger-like blue, Zalo/Messenger-like grey
    "chat": [((255, 255, 255), (0, 132, 255)), ((5, 5, 5), (228, 230, 235)), ((255, 255, 255), (0, 104, 255))],
}


def photo_background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A smooth random colour field with blobs: stands in for a photo (behind meme text, or alone)."""
    w, h = size
    gen = np.random.default_rng(rng.randrange(2**32))
    small = gen.integers(0, 256, size=(max(2, h // 60), max(2, w // 60), 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    return img.filter(ImageFilter.GaussianBlur(radius=6))


def render_text(text: str, condition: RenderCondition | None = None) -> RenderedText:
    """Draw `text` under `condition`: wrap, style, then rotate, blur, noise, JPEG (in that order)."""
    c = condition or RenderCondition()
    rng = random.Random(c.seed)
    bold = c.bold or c.style == "meme"
    font = load_font(c.font, c.size, bold)
    lines = wrap_text(text, font, c.width)
    fg, bg = rng.choice(_PALETTES[c.style])
    ascent, descent = font.getmetrics()
    line_h = int((ascent + descent) * (1.25 if c.style == "chat" else 1.2))
    block_w = max([int(font.getlength(line)) for line in lines] + [1])
    block_h = line_h * max(1, len(lines))
    pad = max(12, c.size // 2 + 6)
    stroke = max(2, c.size // 12) if c.style == "meme" else 0

    if c.style == "chat":
        # a phone screen: white page, one rounded bubble holding the text, a little margin around
        bubble_pad = max(10, c.size // 2)
        margin = pad + rng.randint(0, 30)
        W = block_w + 2 * bubble_pad + margin + pad + rng.randint(0, 80)
        H = block_h + 2 * bubble_pad + 2 * pad + rng.randint(0, 40)
        img = Image.new("RGB", (W, H), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        x0 = margin if fg == (5, 5, 5) else W - pad - block_w - 2 * bubble_pad  # received left, sent right
        y0 = pad
        draw.rounded_rectangle(
            (x0, y0, x0 + block_w + 2 * bubble_pad, y0 + block_h + 2 * bubble_pad), radius=bubble_pad + 6, fill=bg
        )
        tx, ty = x0 + bubble_pad, y0 + bubble_pad
    else:
        W = block_w + 2 * pad
        H = block_h + 2 * pad
        img = photo_background((W, H), rng) if c.style == "meme" else Image.new("RGB", (W, H), bg)
        draw = ImageDraw.Draw(img)
        tx, ty = pad, pad

    line_boxes: list[tuple[int, int, int, int]] = []
    for i, line in enumerate(lines):
        y = ty + i * line_h
        if c.style == "meme":
            x = tx + (block_w - int(font.getlength(line))) // 2  # memes are centred
            draw.text((x, y), line, font=font, fill=fg, stroke_width=stroke, stroke_fill=(0, 0, 0))
        else:
            x = tx
            draw.text((x, y), line, font=font, fill=fg)
        left, top, right, bottom = draw.textbbox((x, y), line, font=font, stroke_width=stroke)
        line_boxes.append((int(left), int(top), int(right - left), int(bottom - top)))

    fill = tuple(int(v) for v in np.asarray(img)[0, 0])
    if c.rotation:
        img = img.rotate(c.rotation, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    if c.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius=c.blur))
    if c.noise_sigma > 0:
        gen = np.random.default_rng(c.seed)
        pixels = np.asarray(img, dtype=np.float64)
        noisy = pixels + gen.normal(0.0, c.noise_sigma, size=pixels.shape)
        img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    if c.jpeg_quality is not None:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(c.jpeg_quality))
        buf.seek(0)
        img = Image.open(buf)
        img.load()
        img = img.convert("RGB")
    return RenderedText(img, "\n".join(lines), c, line_boxes)


@dataclass(frozen=True)
class ConditionSpace:
    """What `sample_condition` draws from, each factor independently."""

    fonts: tuple[str, ...] = tuple(FONT_FILES)
    sizes: tuple[int, ...] = (14, 18, 22, 28, 36, 48)
    styles: tuple[Style, ...] = STYLES
    rotations: tuple[float, ...] = (0.0, 0.0, 2.0, -2.0, 5.0, -5.0, 8.0, -8.0)
    jpeg_qualities: tuple[int | None, ...] = (None, 90, 70, 50, 30)
    noise_sigmas: tuple[float, ...] = (0.0, 0.0, 6.0, 12.0)
    blurs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.7)
    widths: tuple[int, ...] = (480, 720, 960)
    bold_share: float = 0.2


def sample_condition(rng: random.Random, space: ConditionSpace | None = None) -> RenderCondition:
    s = space or ConditionSpace()
    size = rng.choice(s.sizes)
    return RenderCondition(
        font=rng.choice(s.fonts),
        size=size,
        style=rng.choice(s.styles),
        rotation=rng.choice(s.rotations),
        jpeg_quality=rng.choice(s.jpeg_qualities),
        noise_sigma=rng.choice(s.noise_sigmas),
        blur=rng.choice(s.blurs),
        # keep lines a sensible number of characters long whatever the font size
        width=max(rng.choice(s.widths), size * 14),
        bold=rng.random() < s.bold_share,
        seed=rng.randrange(2**31),
    )


def size_bucket(size: int) -> str:
    return "small (<=16px)" if size <= 16 else "medium (17-28px)" if size <= 28 else "large (>28px)"


def rotation_bucket(angle: float) -> str:
    a = abs(angle)
    return "0°" if a == 0 else "≤2°" if a <= 2 else "≤5°" if a <= 5 else ">5°"


def jpeg_bucket(quality: int | None) -> str:
    if quality is None:
        return "png"
    return "q≥85" if quality >= 85 else "q60-84" if quality >= 60 else "q40-59" if quality >= 40 else "q<40"


def noise_bucket(sigma: float, blur: float) -> str:
    parts = [f"noise σ={sigma:g}" if sigma else "", f"blur {blur:g}" if blur else ""]
    return " + ".join(p for p in parts if p) or "clean"
