"""Thumbnails of a flagged item's images for the review console, sealed, with the evidence boxes on them.

A reviewer judges an image better from the picture than from the text read in it, but keeping the images
would keep what may be abuse material. So the store keeps, per image, a small JPEG (longest side
THUMBNAIL_SIDE) sealed with VICAS_SECRET_KEY like the item's original text, and the evidence boxes (OCR
words, detector boxes) scaled to it. None is made:

- for an image found in a hash list of known abuse material: it is never kept in any form, the console
  shows the list's name only;
- without a secret key: nothing may be stored unsealed.

The console shows every thumbnail blurred (`blurred`, made on the server, so the image URL never gives the
clear picture); a reviewer unblurs one with one click, and the click is written to the audit log. An image
of an item flagged sexual or violent (`SENSITIVE`) is blurred harder and labelled. Reviewer wellbeing,
as trust-and-safety tools do it: see only what the decision needs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from PIL import Image, ImageFilter

THUMBNAIL_SIDE = 320  # pixels, the longest side
JPEG_QUALITY = 70
# categories whose images are blurred harder and labelled (the issue: "blur by default for sexual and violent
# images"); every other image is blurred too, more lightly, until the reviewer unblurs it
SENSITIVE = ("sexual", "child_sexual", "violence", "self_harm")
BLUR_RADIUS = {True: 18.0, False: 8.0}  # by sensitivity, in thumbnail pixels


class _Evidence(Protocol):
    """An evidence entry as the API's result holds it (vicas.result.EvidenceSpan)."""

    @property
    def category(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def boxes(self) -> Sequence[tuple[int, int, int, int]]: ...


def is_sensitive(severities: Iterable[Mapping[str, int]]) -> bool:
    """Whether any of these severity maps (the item's, the image's own) flags a SENSITIVE category."""
    return any(int(sev.get(c, 0) or 0) > 0 for sev in severities for c in SENSITIVE)


def thumbnail_jpeg(image: Image.Image) -> tuple[bytes, int, int]:
    """The image reduced to THUMBNAIL_SIDE on its longest side (never enlarged), as JPEG bytes, and its size."""
    scale = min(1.0, THUMBNAIL_SIDE / max(image.width, image.height, 1))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small = rgb.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0) if size != rgb.size else rgb
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), size[0], size[1]


def scaled_boxes(
    evidence: Iterable[_Evidence], index: int, source_size: tuple[int, int], thumb_size: tuple[int, int]
) -> list[dict[str, Any]]:
    """Evidence boxes of image `index` (given in the pixels of an image of `source_size`) on the thumbnail."""
    sx = thumb_size[0] / max(1, source_size[0])
    sy = thumb_size[1] / max(1, source_size[1])
    prefix = f"image:{index}:"
    out = []
    for e in evidence:
        if not e.source.startswith(prefix):
            continue
        for left, top, width, height in e.boxes:
            x, y = max(0, round(left * sx)), max(0, round(top * sy))
            w = min(thumb_size[0] - x, max(1, round(width * sx)))
            h = min(thumb_size[1] - y, max(1, round(height * sy)))
            if w > 0 and h > 0:
                out.append({"category": e.category, "source": e.source.removeprefix(prefix), "box": [x, y, w, h]})
    return out


def item_thumbnails(
    images: Sequence[Image.Image],
    sizes: Sequence[tuple[int, int]],
    evidence: Iterable[_Evidence],
    matched: Iterable[int],
    severities: Sequence[Mapping[str, int]],
    item_severities: Mapping[str, int],
    secret: str | None,
) -> list[dict[str, Any]]:
    """What FlaggedItem.images holds: per image not in a hash list, its sealed thumbnail, size, scaled boxes
    and sensitivity. `sizes` are the sizes the readers' boxes refer to, `severities` each image's own
    findings. Nothing without a secret (nothing is stored unsealed)."""
    from serving.review.service import seal_bytes

    if not secret:
        return []
    skip, evidence = set(matched), list(evidence)
    out = []
    for k, image in enumerate(images):
        if k in skip:  # known abuse material: the list's name is all a reviewer sees
            continue
        data, width, height = thumbnail_jpeg(image)
        own = severities[k] if k < len(severities) else {}
        out.append(
            {
                "image": k,
                "width": width,
                "height": height,
                "thumbnail": seal_bytes(data, secret),
                "boxes": scaled_boxes(evidence, k, sizes[k] if k < len(sizes) else image.size, (width, height)),
                "sensitive": is_sensitive([item_severities, own]),
            }
        )
    return out


def blurred(jpeg: bytes, sensitive: bool) -> bytes:
    """The thumbnail as the console first shows it: blurred (harder when sensitive), as JPEG."""
    with Image.open(io.BytesIO(jpeg)) as img:
        soft = img.convert("RGB").filter(ImageFilter.GaussianBlur(BLUR_RADIUS[sensitive]))
    buf = io.BytesIO()
    soft.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
