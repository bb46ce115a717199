"""Read a labelled image set: a `labels.csv` manifest or a folder-per-label layout.

Two formats (data_cards/generated_images.md documents them for users):

1. CSV: header `path,split,sexual,violence,substances,gambling,self_harm,dangerous_acts`;
   `path` is relative to the CSV's folder, `split` is train/dev/test, each category
   cell is a severity 0-3 or empty (not annotated). Category columns may be left out
   (then not annotated for every row); any other column is an error.
2. Folders: `root/<split>/<category>__<severity>/*.jpg|png` and `root/<split>/clean/*`.
   `clean` sets every visual category to 0; `<category>__<severity>` sets that one
   category and leaves the others unknown; `a__2+b__1` sets several.

Validation is strict: a malformed row stops the read with a ValueError naming it,
so a bad label never reaches training silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from vicas.taxonomy import check_severity
from vicas.visual_categories import VISUAL_CATEGORIES

SPLITS: tuple[str, ...] = ("train", "dev", "test")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})
MANIFEST_NAME = "labels.csv"
CSV_HEADER: tuple[str, ...] = ("path", "split", *VISUAL_CATEGORIES)
CLEAN_FOLDER = "clean"


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    split: str
    severities: dict[str, int | None]  # every visual category; None = not annotated


def read_image_manifest(csv_path: str | Path) -> list[ImageRecord]:
    """Read a labels CSV, or a folder holding `labels.csv`, or a folder in the split/label layout."""
    path = Path(csv_path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return _read_csv(path / MANIFEST_NAME)
        return read_image_folder(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such manifest file or image folder")
    return _read_csv(path)


def _parse_severity(cell: str, category: str, where: str) -> int | None:
    cell = cell.strip()
    if cell == "":
        return None
    if not cell.isdigit():
        raise ValueError(f"{where}: {category} severity must be 0-3 or empty, got {cell!r}")
    try:
        return check_severity(category, int(cell))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e


def _check_image(path: Path, where: str) -> None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{where}: {path.name} is not a .jpg, .jpeg or .png file")
    if not path.is_file():
        raise ValueError(f"{where}: image file {path} does not exist")


def _read_csv(csv_path: Path) -> list[ImageRecord]:
    root = csv_path.parent
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{csv_path}: empty file; expected the header {','.join(CSV_HEADER)}")
    header = [h.strip() for h in rows[0]]
    unknown = [h for h in header if h not in CSV_HEADER]
    if unknown:
        raise ValueError(f"{csv_path}: unknown column(s) {unknown}; allowed: {', '.join(CSV_HEADER)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValueError(f"{csv_path}: repeated column(s) {dupes}")
    if "path" not in header or "split" not in header:
        raise ValueError(f"{csv_path}: the header needs 'path' and 'split' columns")
    cats = [c for c in VISUAL_CATEGORIES if c in header]
    if not cats:
        raise ValueError(f"{csv_path}: no category column; expected some of {', '.join(VISUAL_CATEGORIES)}")

    records: list[ImageRecord] = []
    seen: set[str] = set()
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line, e.g. at the end of a hand-edited file
        where = f"{csv_path}, line {line_no}"
        if len(row) != len(header):
            raise ValueError(f"{where}: {len(row)} cells for {len(header)} columns")
        cell = dict(zip(header, row, strict=True))
        rel = cell["path"].strip()
        where = f"{where} ({rel or 'no path'})"
        if not rel:
            raise ValueError(f"{where}: empty path")
        if Path(rel).is_absolute():
            raise ValueError(f"{where}: path must be relative to the CSV's folder")
        if rel in seen:
            raise ValueError(f"{where}: the same image is listed twice")
        seen.add(rel)
        split = cell["split"].strip()
        if split not in SPLITS:
            raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}, got {split!r}")
        severities: dict[str, int | None] = dict.fromkeys(VISUAL_CATEGORIES)
        for c in cats:
            severities[c] = _parse_severity(cell[c], c, where)
        if all(v is None for v in severities.values()):
            raise ValueError(f"{where}: no category is annotated (all cells empty)")
        image = root / rel
        _check_image(image, where)
        records.append(ImageRecord(image, split, severities))
    if not records:
        raise ValueError(f"{csv_path}: no rows after the header")
    return records


def _folder_labels(folder: Path) -> dict[str, int | None]:
    """Severities a label folder's name stands for ('clean', 'violence__2', 'gambling__2+substances__1')."""
    if folder.name == CLEAN_FOLDER:
        return dict.fromkeys(VISUAL_CATEGORIES, 0)
    severities: dict[str, int | None] = dict.fromkeys(VISUAL_CATEGORIES)
    for part in folder.name.split("+"):
        cat, sep, sev = part.partition("__")
        if not sep or cat not in VISUAL_CATEGORIES:
            raise ValueError(
                f"{folder}: label folders are 'clean' or '<category>__<severity>' (joined by '+'), "
                f"with a category among {', '.join(VISUAL_CATEGORIES)}"
            )
        if severities[cat] is not None:
            raise ValueError(f"{folder}: {cat} appears twice in the folder name")
        severities[cat] = _parse_severity(sev, cat, str(folder)) if sev.strip() else None
        if severities[cat] is None:
            raise ValueError(f"{folder}: {cat} has no severity after '__'")
    return severities


def read_image_folder(root: str | Path) -> list[ImageRecord]:
    """Read `root/<split>/<label folder>/<image>`; files are listed in sorted order (reproducible)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    records: list[ImageRecord] = []
    for split_dir in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not split_dir.is_dir():
            continue  # a README or a stray file beside the splits
        if split_dir.name not in SPLITS:
            raise ValueError(f"{split_dir}: folder is not a split; expected {', '.join(SPLITS)}")
        for label_dir in sorted(p for p in split_dir.iterdir() if not p.name.startswith(".")):
            if not label_dir.is_dir():
                raise ValueError(f"{label_dir}: images go in a label folder ('clean' or '<category>__<severity>')")
            severities = _folder_labels(label_dir)
            for image in sorted(p for p in label_dir.iterdir() if not p.name.startswith(".")):
                _check_image(image, str(label_dir))
                records.append(ImageRecord(image, split_dir.name, dict(severities)))
    if not records:
        raise ValueError(f"{root}: no labels.csv and no images in the <split>/<label>/ layout")
    return records
