"""Fetch the public datasets from their origins into `ingest.source_dir`, in the layout the adapters read.

For machines with internet (`python -m training.data.ingest --download`); the project's own machines read the
mirror in ../shared/datasets instead. Each source is pinned to the commit its data card names. Test
splits are fetched only to remove their texts from every train and dev file (ViHOS and ViTHSD reuse
ViHSD comments), then deleted: the project never trains or tunes on a test split.

The origins' archive layouts were not reachable from the project's machines when this was written;
the converters look members up by name (`*train*.csv`, ...) rather than by fixed paths, and a changed
layout stops with a message naming what was found.
"""

from __future__ import annotations

import csv
import io
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vicas.normalize import normalize_text

SPLITS = ("train", "dev", "test")


class DownloadError(RuntimeError):
    """A source could not be fetched or converted; the message says what to do instead."""


@dataclass(frozen=True)
class Origin:
    folder: str  # subfolder of source_dir
    files: dict[str, str]  # split -> URL (or one archive URL under the key "archive")
    text_column: str
    names: dict[str, str] = field(default_factory=dict)  # split -> file name the adapter reads
    kind: str = "csv"  # csv | zip | xlsx


GITHUB = "https://github.com"
ORIGINS: dict[str, Origin] = {
    "vihsd": Origin(
        "vihsd", {"archive": f"{GITHUB}/sonlam1102/vihsd/raw/826ef5e/data/vihsd.zip"}, "free_text", kind="zip"
    ),
    "vispamreviews": Origin(
        "vispamreviews",
        {"archive": f"{GITHUB}/sonlam1102/vispamdetection/raw/e5ee5ef/dataset/vispamdetection_dataset.zip"},
        "Comment",
        kind="zip",
    ),
    "vithsd": Origin(
        "vithsd", {s: f"{GITHUB}/bakansm/ViTHSD/raw/df827a3/data/{s}.xlsx" for s in SPLITS}, "content", kind="xlsx"
    ),
    "vihos": Origin(
        "vihos",
        {
            "train": f"{GITHUB}/phusroyal/ViHOS/raw/fe31c4b/data/Span_Extraction_based_version/train.csv",
            "dev": f"{GITHUB}/phusroyal/ViHOS/raw/fe31c4b/data/Span_Extraction_based_version/dev.csv",
            "test": f"{GITHUB}/phusroyal/ViHOS/raw/fe31c4b/data/Test_data/test.csv",
        },
        "content",
    ),
}
# ViCTSD is published on the Hugging Face hub (tarudesu/ViCTSD), not GitHub, and the smishing set's
# origin holds one file without a split: both are read from a mirror folder only.
NOT_DOWNLOADABLE = {
    "victsd": "ViCTSD is on the Hugging Face hub (tarudesu/ViCTSD): export its train/validation splits to "
    "victsd/ViCTSD_train.csv and victsd/ViCTSD_valid.csv in source_dir",
    "smishing": "the smishing origin (duynguyenhoang22/IE403_DoAnCuoiKy) has one dataset.csv without splits: "
    "place a train.csv with its columns in smishing/ in source_dir",
}


def _get(url: str, timeout: float = 60) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bytes(r.read())
    except OSError as e:
        raise DownloadError(f"cannot fetch {url}: {e}") from e


def _rows_from_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _rows_from_xlsx(data: bytes) -> list[dict[str, str]]:
    import pandas as pd

    try:
        frame = pd.read_excel(io.BytesIO(data))
    except ImportError as e:
        raise DownloadError("reading .xlsx needs openpyxl: pip install openpyxl") from e
    return [{str(k): ("" if v != v else str(v)) for k, v in r.items()} for r in frame.to_dict("records")]


def _split_of(member: str) -> str | None:
    low = Path(member).name.lower()
    if not low.endswith(".csv"):
        return None
    for split, words in (("train", ("train",)), ("dev", ("dev", "valid", "val")), ("test", ("test",))):
        if any(w in low for w in words):
            return split
    return None


def fetch_rows(origin: Origin) -> dict[str, list[dict[str, str]]]:
    """split -> rows (dicts with the origin's columns)."""
    out: dict[str, list[dict[str, str]]] = {}
    if origin.kind == "zip":
        archive = zipfile.ZipFile(io.BytesIO(_get(origin.files["archive"])))
        for member in archive.namelist():
            split = _split_of(member)
            if split and split not in out:
                out[split] = _rows_from_csv(archive.read(member))
        missing = [s for s in SPLITS if s not in out]
        if missing:
            raise DownloadError(f"{origin.files['archive']}: no {missing} CSV among {archive.namelist()}")
        return out
    read: Callable[[bytes], list[dict[str, str]]] = _rows_from_xlsx if origin.kind == "xlsx" else _rows_from_csv
    return {split: read(_get(url)) for split, url in origin.files.items()}


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0]) if rows else []
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def download(source_dir: Path, sources: list[str], origins: dict[str, Origin] | None = None) -> dict[str, int]:
    """Fetch each source, drop every row whose text is in any fetched test split, write train/dev files."""
    origins = origins if origins is not None else ORIGINS
    blocked = [s for s in sources if s in NOT_DOWNLOADABLE]
    fetched: dict[str, dict[str, list[dict[str, str]]]] = {}
    for name in sources:
        if name in origins:
            fetched[name] = fetch_rows(origins[name])
    test_texts = {
        normalize_text(r.get(origins[n].text_column, "") or "")
        for n, splits in fetched.items()
        for r in splits.get("test", [])
    }
    written: dict[str, int] = {}
    for name, splits in fetched.items():
        origin = origins[name]
        for split in ("train", "dev"):
            rows = [
                r
                for r in splits.get(split, [])
                if normalize_text(r.get(origin.text_column, "") or "") not in test_texts
            ]
            _write_csv(source_dir / origin.folder / origin.names.get(split, f"{split}.csv"), rows)
            written[f"{name}/{split}"] = len(rows)
    for name in blocked:
        if not (source_dir / name).exists():
            raise DownloadError(f"{name}: {NOT_DOWNLOADABLE[name]}")
    return written
