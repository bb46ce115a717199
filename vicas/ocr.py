"""Read Vietnamese text in images with Tesseract (Debian's tesseract-ocr + tesseract-ocr-vie).

Serving-side: Pillow, numpy and pytesseract only (no torch). `read_text` returns the
recognised text with each word's character span in that text and its box in the
ORIGINAL image's pixels, so evidence spans the text model finds on `OcrResult.text`
can be drawn back onto the image (`boxes_for_span`).

Preprocessing, all measured by `training/ocr_eval.py` on rendered Vietnamese text
(see its metrics for the figures behind each default):
grayscale; dark backgrounds inverted to dark-on-light (Tesseract's LSTM was trained
on dark text); autocontrast; a projection-profile deskew (Tesseract's own layout
analysis loses whole lines from about 5 degrees of rotation); and a second pass at a
larger scale when the words found are smaller than `min_text_height_px`.
"""

from __future__ import annotations

import math
import time
import unicodedata
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, field_validator

Box = tuple[int, int, int, int]  # (left, top, width, height) in original image pixels

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-vie"


class OcrError(RuntimeError):
    """OCR failed on this image (timeout, Tesseract error)."""


class OcrUnavailable(OcrError):
    """Tesseract or its language data is not installed; the message says which package to install."""


class OcrConfig(BaseModel):
    """OCR settings. Defaults chosen by CER on the rendered evaluation set (training/ocr_eval.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] = Field(
        "vie+eng", description="Tesseract languages joined with '+'"
    )
    psm: int = Field(6, description="Tesseract page segmentation mode (3 auto, 4 column, 6 block, 11 sparse)")
    min_confidence: float = Field(0.0, ge=0, le=100, description="drop words Tesseract is less sure of (0-100)")
    timeout_s: float = Field(30.0, gt=0, description="wall-clock limit for all passes on one image")
    min_text_height_px: int = Field(
        24, ge=0, description="rerun at a larger scale when the median word box is lower than this (0: off)"
    )
    max_upscale: float = Field(4.0, ge=1.0)
    max_pixels: int = Field(40_000_000, ge=10_000, description="upscaling never makes the image larger than this")
    invert_dark: bool = Field(True, description="invert images whose background is dark (light text, memes)")
    try_inverted: bool = Field(False, description="also read the inverted image when confidence is low")
    retry_below_confidence: float = Field(60.0, ge=0, le=100, description="mean confidence that triggers retries")
    autocontrast: bool = True
    deskew: bool = Field(True, description="straighten text rotated by up to max_skew_deg")
    max_skew_deg: float = Field(10.0, ge=0, le=45)
    binarize: bool = Field(False, description="feed Tesseract an Otsu-binarised image instead of grayscale")

    @field_validator("psm")
    @classmethod
    def _psm(cls, v: int) -> int:
        if v not in (1, 3, 4, 5, 6, 7, 8, 11, 12, 13):
            raise ValueError("psm must be a page segmentation mode that recognises text: 1, 3-8, 11-13")
        return v


class OcrWord(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    start: int = Field(description="character offset in OcrResult.text (inclusive)")
    end: int = Field(description="character offset in OcrResult.text (exclusive)")
    box: Box = Field(description="(left, top, width, height) in the original image's pixels")
    confidence: float = Field(description="Tesseract's word confidence, 0-100")


class OcrResult(BaseModel):
    text: str = Field(description="NFC text: words joined by spaces, lines by newlines")
    words: list[OcrWord]
    mean_confidence: float = Field(description="mean word confidence weighted by word length (0 when no words)")
    seconds: float
    scale: float = Field(1.0, description="scale of the image Tesseract read, relative to the original")
    skew_deg: float = Field(0.0, description="rotation applied before reading (counter-clockwise degrees)")
    inverted: bool = False
    passes: int = 1


# ---------------------------------------------------------------------------------------------- availability


def _tesseract() -> Any:
    import pytesseract

    return pytesseract


@lru_cache(maxsize=8)
def _languages(cmd: str) -> tuple[str, ...]:
    pt = _tesseract()
    try:
        return tuple(pt.get_languages())
    except pt.TesseractNotFoundError as e:
        raise OcrUnavailable(f"tesseract is not installed (looked for {cmd!r}): {INSTALL_HINT}") from e


def _package(lang: str) -> str:
    return f"tesseract-ocr-{lang.lower().replace('_', '-')}"


def check_ocr(languages: str = "vie+eng") -> None:
    """Raise OcrUnavailable, naming the package to install, unless Tesseract can read `languages`."""
    cmd = str(_tesseract().pytesseract.tesseract_cmd)
    have = _languages(cmd)
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        pkgs = " ".join(_package(lang) for lang in missing)
        raise OcrUnavailable(
            f"tesseract has no language data for {'+'.join(missing)} (installed: {', '.join(have) or 'none'}): "
            f"apt-get install {pkgs}"
        )


def ocr_available(languages: str = "vie+eng") -> bool:
    """True when Tesseract and the language data are installed (for tests and server start-up checks)."""
    try:
        check_ocr(languages)
    except OcrUnavailable:
        return False
    return True


# ---------------------------------------------------------------------------------------------- preprocessing


def _to_gray(image: Image.Image) -> Image.Image:
    """Grayscale; transparent pixels become white (as a browser shows a transparent PNG on a page)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        page.alpha_composite(rgba)
        image = page
    return image.convert("L")


def _border_median(arr: np.ndarray) -> float:
    edge = max(1, min(arr.shape) // 20)
    border = np.concatenate(
        [arr[:edge].ravel(), arr[-edge:].ravel(), arr[:, :edge].ravel(), arr[:, -edge:].ravel()]
    )
    return float(np.median(border))


def _is_dark(gray: Image.Image) -> bool:
    """Dark background: the border and the whole image are both mostly dark."""
    arr = np.asarray(gray)
    return _border_median(arr) < 110 and float(np.median(arr)) < 110


def otsu_threshold(arr: np.ndarray) -> int:
    hist = np.bincount(arr.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128
    omega = np.cumsum(hist) / total
    mu = np.cumsum(hist * np.arange(256)) / total
    mu_t = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_b = (mu_t * omega - mu) ** 2 / (omega * (1 - omega))
    sigma_b = np.nan_to_num(sigma_b)
    return int(np.argmax(sigma_b))


def _ink(gray: Image.Image) -> np.ndarray:
    """Boolean ink mask (dark pixels) of a dark-on-light grayscale image."""
    arr = np.asarray(gray)
    return arr < otsu_threshold(arr)


def _profile_score(ink: Image.Image, angle: float) -> float:
    rows = np.asarray(ink.rotate(angle, resample=Image.Resampling.NEAREST, expand=True), dtype=np.float32).sum(axis=1)
    return float(np.sum(np.diff(rows) ** 2))


def estimate_skew(gray: Image.Image, max_deg: float = 10.0) -> float:
    """Counter-clockwise rotation (degrees) that makes text lines horizontal: the angle whose
    row-ink profile is sharpest, searched at 0.5 degree then 0.1 degree steps on a thumbnail."""
    if max_deg <= 0:
        return 0.0
    thumb = gray.copy()
    thumb.thumbnail((800, 800))
    mask = _ink(thumb)
    if mask.mean() < 0.002 or mask.mean() > 0.6:  # blank, or no clear text polarity
        return 0.0
    ink = Image.fromarray((mask * 255).astype(np.uint8), "L")
    coarse = np.arange(-max_deg, max_deg + 1e-9, 0.5)
    scores = [_profile_score(ink, float(a)) for a in coarse]
    best = float(coarse[int(np.argmax(scores))])
    fine = np.arange(best - 0.4, best + 0.41, 0.1)
    scores = [_profile_score(ink, float(a)) for a in fine]
    best = float(fine[int(np.argmax(scores))])
    # only a clear gain over the unrotated profile counts (a photo has no preferred angle)
    if abs(best) < 0.3 or max(scores) < 1.05 * _profile_score(ink, 0.0):
        return 0.0
    return round(best, 2)


class _View:
    """An image prepared for Tesseract and the way back to the original's pixel coordinates."""

    def __init__(self, image: Image.Image, scale: float, angle: float, scaled_size: tuple[int, int]) -> None:
        self.image, self.scale, self.angle = image, scale, angle
        self.scaled_size = scaled_size

    def to_original(self, box: Box, original_size: tuple[int, int]) -> Box:
        left, top, w, h = box
        corners = [(left, top), (left + w, top), (left, top + h), (left + w, top + h)]
        if self.angle:
            # undo Image.rotate(angle, expand=True): rotate about the centres back by -angle
            a = math.radians(self.angle)
            cos, sin = math.cos(a), math.sin(a)
            cx2, cy2 = self.image.size[0] / 2, self.image.size[1] / 2
            cx, cy = self.scaled_size[0] / 2, self.scaled_size[1] / 2
            back = []
            for x, y in corners:
                dx, dy = x - cx2, y - cy2
                back.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
            corners = back
        xs = [x / self.scale for x, _ in corners]
        ys = [y / self.scale for _, y in corners]
        W, H = original_size
        x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
        x1, y1 = min(W, math.ceil(max(xs))), min(H, math.ceil(max(ys)))
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _prepare(gray: Image.Image, scale: float, angle: float, config: OcrConfig) -> _View:
    img = gray
    if scale != 1.0:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        img = gray.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    scaled_size = img.size
    if angle:
        fill = int(_border_median(np.asarray(img)))
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    if config.binarize:
        arr = np.asarray(img)
        img = Image.fromarray(np.where(arr < otsu_threshold(arr), 0, 255).astype(np.uint8), "L")
    return _View(img, scale, angle, scaled_size)


# ---------------------------------------------------------------------------------------------- recognition


def _run_tesseract(image: Image.Image, config: OcrConfig, deadline: float) -> dict[str, list[Any]]:
    pt = _tesseract()
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise OcrError(f"OCR timed out after {config.timeout_s:g} s")
    try:
        data: dict[str, list[Any]] = pt.image_to_data(
            image,
            lang=config.languages,
            config=f"--psm {config.psm}",
            timeout=remaining,
            output_type=pt.Output.DICT,
        )
    except pt.TesseractNotFoundError as e:
        raise OcrUnavailable(f"tesseract is not installed: {INSTALL_HINT}") from e
    except pt.TesseractError as e:
        msg = str(getattr(e, "message", e))
        if "Failed loading language" in msg or "Error opening data file" in msg:
            pkgs = " ".join(_package(lang) for lang in config.languages.split("+"))
            raise OcrUnavailable(f"tesseract cannot load {config.languages} language data: apt-get install {pkgs}") from e
        raise OcrError(f"tesseract failed: {msg}") from e
    except RuntimeError as e:
        if "timeout" in str(e).lower():
            raise OcrError(f"OCR timed out after {config.timeout_s:g} s") from e
        raise
    return data


_RawWord = tuple[tuple[int, int, int], str, Box, float]  # (block, paragraph, line), text, box, confidence


def _words(data: dict[str, list[Any]], min_conf: float) -> list[_RawWord]:
    out: list[_RawWord] = []
    for i, raw in enumerate(data.get("text", [])):
        text = unicodedata.normalize("NFC", str(raw)).strip()
        conf = float(data["conf"][i])
        if not text or conf < 0 or conf < min_conf:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        box = (int(data["left"][i]), int(data["top"][i]), int(data["width"][i]), int(data["height"][i]))
        out.append((key, " ".join(text.split()), box, conf))
    return out


def _mean_conf(words: list[_RawWord]) -> float:
    n = sum(len(w[1]) for w in words)
    return sum(len(w[1]) * w[3] for w in words) / n if n else 0.0


def _median_height(words: list[_RawWord]) -> float:
    hs = [w[2][3] for w in words if w[3] >= 30 and len(w[1]) >= 2]
    return float(np.median(hs)) if hs else 0.0


class _Pass:
    def __init__(self, view: _View, words: list[_RawWord], inverted: bool) -> None:
        self.view, self.words, self.inverted = view, words, inverted
        self.conf = _mean_conf(words)

    @property
    def score(self) -> float:
        """Confident characters read: prefers the pass that reads more, and reads it surely."""
        return sum(len(w[1]) * w[3] for w in self.words)


def read_text(image: Image.Image, config: OcrConfig | None = None) -> OcrResult:
    """Recognise the text in `image`; word boxes are given in the original image's pixels."""
    cfg = config or OcrConfig()
    check_ocr(cfg.languages)
    t0 = time.perf_counter()
    deadline = t0 + cfg.timeout_s
    gray = _to_gray(image)
    inverted = False
    if cfg.invert_dark and _is_dark(gray):
        gray, inverted = ImageOps.invert(gray), True
    if cfg.autocontrast:
        gray = ImageOps.autocontrast(gray, cutoff=1)
    angle = estimate_skew(gray, cfg.max_skew_deg) if cfg.deskew else 0.0

    def run(src: Image.Image, scale: float, inv: bool) -> _Pass:
        view = _prepare(src, scale, angle, cfg)
        return _Pass(view, _words(_run_tesseract(view.image, cfg, deadline), cfg.min_confidence), inv)

    passes = 1
    best = run(gray, 1.0, inverted)
    if cfg.min_text_height_px:
        h = _median_height(best.words)
        if 0 < h < cfg.min_text_height_px:
            limit = math.sqrt(cfg.max_pixels / max(1, gray.width * gray.height))
            scale = min(cfg.max_upscale, cfg.min_text_height_px / h, limit)
            if scale > 1.1:
                passes += 1
                bigger = run(gray, scale, inverted)
                if bigger.score >= best.score:
                    best = bigger
    if cfg.try_inverted and best.conf < cfg.retry_below_confidence:
        passes += 1
        other = run(ImageOps.invert(gray), best.view.scale, not inverted)
        if other.score > best.score:
            best = other
    return _assemble(best, image.size, time.perf_counter() - t0, passes)


def _assemble(p: _Pass, original_size: tuple[int, int], seconds: float, passes: int) -> OcrResult:
    words: list[OcrWord] = []
    parts: list[str] = []
    pos = 0
    prev_line: tuple[int, int, int] | None = None
    for key, text, box, conf in p.words:
        if prev_line is not None:
            sep = " " if key == prev_line else "\n"
            parts.append(sep)
            pos += 1
        prev_line = key
        parts.append(text)
        words.append(
            OcrWord(
                text=text,
                start=pos,
                end=pos + len(text),
                box=p.view.to_original(box, original_size),
                confidence=round(conf, 2),
            )
        )
        pos += len(text)
    return OcrResult(
        text="".join(parts),
        words=words,
        mean_confidence=round(p.conf, 2),
        seconds=round(seconds, 4),
        scale=round(p.view.scale, 4),
        skew_deg=p.view.angle,
        inverted=p.inverted,
        passes=passes,
    )


def boxes_for_span(result: OcrResult, start: int, end: int) -> list[Box]:
    """Boxes of the words overlapping the character span [start, end) of `result.text`."""
    return [w.box for w in result.words if w.start < end and w.end > start]
