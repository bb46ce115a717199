"""Hashes of known material: match images against the hash lists hotlines and the police distribute.

Hotlines (IWF, NCMEC) and Meta's Hasher-Matcher-Actioner share lists of hashes of known child sexual
abuse material: MD5 or SHA-256 of the file (exact copies) and PDQ, Meta's perceptual hash, which still
matches after re-encoding, resizing or a small crop. A filter matches against the lists and never needs
the material itself.

- `hash_image` computes an image's hashes: MD5 and SHA-256 of its file bytes, PDQ of its pixels
  (`pdqhash`, Python bindings of Meta's reference C++ PDQ), and PDQ of the picture with its borders
  restored as if a few percent had been cropped off (PDQ alone loses most crops);
- `parse_hash_list` reads a list as an authority sends it (CSV with `hash` and `type` columns, or one hash
  a line), all or nothing: a malformed line is reported with its line number and nothing is imported;
- `HashIndex` holds the lists in memory and matches an image: exact MD5/SHA-256 lookups in a dict, PDQ
  by Hamming distance (XOR and popcount over a numpy array of 4 x uint64 per hash: a few milliseconds for
  hundreds of thousands of hashes);
- `apply_matches` turns a match into the item's verdict: `child_sexual` 3 (band C, block and report),
  evidence `image:N:hash` naming the list and the distance.

The hashes of the lists never leave the service: a result names the list, its version, the hash type and
the distance, not the hash (see `HashMatch`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

import numpy as np
from PIL import Image

from vicas.combine import ImagePart, ImageReading, ItemPrediction, SourcedEvidence

HashType = Literal["pdq", "md5", "sha256"]
HASH_TYPES: tuple[HashType, ...] = ("pdq", "md5", "sha256")
HEX_LENGTH: dict[str, int] = {"pdq": 64, "md5": 32, "sha256": 64}

# Meta's recommended match threshold for PDQ (ThreatExchange, HMA): at most 31 of 256 bits differ
DEFAULT_PDQ_MAX_DISTANCE = 31
# Meta's advice: a PDQ hash of quality below 50 (flat, nearly featureless images) is unreliable; such
# images collide with each other, so they are matched by MD5/SHA-256 only
DEFAULT_PDQ_MIN_QUALITY = 50
# Images larger than this (longer side) are box-reduced by an integer factor before PDQ, to between
# REDUCE_TO and twice that: the reference hashes at full resolution, which costs seconds on a 40-megapixel
# photo; the reduced hash stays within a few bits of the reference (benchmarks/hash_robustness.py)
PDQ_FULL_SIZE_MAX_SIDE = 2048
PDQ_REDUCE_TO = 1024
# PDQ does not survive crops well (2% off each border moves it 30-60 bits on sample photos): an image is
# also hashed with its borders restored as if these fractions had been cropped off each side, edge pixels
# repeated, and matches when any of these hashes is within the distance (benchmarks/hash_robustness.py)
UNCROP_FRACTIONS = (0.015, 0.03, 0.05, 0.075, 0.10)

_HEX = re.compile(r"^[0-9a-f]+$")
T = TypeVar("T")


class HashListError(ValueError):
    """A hash-list file that cannot be imported; the message names each bad line."""


@dataclass(frozen=True)
class ImageHashes:
    """What identifies one image to the hash lists; the image itself is not kept."""

    md5: str | None  # of the file's bytes (None when only the decoded picture is at hand)
    sha256: str | None
    pdq: str | None  # 64 hex digits; None when the image is too small to hash (under 5 pixels a side)
    pdq_quality: int  # 0-100, PDQ's own measure of how much detail the hash rests on
    # PDQ of the image with its borders restored as if UNCROP_FRACTIONS had been cropped off: matched too
    pdq_uncropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class HashMatch:
    """An image found in a hash list. The matched list entry is not part of it: list contents are
    shared with the service under the authority's terms and are not passed on to partners or reviewers."""

    image: int  # the image's index in its item
    list_name: str
    list_version: str
    hash_type: HashType
    distance: int  # Hamming distance of the PDQ hashes; 0 for an exact MD5/SHA-256 match

    def describe(self) -> str:
        how = f"PDQ distance {self.distance}" if self.hash_type == "pdq" else f"exact {self.hash_type.upper()}"
        return f"hash list {self.list_name} (version {self.list_version}): {how}"


def file_digests(data: bytes) -> tuple[str, str]:
    """MD5 and SHA-256 of a file's bytes, lowercase hex."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha256(data).hexdigest()


def _pdq_pixels(image: Image.Image) -> np.ndarray | None:
    """The RGB pixels PDQ reads: large images box-reduced first (see PDQ_FULL_SIZE_MAX_SIDE)."""
    if image.width < 5 or image.height < 5:
        return None
    longer = max(image.size)
    if longer > PDQ_FULL_SIZE_MAX_SIDE:
        image = image.reduce(longer // PDQ_REDUCE_TO)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def _pdq_of(rgb: np.ndarray) -> tuple[str, int]:
    import pdqhash  # the serve extra; a compiled extension, imported only where images are hashed

    bits, quality = pdqhash.compute(rgb)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def pdq_hash(image: Image.Image) -> tuple[str | None, int]:
    """PDQ of a decoded image: 64 lowercase hex digits (Meta's bit order, as ThreatExchange writes it) and
    the quality, 0-100. None (quality 0) for an image under 5 pixels a side, which PDQ does not hash."""
    rgb = _pdq_pixels(image)
    return _pdq_of(rgb) if rgb is not None else (None, 0)


def uncropped(rgb: np.ndarray, fraction: float) -> np.ndarray:
    """The picture as it would be if `fraction` of the original's width and height had been cropped off each
    border: the missing border filled by repeating the edge pixels."""
    h, w = rgb.shape[:2]
    px, py = round(w * fraction / (1 - 2 * fraction)), round(h * fraction / (1 - 2 * fraction))
    return np.pad(rgb, ((py, py), (px, px), (0, 0)), mode="edge")


def hash_image(
    image: Image.Image, digests: tuple[str, str] | None = None, uncrop: tuple[float, ...] = UNCROP_FRACTIONS
) -> ImageHashes:
    """All of an image's hashes: its file's `file_digests` when they are known, its PDQ, and the PDQ of its
    border-restored versions (`uncropped`, for each fraction of `uncrop`)."""
    md5, sha256 = digests if digests is not None else (None, None)
    rgb = _pdq_pixels(image)
    if rgb is None:
        return ImageHashes(md5, sha256, None, 0)
    pdq, quality = _pdq_of(rgb)
    return ImageHashes(md5, sha256, pdq, quality, tuple(_pdq_of(uncropped(rgb, f))[0] for f in uncrop))


def normalise_hash(value: str, hash_type: str) -> str:
    """A list's hash in the stored form (lowercase hex of the type's length); ValueError otherwise."""
    if hash_type not in HEX_LENGTH:
        raise ValueError(f"unknown hash type {hash_type!r} (one of {', '.join(HASH_TYPES)})")
    v = value.strip().lower()
    if v.startswith("0x"):
        v = v[2:]
    if len(v) != HEX_LENGTH[hash_type] or not _HEX.match(v):
        raise ValueError(f"a {hash_type} hash is {HEX_LENGTH[hash_type]} hex digits, got {value.strip()[:80]!r}")
    return v


@dataclass(frozen=True)
class ListEntry:
    hash_type: HashType
    value: str  # normalised: lowercase hex


def _type_of(raw: str, default: str | None) -> str:
    t = raw.strip().lower().replace("-", "") or (default or "")
    if not t:
        raise ValueError("no hash type: give a `type` column value or --type")
    return t


def parse_hash_list(text: str, default_type: str | None = None, max_errors: int = 20) -> list[ListEntry]:
    """The entries of a hash-list file, all or nothing.

    Two forms: CSV with a header row naming at least a `hash` column (and `type`, unless every row has
    the type `default_type`; other columns are ignored), or one hash a line with `default_type` (blank
    lines and lines starting with `#` are skipped). Types: pdq (64 hex digits), md5 (32), sha256 (64).
    A malformed line raises HashListError naming it (line numbers count from 1, the header included),
    so a damaged or misread file is never half imported. Duplicates are dropped.
    """
    if default_type is not None and default_type not in HEX_LENGTH:
        raise HashListError(f"unknown --type {default_type!r} (one of {', '.join(HASH_TYPES)})")
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    header = [c.strip().lower() for c in next(csv.reader([first]), [])]
    errors: list[str] = []
    seen: set[ListEntry] = set()
    out: list[ListEntry] = []

    def add(lineno: int, value: str, raw_type: str) -> None:
        try:
            t = _type_of(raw_type, default_type)
            entry = ListEntry(t, normalise_hash(value, t))  # type: ignore[arg-type]
        except ValueError as e:
            errors.append(f"line {lineno}: {e}")
            return
        if entry not in seen:
            seen.add(entry)
            out.append(entry)

    if "hash" in header:
        if "type" not in header and default_type is None:
            raise HashListError("the CSV header has no `type` column: add one or give --type")
        reader = csv.reader(io.StringIO(text))
        col_hash, col_type = header.index("hash"), header.index("type") if "type" in header else None
        header_seen = False
        for row in reader:
            lineno = reader.line_num
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                continue
            if len(row) <= col_hash or (col_type is not None and len(row) <= col_type):
                errors.append(f"line {lineno}: {len(row)} columns, the header has {len(header)}")
                continue
            add(lineno, row[col_hash], row[col_type] if col_type is not None else "")
    elif "," in first or "\t" in first or ";" in first:
        raise HashListError(
            f"line 1 looks like CSV but its header has no `hash` column: {first[:120]!r} "
            "(a CSV needs a header naming `hash` and `type`; a plain list has one hash a line)"
        )
    else:
        if default_type is None:
            raise HashListError("a plain list (one hash a line) needs --type pdq, md5 or sha256")
        for lineno, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                add(lineno, line, "")
    if errors:
        shown = "; ".join(errors[:max_errors])
        more = f" (and {len(errors) - max_errors} more)" if len(errors) > max_errors else ""
        raise HashListError(f"{len(errors)} malformed lines, nothing imported: {shown}{more}")
    if not out:
        raise HashListError("the file holds no hashes")
    return out


# ---------------------------------------------------------------------------------------------- matching

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 of a 1-d array, as uint8."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: the CPU's popcount
        return np.bitwise_count(words)  # type: ignore[no-any-return]
    return _POPCOUNT8[words.view(np.uint8)].reshape(-1, 8).sum(axis=1, dtype=np.uint8)  # type: ignore[no-any-return]


def pdq_words(hex_hash: str) -> np.ndarray:
    """A PDQ hash as 4 uint64 words (the order is irrelevant to a Hamming distance)."""
    return np.frombuffer(bytes.fromhex(hex_hash), dtype=np.uint64)


def _distances(columns: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance of every hash to `query`; the hashes are the columns of a (4, n) word array, each word
    row contiguous, so each step is one pass over n uint64 (a few milliseconds for 300,000 hashes)."""
    total = np.zeros(columns.shape[1], dtype=np.uint16)
    for k in range(4):
        total += _popcount(columns[k] ^ query[k])
    return total


def pdq_distance(a: str, b: str) -> int:
    return int(_popcount(pdq_words(a) ^ pdq_words(b)).sum())


@dataclass(frozen=True)
class ListInfo:
    name: str
    version: str


@dataclass
class HashIndex:
    """Every loaded list's hashes, in memory: exact hashes in a dict, PDQ hashes in one numpy array.

    A hash in several lists is kept once per list; a match names the first list (in `lists` order) at
    the smallest distance.
    """

    lists: dict[int, ListInfo] = field(default_factory=dict)
    exact: dict[bytes, int] = field(default_factory=dict)  # type tag + digest bytes -> list id
    pdq: np.ndarray = field(default_factory=lambda: np.zeros((4, 0), dtype=np.uint64))  # (4, n): word k of hash i
    pdq_lists: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # list id of hash i

    @classmethod
    def build(cls, lists: dict[int, ListInfo], entries: Iterable[tuple[int, str, str]]) -> HashIndex:
        """From (list id, type, normalised hex value) rows; rows of unknown lists or types are skipped."""
        exact: dict[bytes, int] = {}
        pdq_bytes = bytearray()
        pdq_lists: list[int] = []
        for list_id, hash_type, value in sorted(entries, key=lambda e: e[0]):
            if list_id not in lists:
                continue
            if hash_type == "pdq":
                pdq_bytes += bytes.fromhex(value)
                pdq_lists.append(list_id)
            elif hash_type in ("md5", "sha256"):
                exact.setdefault(hash_type[0].encode() + bytes.fromhex(value), list_id)
        pdq = np.ascontiguousarray(np.frombuffer(bytes(pdq_bytes), dtype=np.uint64).reshape(-1, 4).T)
        return cls(dict(lists), exact, pdq, np.array(pdq_lists, dtype=np.int64))

    @property
    def pdq_count(self) -> int:
        return int(self.pdq.shape[1])

    def __len__(self) -> int:
        return len(self.exact) + self.pdq_count

    @property
    def has_pdq(self) -> bool:
        return self.pdq_count > 0

    def nearest_pdq(self, hex_hash: str) -> tuple[int, int] | None:
        """(list id, distance) of the nearest PDQ hash in the lists; None when there are none."""
        if not self.has_pdq:
            return None
        dist = _distances(self.pdq, pdq_words(hex_hash))
        row = int(np.argmin(dist))  # the first row at the smallest distance: lists in id order
        return int(self.pdq_lists[row]), int(dist[row])

    def match(
        self,
        image: int,
        hashes: ImageHashes,
        max_distance: int = DEFAULT_PDQ_MAX_DISTANCE,
        min_quality: int = DEFAULT_PDQ_MIN_QUALITY,
    ) -> HashMatch | None:
        """The image's match, exact hashes first, then PDQ (its own or a border-restored one's, the nearest)
        within `max_distance` when its quality is at least `min_quality`; None when it is in no list."""
        for hash_type, value in (("sha256", hashes.sha256), ("md5", hashes.md5)):
            if value is not None:
                list_id = self.exact.get(hash_type[0].encode() + bytes.fromhex(value))
                if list_id is not None:
                    info = self.lists[list_id]
                    return HashMatch(image, info.name, info.version, hash_type, 0)  # type: ignore[arg-type]
        if hashes.pdq is not None and hashes.pdq_quality >= min_quality:
            found = [self.nearest_pdq(h) for h in (hashes.pdq, *hashes.pdq_uncropped)]
            best = min((f for f in found if f is not None), key=lambda f: f[1], default=None)
            if best is not None and best[1] <= max_distance:
                info = self.lists[best[0]]
                return HashMatch(image, info.name, info.version, "pdq", best[1])
        return None


def matched_reading(index: int, width: int, height: int) -> ImageReading:
    """What stands for a matched image among the readings: its size and a neutral name, nothing read."""
    return ImageReading(f"image {index + 1}", width, height)


def apply_matches(pred: ItemPrediction, matches: list[HashMatch]) -> ItemPrediction:
    """The item's reading with its matched images: `child_sexual` 3 for the item and for each matched image
    (its only finding: it was not read), evidence `image:N:hash` naming the list and the distance."""
    if not matches:
        return pred
    by_image = {m.image: m for m in matches}
    parts: list[ImagePart] = []
    for part in pred.images:
        if part.index in by_image:
            severities = {**dict.fromkeys(part.severities, 0), "child_sexual": 3}
            part = ImagePart(part.index, part.reading, severities, {"child_sexual": ["hash"]}, None)
        parts.append(part)
    evidence = [e for e in pred.evidence if not any(e.source.startswith(f"image:{i}:") for i in by_image)]
    evidence += [SourcedEvidence("child_sexual", f"image:{m.image}:hash", 1.0, text=m.describe()) for m in matches]
    return replace(
        pred,
        severities={**pred.severities, "child_sexual": 3},
        scores={**pred.scores, "child_sexual": 1.0},
        evidence=evidence,
        images=parts,
    )


@dataclass(frozen=True)
class MatchSettings:
    """How images are matched against the lists; the API's settings (VICAS_PDQ_*) fill it, the CLI and bulk
    scoring use the same defaults."""

    max_distance: int = DEFAULT_PDQ_MAX_DISTANCE
    min_quality: int = DEFAULT_PDQ_MIN_QUALITY
    uncrop: bool = True


def match_images(
    index: HashIndex,
    images: list[Image.Image],
    digests: list[tuple[str, str] | None],
    settings: MatchSettings = MatchSettings(),
) -> tuple[list[ImageHashes], list[HashMatch]]:
    """Every image's hashes and its match in the lists, before any model reads the image (nothing to do while
    no list is loaded). The API, `vicas classify` and bulk scoring all match this way; a matched image is then
    never read (`unmatched`)."""
    if not images or not len(index):
        return [], []
    uncrop = UNCROP_FRACTIONS if settings.uncrop else ()
    hashes = [hash_image(image, d, uncrop) for image, d in zip(images, digests, strict=True)]
    found = [index.match(k, h, settings.max_distance, settings.min_quality) for k, h in enumerate(hashes)]
    return hashes, [m for m in found if m is not None]


def unmatched_readings(
    read: Callable[[list[T]], list[ImageReading]],
    images: list[T],
    sizes: list[tuple[int, int]],
    matches: list[HashMatch],
) -> list[ImageReading]:
    """The readings of an item's images in order, `read` called on the unmatched ones only: a matched image
    stands as its size and a neutral name (`matched_reading`); no model, OCR or detector sees it."""
    matched = {m.image for m in matches}
    todo = [img for k, img in enumerate(images) if k not in matched]
    done = iter(read(todo) if todo else [])
    return [matched_reading(k, *sizes[k]) if k in matched else next(done) for k in range(len(images))]
