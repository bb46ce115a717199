"""Read Vietnamese text in images with Tesseract (Debian's tesseract-ocr + tesseract-ocr-vie).

Serving-side: Pillow, numpy and pytesseract only (no torch). `read_text` returns the
recognised text with each word's character span in that text and its box in the
ORIGINAL image's pixels, so evidence spans the text model finds on `OcrResult.text`
can be drawn back onto the image (`boxes_for_span`).

Every default was chosen by character error rate (CER) on Vietnamese texts rendered
under varied fonts, sizes, styles, rotations, noise and JPEG quality (`training/ocr_eval.py`,
DVC stage `evaluate_ocr`), comparing settings on the same 40-100 images:

- psm 6 (one block of text): CER 0.062, against 0.091 for psm 11 and 0.122 for psm 3;
- deskew by the sharpest row-ink profile: 0.108 without (Tesseract loses whole lines
  from about 5 degrees of rotation);
- dark backgrounds inverted to dark-on-light before reading;
- when Tesseract is unsure (mean confidence < 60), a second reading of the near-white
  pixels alone as black on white: meme captions (white letters, black outline, busy
  photo) went from CER 0.40 to 0.12, all styles from 0.095 to 0.035;
- `vie` alone (0.056) beat `vie+eng` (0.065), which reads more Vietnamese words as
  English without their diacritics and takes 1.7x the time; `vie+eng` is kept as a
  fallback when unsure, which rescues URLs and English (0.056 -> 0.051);
- a second pass at up to 4x scale when the words read surely are lower than 32 px: on
  10-14 px text CER 0.129 -> 0.075. Not when most of what was read is unsure: noisy photos
  without text were read as thousands of unsure characters, and upscaling them took 15 s;
- Otsu binarisation made it worse and dropping low-confidence words changed nothing,
  so both are off.
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, field_validator

Box = tuple[int, int, int, int]  # (left, top, width, height) in original image pixels

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-vie"


class OcrError(RuntimeError):
    """OCR failed on this image (timeout, Tesseract error)."""


class OcrTimeout(OcrError):
    """Tesseract ran past `OcrConfig.timeout_s`."""


class OcrUnavailable(OcrError):
    """Tesseract or its language data is not installed; the message says which package to install."""


class OcrConfig(BaseModel):
    """OCR settings. Defaults chosen by CER on the rendered evaluation set (training/ocr_eval.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] = Field(
        "vie", description="Tesseract languages joined with '+'"
    )
    psm: int = Field(6, description="Tesseract page segmentation mode (3 auto, 4 column, 6 block, 11 sparse)")
    min_confidence: float = Field(0.0, ge=0, le=100, description="drop words Tesseract is less sure of (0-100)")
    timeout_s: float = Field(30.0, gt=0, description="wall-clock limit for all passes on one image")
    min_text_height_px: int = Field(
        32, ge=0, description="rerun at a larger scale when the median word box is lower than this (0: off)"
    )
    max_upscale: float = Field(4.0, ge=1.0)
    max_pixels: int = Field(12_000_000, ge=10_000, description="upscaling never makes the image larger than this")
    invert_dark: bool = Field(True, description="invert images whose background is dark (light text, memes)")
    try_inverted: bool = Field(
        True,
        description="when confidence is low, also read near-white lettering alone, inverted to black on white "
        "(meme captions: white letters with a black outline on a photo)",
    )
    retry_below_confidence: float = Field(60.0, ge=0, le=100, description="mean confidence that triggers retries")
    light_threshold: int = Field(200, ge=0, le=254, description="R, G and B above this count as white lettering")
    fallback_languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] | None = Field(
        "vie+eng",
        description="when confidence is low, also read with these languages (URLs, English), keep the surer pass",
    )
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


def check_ocr(languages: str | None = None) -> None:
    """Raise OcrUnavailable, naming the package to install, unless Tesseract can read `languages`
    (by default those of `OcrConfig()`)."""
    languages = languages or OcrConfig().languages
    have = _languages(str(_tesseract().pytesseract.tesseract_cmd))
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        pkgs = " ".join(_package(lang) for lang in missing)
        raise OcrUnavailable(
            f"tesseract has no language data for {'+'.join(missing)} (installed: {', '.join(have) or 'none'}): "
            f"apt-get install {pkgs}"
        )


def ocr_available(languages: str | None = None) -> bool:
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
    border = np.concatenate([arr[:edge].ravel(), arr[-edge:].ravel(), arr[:, :edge].ravel(), arr[:, -edge:].ravel()])
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
        corners: list[tuple[float, float]] = [(left, top), (left + w, top), (left, top + h), (left + w, top + h)]
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


def _run_tesseract(
    image: Image.Image, config: OcrConfig, deadline: float, languages: str | None = None
) -> dict[str, list[Any]]:
    pt = _tesseract()
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise OcrTimeout(f"OCR timed out after {config.timeout_s:g} s")
    try:
        data: dict[str, list[Any]] = pt.image_to_data(
            image,
            lang=languages or config.languages,
            config=f"--psm {config.psm}",
            timeout=remaining,
            output_type=pt.Output.DICT,
        )
    except pt.TesseractNotFoundError as e:
        raise OcrUnavailable(f"tesseract is not installed: {INSTALL_HINT}") from e
    except pt.TesseractError as e:
        msg = str(getattr(e, "message", e))
        if "Failed loading language" in msg or "Error opening data file" in msg:
            langs = languages or config.languages
            pkgs = " ".join(_package(lang) for lang in langs.split("+"))
            raise OcrUnavailable(f"tesseract cannot load {langs} language data: apt-get install {pkgs}") from e
        raise OcrError(f"tesseract failed: {msg}") from e
    except RuntimeError as e:
        if "timeout" in str(e).lower():
            raise OcrTimeout(f"OCR timed out after {config.timeout_s:g} s") from e
        raise
    return data


SURE = 50.0  # word confidence (0-100) that counts when passes are compared

_RawWord = tuple[tuple[int, int, int], str, Box, float]  # (block, paragraph, line), text, box, confidence


def _words(data: dict[str, list[Any]]) -> list[_RawWord]:
    out: list[_RawWord] = []
    for i, raw in enumerate(data.get("text", [])):
        text = unicodedata.normalize("NFC", str(raw)).strip()
        conf = float(data["conf"][i])
        if not text or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        box = (int(data["left"][i]), int(data["top"][i]), int(data["width"][i]), int(data["height"][i]))
        out.append((key, " ".join(text.split()), box, conf))
    return out


def _mean_conf(words: list[_RawWord]) -> float:
    n = sum(len(w[1]) for w in words)
    return sum(len(w[1]) * w[3] for w in words) / n if n else 0.0


def _looks_like_text(words: list[_RawWord]) -> bool:
    """At least a sixth of the characters read surely. Noise or texture read as text had 4-8% of its
    characters sure; real text in the evaluation, however degraded, 19% or more."""
    sure = sum(len(w[1]) for w in words if w[3] >= SURE)
    return sure > 0 and 6 * sure >= sum(len(w[1]) for w in words)


def _median_height(words: list[_RawWord]) -> float:
    """Median box height of the words read surely (0 when under two, or when most of what was read
    is unsure): noise read as text must not trigger an upscaled pass, which costs seconds on a photo."""
    if not _looks_like_text(words):
        return 0.0
    hs = [w[2][3] for w in words if w[3] >= SURE and len(w[1]) >= 2]
    return float(np.median(hs)) if len(hs) >= 2 else 0.0


class _Pass:
    def __init__(
        self, view: _View, words: list[_RawWord], inverted: bool, source: Image.Image, languages: str | None
    ) -> None:
        self.view, self.words, self.inverted, self.source = view, words, inverted, source
        self.languages = languages
        self.conf = _mean_conf(words)

    @property
    def score(self) -> float:
        """Characters read surely, weighted by confidence: prefers the pass that reads more, and reads
        it surely. Words under SURE do not count, or a pass that reads noise as hundreds of
        unsure characters would beat one that reads the real text."""
        return sum(len(w[1]) * w[3] for w in self.words if w[3] >= SURE)


def _light_text(image: Image.Image, threshold: int = 200) -> Image.Image | None:
    """Black-on-white mask of near-white lettering (meme captions: white letters, black outline, any
    background): a pixel is ink when all of R, G, B exceed `threshold`. None when near-white pixels
    are too rare or too common to be lettering (a blank page, a photo without captions)."""
    arr = np.asarray(image.convert("RGB"))
    ink = arr.min(axis=2) > threshold
    share = float(ink.mean())
    if not 0.003 <= share <= 0.4:
        return None
    return Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L")


def _fallback_usable(cfg: OcrConfig) -> bool:
    if not cfg.fallback_languages or cfg.fallback_languages == cfg.languages:
        return False
    have = _languages(str(_tesseract().pytesseract.tesseract_cmd))
    return all(lang in have for lang in cfg.fallback_languages.split("+"))


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

    def run(
        src: Image.Image, scale: float, inv: bool, angle: float | None = None, languages: str | None = None
    ) -> _Pass:
        if cfg.autocontrast:
            src = ImageOps.autocontrast(src, cutoff=1)
        if angle is None:
            angle = estimate_skew(src, cfg.max_skew_deg) if cfg.deskew else 0.0
        view = _prepare(src, scale, angle, cfg)
        words = _words(_run_tesseract(view.image, cfg, deadline, languages))
        return _Pass(view, words, inv, src, languages)

    best = first = run(gray, 1.0, inverted)  # a timeout here is an OcrError: nothing was read
    # Further passes are optional: each must beat the best so far, and one that runs out of
    # time ends the search with what was read, rather than failing the image.
    candidates: list[Callable[[], _Pass | None]] = []
    if first.conf < cfg.retry_below_confidence:
        # unsure: read the near-white lettering alone, and read with the fallback languages
        light = _light_text(image, cfg.light_threshold) if cfg.try_inverted else None
        if light is not None:
            candidates.append(lambda: run(light, 1.0, True))
        if first.score > 0 and _fallback_usable(cfg):  # nothing read surely: no text to rescue
            candidates.append(lambda: run(first.source, 1.0, first.inverted, first.view.angle, cfg.fallback_languages))

    def upscaled() -> _Pass | None:
        h = _median_height(best.words)
        if not cfg.min_text_height_px or not 0 < h < cfg.min_text_height_px:
            return None
        limit = math.sqrt(cfg.max_pixels / max(1, gray.width * gray.height))
        scale = min(cfg.max_upscale, cfg.min_text_height_px / h, limit)
        if scale <= 1.1:
            return None
        return run(best.source, scale, best.inverted, best.view.angle, best.languages)

    candidates.append(upscaled)
    passes = 1
    for candidate in candidates:
        try:
            other = candidate()
        except OcrTimeout:
            break
        if other is not None:
            passes += 1
            if other.score > best.score:
                best = other
    return _assemble(best, image.size, time.perf_counter() - t0, passes, cfg.min_confidence)


def _assemble(p: _Pass, original_size: tuple[int, int], seconds: float, passes: int, min_conf: float) -> OcrResult:
    """The result text and words; words below `min_conf` are left out only here, after the passes were
    compared on every word (dropping them earlier hides how unsure a pass was)."""
    words: list[OcrWord] = []
    parts: list[str] = []
    pos = 0
    prev_line: tuple[int, int, int] | None = None
    kept = [w for w in p.words if w[3] >= min_conf]
    for key, text, box, conf in kept:
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
        mean_confidence=round(_mean_conf(kept), 2),
        seconds=round(seconds, 4),
        scale=round(p.view.scale, 4),
        skew_deg=p.view.angle,
        inverted=p.inverted,
        passes=passes,
    )


def boxes_for_span(result: OcrResult, start: int, end: int) -> list[Box]:
    """Boxes of the words overlapping the character span [start, end) of `result.text`."""
    return [w.box for w in result.words if w.start < end and w.end > start]
