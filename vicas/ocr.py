"""Read Vietnamese text in images with Tesseract (Debian's tesseract-ocr + tesseract-ocr-vie).

Serving-side: Pillow, numpy and tesserocr or pytesseract only (no torch). `read_text` returns the
recognised text with each word's character span in that text and its box in the
ORIGINAL image's pixels, so evidence spans the text model finds on `OcrResult.text`
can be drawn back onto the image (`boxes_for_span`).

Every default was chosen by character error rate (CER) on Vietnamese texts rendered
under varied fonts, sizes, styles, rotations, noise and JPEG quality (`training/images/ocr_eval.py`,
DVC stage `evaluate_ocr`), comparing settings on the same 40-300 images:

- psm 6 (one block of text): CER 0.062, against 0.091 for psm 11 and 0.122 for psm 3;
- deskew by the sharpest row-ink profile: 0.108 without (Tesseract loses whole lines
  from about 5 degrees of rotation); the profile is taken by projecting the ink points (same
  angle within 0.1 degree as rotating the mask, on all 300 evaluation images, 1.5x cheaper);
- dark backgrounds inverted to dark-on-light before reading;
- when Tesseract is unsure (mean confidence < 60), a second reading of the near-white
  pixels alone as black on white: meme captions (white letters, black outline, busy
  photo) went from CER 0.40 to 0.12, all styles from 0.095 to 0.035;
- `vie` alone (0.056) beat `vie+eng` (0.065), which reads more Vietnamese words as
  English without their diacritics and takes 1.7x the time; `vie+eng` is kept as a
  fallback when unsure, which rescues URLs and English (0.056 -> 0.051);
- a second pass at up to 4x scale when the words read surely are lower than 20 px: on
  10-14 px text CER 0.129 -> 0.075 (then at 32 px). Words of 20-32 px gained nothing from it:
  at 20 px the evaluation's CER went 0.0426 -> 0.0402 (0.0421 -> 0.0406 on a second sample) in
  19% less time. Not when most of what was read is unsure: noisy photos without text were read
  as thousands of unsure characters, and upscaling them took 15 s;
- retries stop once one reads surely: after the near-white-lettering pass has read a meme
  caption, the vie+eng pass never changed the CER and cost a quarter of a meme's time;
- large images are read at full size: read scaled down to 4 megapixels, small text on a
  12-megapixel page went from CER 0.29 to 0.54 (`max_read_pixels`, off);
- Otsu binarisation made it worse and dropping low-confidence words changed nothing,
  so both are off.

Two engines read the prepared images, with the same languages, page segmentation, word boxes and
(integer) confidences: `tesserocr` keeps loaded Tesseract instances in this process, one per
concurrent reader (a pool: one instance is not thread-safe), and `pytesseract` runs the `tesseract`
program on every pass, paying a process start and a language-data load (about 0.09 s) each time.
On the evaluation images tesserocr took 0.185 s per image against 0.562 s, CER 0.0426 against
0.0463 (its wheel carries Tesseract 5.5.4; Debian's program is 5.3.0); with the settings above,
0.139 s. `OcrConfig.engine` or the environment variable VICAS_OCR_ENGINE (auto|tesserocr|pytesseract)
picks one; auto takes tesserocr when it is installed and finds the language data, pytesseract
otherwise. Figures: benchmarks/RESULTS.md, "OCR engines" (benchmarks/ocr_engines.py).
"""

from __future__ import annotations

import glob
import math
import os
import threading
import time
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, field_validator

Box = tuple[int, int, int, int]  # (left, top, width, height) in original image pixels

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-vie"
ENGINE_ENV = "VICAS_OCR_ENGINE"
EngineName = Literal["auto", "tesserocr", "pytesseract"]
ENGINES: tuple[str, ...] = ("auto", "tesserocr", "pytesseract")


class OcrError(RuntimeError):
    """OCR failed on this image (timeout, Tesseract error)."""


class OcrTimeout(OcrError):
    """Tesseract ran past `OcrConfig.timeout_s`."""


class OcrUnavailable(OcrError):
    """Tesseract or its language data is not installed; the message says which package to install."""


class OcrConfig(BaseModel):
    """OCR settings. Defaults chosen by CER on the rendered evaluation set (training/images/ocr_eval.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] = Field(
        "vie", description="Tesseract languages joined with '+'"
    )
    psm: int = Field(6, description="Tesseract page segmentation mode (3 auto, 4 column, 6 block, 11 sparse)")
    min_confidence: float = Field(0.0, ge=0, le=100, description="drop words Tesseract is less sure of (0-100)")
    timeout_s: float = Field(30.0, gt=0, description="wall-clock limit for all passes on one image")
    min_text_height_px: int = Field(
        20, ge=0, description="rerun at a larger scale when the median word box is lower than this (0: off)"
    )
    max_upscale: float = Field(4.0, ge=1.0)
    max_pixels: int = Field(12_000_000, ge=10_000, description="upscaling never makes the image larger than this")
    max_read_pixels: int | None = Field(
        None,
        ge=10_000,
        description="larger images are first read scaled down to this many pixels (Tesseract's time grows with "
        "the pixels). Off: small text on a 12-megapixel page went from CER 0.29 to 0.54 at 4 megapixels",
    )
    invert_dark: bool = Field(True, description="invert images whose background is dark (light text, memes)")
    try_inverted: bool = Field(
        True,
        description="when confidence is low, also read near-white lettering alone, inverted to black on white "
        "(meme captions: white letters with a black outline on a photo)",
    )
    retry_below_confidence: float = Field(60.0, ge=0, le=100, description="mean confidence that triggers retries")
    stop_retries_when_sure: bool = Field(
        True, description="skip the remaining retries once one reads at retry_below_confidence or above"
    )
    light_threshold: int = Field(200, ge=0, le=254, description="R, G and B above this count as white lettering")
    fallback_languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] | None = Field(
        "vie+eng",
        description="when confidence is low, also read with these languages (URLs, English), keep the surer pass",
    )
    autocontrast: bool = True
    deskew: bool = Field(True, description="straighten text rotated by up to max_skew_deg")
    max_skew_deg: float = Field(10.0, ge=0, le=45)
    binarize: bool = Field(False, description="feed Tesseract an Otsu-binarised image instead of grayscale")
    engine: EngineName = Field(
        "auto",
        description="tesserocr (Tesseract loaded in this process) or pytesseract (a `tesseract` process per pass); "
        f"auto: ${ENGINE_ENV} when set, else tesserocr when installed, else pytesseract",
    )

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


# ---------------------------------------------------------------------------------------------- engines


def _tesseract() -> Any:
    import pytesseract

    return pytesseract


def _tesserocr() -> Any | None:
    """The tesserocr module, or None when it is not installed (pytesseract is the fallback)."""
    try:
        import tesserocr
    except ImportError:
        return None
    return tesserocr


@lru_cache(maxsize=8)
def _languages(cmd: str) -> tuple[str, ...]:
    pt = _tesseract()
    try:
        return tuple(pt.get_languages())
    except pt.TesseractNotFoundError as e:
        raise OcrUnavailable(f"tesseract is not installed (looked for {cmd!r}): {INSTALL_HINT}") from e


def _package(lang: str) -> str:
    return f"tesseract-ocr-{lang.lower().replace('_', '-')}"


def _missing_data(languages: str) -> OcrUnavailable:
    pkgs = " ".join(_package(lang) for lang in languages.split("+"))
    return OcrUnavailable(f"tesseract cannot load {languages} language data: apt-get install {pkgs}")


def _timed_out(config_timeout_s: float) -> OcrTimeout:
    return OcrTimeout(f"OCR timed out after {config_timeout_s:g} s")


_TSV_COLUMNS = (
    "level",
    "page_num",
    "block_num",
    "par_num",
    "line_num",
    "word_num",
    "left",
    "top",
    "width",
    "height",
    "conf",
)


def parse_tsv(tsv: str) -> dict[str, list[Any]]:
    """Tesseract's TSV (with or without its header row) as pytesseract's `Output.DICT`: integer columns,
    confidences truncated to integers as pytesseract does, so both engines feed `_words` the same values."""
    out: dict[str, list[Any]] = {c: [] for c in (*_TSV_COLUMNS, "text")}
    for line in tsv.splitlines():
        cells = line.split("\t")
        if len(cells) < len(_TSV_COLUMNS) or cells[0] == "level":
            continue
        for name, value in zip(_TSV_COLUMNS, cells, strict=False):
            out[name].append(int(float(value)))
        out["text"].append("\t".join(cells[len(_TSV_COLUMNS) :]))
    return out


class _Engine(Protocol):
    name: str

    def languages(self) -> tuple[str, ...]:
        """Languages whose data this engine can load."""
        ...

    def image_to_data(
        self, image: Image.Image, languages: str, psm: int, timeout_s: float, config_timeout_s: float
    ) -> dict[str, list[Any]]:
        """One Tesseract pass: pytesseract's `Output.DICT` of `image_to_data`."""
        ...


class _PytesseractEngine:
    """A `tesseract` process per pass (about 0.1 s of start-up and language loading each)."""

    name = "pytesseract"

    def languages(self) -> tuple[str, ...]:
        return _languages(str(_tesseract().pytesseract.tesseract_cmd))

    def image_to_data(
        self, image: Image.Image, languages: str, psm: int, timeout_s: float, config_timeout_s: float
    ) -> dict[str, list[Any]]:
        pt = _tesseract()
        try:
            data: dict[str, list[Any]] = pt.image_to_data(
                image, lang=languages, config=f"--psm {psm}", timeout=timeout_s, output_type=pt.Output.DICT
            )
        except pt.TesseractNotFoundError as e:
            raise OcrUnavailable(f"tesseract is not installed: {INSTALL_HINT}") from e
        except pt.TesseractError as e:
            msg = str(getattr(e, "message", e))
            if "Failed loading language" in msg or "Error opening data file" in msg:
                raise _missing_data(languages) from e
            raise OcrError(f"tesseract failed: {msg}") from e
        except RuntimeError as e:
            if "timeout" in str(e).lower():
                raise _timed_out(config_timeout_s) from e
            raise
        return data


_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/*/tessdata",  # Debian, Ubuntu (tesseract-ocr-vie)
    "/usr/share/tessdata",  # Fedora, Arch
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)


def tessdata_dir() -> str | None:
    """Where tesserocr finds the language data: $TESSDATA_PREFIX, else the system packages' folder (the
    wheel's compiled-in default is its build machine's). None when no folder holds any traineddata."""
    return _find_tessdata(os.environ.get("TESSDATA_PREFIX"))


@lru_cache(maxsize=8)
def _find_tessdata(env: str | None) -> str | None:
    """Looked up once per process (and $TESSDATA_PREFIX): every pass asks for its engine."""
    candidates = [env] if env else []
    for pattern in _TESSDATA_DIRS:
        candidates += sorted(glob.glob(pattern), reverse=True)  # newest Tesseract version first
    for folder in candidates:
        if any(Path(folder).glob("*.traineddata")):
            return os.path.join(folder, "")
    return None


class _TesserocrEngine:
    """Tesseract loaded in this process: a pool of initialised `PyTessBaseAPI`s per language set, one per
    concurrent reader (an instance is not thread-safe; tesserocr releases the GIL while it recognises,
    so threads read in parallel). Instances are kept for the life of the process."""

    name = "tesserocr"

    def __init__(self, module: Any, datapath: str) -> None:
        self._tr, self._datapath = module, datapath
        self._idle: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._langs: tuple[str, ...] | None = None

    def languages(self) -> tuple[str, ...]:
        if self._langs is None:
            self._langs = tuple(self._tr.get_languages(self._datapath)[1])
        return self._langs

    def _acquire(self, languages: str) -> Any:
        with self._lock:
            idle = self._idle.setdefault(languages, [])
            if idle:
                return idle.pop()
        try:
            # debug_file: Tesseract's notes ("Estimating resolution as ...") would go to the server's stderr
            api = self._tr.PyTessBaseAPI(path=self._datapath, lang=languages, variables={"debug_file": os.devnull})
        except RuntimeError as e:
            raise _missing_data(languages) from e
        if set(languages.split("+")) - set(api.GetLoadedLanguages()):  # Tesseract skips what it cannot load
            api.End()
            raise _missing_data(languages)
        return api

    def _release(self, languages: str, api: Any) -> None:
        with self._lock:
            self._idle.setdefault(languages, []).append(api)

    def image_to_data(
        self, image: Image.Image, languages: str, psm: int, timeout_s: float, config_timeout_s: float
    ) -> dict[str, list[Any]]:
        api = self._acquire(languages)
        try:
            api.SetPageSegMode(psm)
            api.SetImage(image)
            t0 = time.perf_counter()
            if not api.Recognize(timeout=max(1, math.ceil(timeout_s * 1000))):
                if time.perf_counter() - t0 >= 0.9 * timeout_s:
                    raise _timed_out(config_timeout_s)
                raise OcrError("tesseract failed to recognise the image")
            tsv = api.GetTSVText(0)
            api.Clear()  # frees the image and results now, not at this instance's next use
        except OcrError:
            api.Clear()
            self._release(languages, api)
            raise
        except BaseException:
            api.End()  # state unknown: not back into the pool
            raise
        self._release(languages, api)
        return parse_tsv(tsv)


def engine_name(requested: str = "auto") -> str:
    """The engine `requested` resolves to: auto takes $VICAS_OCR_ENGINE when set, else tesserocr when it is
    installed and finds language data, else pytesseract."""
    name = requested
    if name == "auto":
        name = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if name not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r} (${ENGINE_ENV}): use one of {', '.join(ENGINES)}")
    if name == "auto":
        name = "tesserocr" if _tesserocr() is not None and tessdata_dir() is not None else "pytesseract"
    return name


@lru_cache(maxsize=4)
def _engine_named(name: str, datapath: str | None) -> _Engine:
    if name == "pytesseract":
        return _PytesseractEngine()
    module = _tesserocr()
    if module is None:
        raise OcrUnavailable(f"tesserocr is not installed: pip install tesserocr (or {ENGINE_ENV}=pytesseract)")
    if datapath is None:
        raise OcrUnavailable(f"no Tesseract language data found (set TESSDATA_PREFIX): {INSTALL_HINT}")
    return _TesserocrEngine(module, datapath)


def get_engine(requested: str = "auto") -> _Engine:
    """The engine for `OcrConfig.engine`: one per process and data folder, so loaded instances are reused."""
    name = engine_name(requested)
    return _engine_named(name, tessdata_dir() if name == "tesserocr" else None)


def check_ocr(languages: str | None = None, engine: str = "auto") -> None:
    """Raise OcrUnavailable, naming the package to install, unless the engine can read `languages`
    (by default those of `OcrConfig()`)."""
    languages = languages or OcrConfig().languages
    have = get_engine(engine).languages()
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        pkgs = " ".join(_package(lang) for lang in missing)
        raise OcrUnavailable(
            f"tesseract has no language data for {'+'.join(missing)} (installed: {', '.join(have) or 'none'}): "
            f"apt-get install {pkgs}"
        )


def ocr_available(languages: str | None = None, engine: str = "auto") -> bool:
    """True when the engine and the language data are installed (for tests and server start-up checks)."""
    try:
        check_ocr(languages, engine)
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


def _profile_score(xs: np.ndarray, ys: np.ndarray, angle: float) -> float:
    """Sharpness of the row-ink profile after turning the ink points (offsets from the centre) by `angle`
    degrees counter-clockwise: what rotating the mask and summing its rows gave (Image.rotate, 50 times
    per pass, a tenth of the OCR time with tesserocr), at two thirds of the cost. Each point is shared
    between the two rows it falls between: rounding to one row aliases with the pixel grid, and dense
    noise (a photo) then looked sharpest at some angle. Empty rows at either end do not count, as in
    the rotated mask."""
    a = math.radians(angle)
    pos = ys * math.cos(a) - xs * math.sin(a)
    low = np.floor(pos)
    frac = pos - low
    idx = (low - low.min()).astype(np.intp)
    n = int(idx.max()) + 2
    profile = np.bincount(idx, weights=1.0 - frac, minlength=n) + np.bincount(idx + 1, weights=frac, minlength=n)
    return float(np.sum(np.diff(np.trim_zeros(profile)) ** 2))


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
    rows, cols = np.nonzero(mask)
    # an integer centre: at angle 0 every point stays on its own row
    ys = rows.astype(np.float64) - mask.shape[0] // 2
    xs = cols.astype(np.float64) - mask.shape[1] // 2
    coarse = np.arange(-max_deg, max_deg + 1e-9, 0.5)
    scores = [_profile_score(xs, ys, float(a)) for a in coarse]
    best = float(coarse[int(np.argmax(scores))])
    fine = np.arange(best - 0.4, best + 0.41, 0.1)
    scores = [_profile_score(xs, ys, float(a)) for a in fine]
    best = float(fine[int(np.argmax(scores))])
    # only a clear gain over the unrotated profile counts (a photo has no preferred angle)
    if abs(best) < 0.3 or max(scores) < 1.05 * _profile_score(xs, ys, 0.0):
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
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise _timed_out(config.timeout_s)
    engine = get_engine(config.engine)
    return engine.image_to_data(image, languages or config.languages, config.psm, remaining, config.timeout_s)


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
    have = get_engine(cfg.engine).languages()
    return all(lang in have for lang in cfg.fallback_languages.split("+"))


def read_text(image: Image.Image, config: OcrConfig | None = None) -> OcrResult:
    """Recognise the text in `image`; word boxes are given in the original image's pixels."""
    cfg = config or OcrConfig()
    check_ocr(cfg.languages, cfg.engine)
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

    area = gray.width * gray.height
    base = min(1.0, math.sqrt(cfg.max_read_pixels / area)) if cfg.max_read_pixels else 1.0
    best = first = run(gray, base, inverted)  # a timeout here is an OcrError: nothing was read
    # Further passes are optional: each must beat the best so far, and one that runs out of
    # time ends the search with what was read, rather than failing the image.
    candidates: list[tuple[bool, Callable[[], _Pass | None]]] = []  # (a retry for an unsure read, pass)
    if first.conf < cfg.retry_below_confidence:
        # unsure: read the near-white lettering alone, and read with the fallback languages
        light = _light_text(image, cfg.light_threshold) if cfg.try_inverted else None
        if light is not None:
            candidates.append((True, lambda: run(light, base, True)))
        if first.score > 0 and _fallback_usable(cfg):  # nothing read surely: no text to rescue
            candidates.append(
                (True, lambda: run(first.source, base, first.inverted, first.view.angle, cfg.fallback_languages))
            )

    def upscaled() -> _Pass | None:
        h = _median_height(best.words)
        if not cfg.min_text_height_px or not 0 < h < cfg.min_text_height_px:
            return None
        limit = math.sqrt(cfg.max_pixels / max(1, area))
        # h is in the pixels of the image that was read: a scaled-down read scales up from there
        scale = min(cfg.max_upscale, best.view.scale * cfg.min_text_height_px / h, limit)
        if scale <= 1.1 * best.view.scale:
            return None
        return run(best.source, scale, best.inverted, best.view.angle, best.languages)

    candidates.append((False, upscaled))
    passes = 1
    for retry, candidate in candidates:
        if retry and cfg.stop_retries_when_sure and best.conf >= cfg.retry_below_confidence:
            continue  # an earlier retry already read it surely
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
