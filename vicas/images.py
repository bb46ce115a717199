"""Opening untrusted images safely: byte and pixel limits, decompression bombs refused, clear errors.

Every image the CLI, the API and bulk scoring read goes through `open_image`, so
the limits are the same everywhere. Pillow decodes lazily: the header (format,
size) is checked before any pixel is decoded, so a small file that would expand
to gigabytes is refused without decoding it.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a web filter meets; anything else (PDF, PSD, ICO, ...) is refused rather than guessed at.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
DEFAULT_MAX_BYTES = 10_000_000
DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An image that cannot or must not be read; the message says why and what to do."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status an API answers with (413: too large, 422: not an image)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def _open_header(data: bytes, limits: ImageLimits, name: str) -> Image.Image:
    """Open an image lazily (the header only) and apply every check that needs no decoding: size in bytes,
    format, decompression bomb, pixels. Shared by `image_size` and `open_image`."""
    if len(data) > limits.max_bytes:
        raise ImageError(f"{name} has {len(data):,} bytes; the limit is {limits.max_bytes:,}", status=413)
    if not data:
        raise ImageError(f"{name} is empty")
    try:
        img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
    except UnidentifiedImageError as e:
        raise ImageError(f"{name} is not an image in a supported format ({', '.join(sorted(ALLOWED_FORMATS))})") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name} is refused as a decompression bomb: {e}", status=413) from e
    except (OSError, ValueError) as e:
        raise ImageError(f"{name} could not be read: {e}") from e
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name} has no pixels")
    if width * height > limits.max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,}", status=413
        )
    return img


def image_size(data: bytes, limits: ImageLimits | None = None, name: str = "image") -> tuple[int, int]:
    """Width and height from the header alone (nothing decoded), under the same checks as `open_image`.

    Lets a caller count a request's pixels before it decodes any image.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_header(data, limits or ImageLimits(), name) as img:
            return img.size


class PixelBudget:
    """Pixels one request (a batch included) may decode; counted from headers before decoding anything."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, pixels: int, name: str) -> None:
        self.used += pixels
        if self.used > self.limit:
            raise ImageError(
                f"{name} takes the request's images to {self.used:,} pixels; one request may decode at most "
                f"{self.limit:,} (send fewer or smaller images per request)",
                status=413,
            )


def open_image(data: bytes, limits: ImageLimits | None = None, name: str = "image") -> Image.Image:
    """Decode bytes into an RGB image within the limits; raise ImageError otherwise.

    Animated images give their first frame; EXIF orientation is applied; transparency
    is composited on white (how a page would show it).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open_header(data, limits or ImageLimits(), name)
        try:
            img.load()
            return to_rgb(ImageOps.exif_transpose(img) or img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageError(f"{name} is refused as a decompression bomb: {e}", status=413) from e
        except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
            raise ImageError(f"{name} is damaged or truncated: {e}") from e


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def read_image_bytes(path: str | Path, limits: ImageLimits | None = None) -> bytes:
    """An image file's bytes, its size checked before reading it."""
    p = Path(path)
    limits = limits or ImageLimits()
    try:
        size = p.stat().st_size
        if size > limits.max_bytes:
            raise ImageError(f"{p} has {size:,} bytes; the limit is {limits.max_bytes:,}", status=413)
        return p.read_bytes()
    except OSError as e:
        raise ImageError(f"cannot read image file {p}: {e.strerror or e}") from e


def read_image_file(path: str | Path, limits: ImageLimits | None = None) -> Image.Image:
    limits = limits or ImageLimits()
    return open_image(read_image_bytes(path, limits), limits, name=str(path))


def decode_base64(value: str, name: str = "image") -> bytes:
    """Plain base64 or a `data:image/...;base64,` URI."""
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImageError(f"{name} is not valid base64") from e
