"""The generated image set (training.images.synth) and the image manifest reader (training.images.manifest)."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from training.images import synth as image_synth
from training.images.manifest import CSV_HEADER, read_image_folder, read_image_manifest
from vicas.visual_categories import VISUAL_CATEGORIES

PARAMS = """image_data:
  n_train: 12
  n_dev: 6
  n_test: 6
  size: 64
  seed: 5
"""


def _generate(root: Path, out: str) -> Path:
    params = root / "params.yaml"
    params.write_text(PARAMS, encoding="utf-8")
    image_synth.main(["--params", str(params), "--out", str(root / out), "--stats", str(root / f"{out}.md")])
    return root / out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("images"), "a")


def test_generated_set_reads_back_consistently(generated: Path) -> None:
    records = read_image_manifest(generated / "labels.csv")
    assert Counter(r.split for r in records) == {"train": 12, "dev": 6, "test": 6}
    on_disk = sorted(p for p in (generated / "images").rglob("*") if p.is_file())
    assert sorted(r.path for r in records) == on_disk
    for r in records:
        assert r.path.parent.name == r.split
        assert set(r.severities) == set(VISUAL_CATEGORIES)
        assert all(v in (0, 1, 2, 3) for v in r.severities.values())  # every category is annotated
        with Image.open(r.path) as im:
            assert (im.format, im.size) == ("JPEG", (64, 64))
    # reading the folder (it holds labels.csv) gives the same records
    assert read_image_manifest(generated) == records

    for cat in VISUAL_CATEGORIES:
        assert any((r.severities[cat] or 0) >= 1 for r in records), f"no {cat} positive"
    with (generated / "generation_meta.csv").open(encoding="utf-8") as f:
        kinds = {row["path"]: row["kind"] for row in csv.DictReader(f)}
    by_path = {r.path.relative_to(generated).as_posix(): r for r in records}
    assert set(kinds) == set(by_path)
    negatives = [p for p, k in kinds.items() if k in ("hard_negative", "clean")]
    assert any(kinds[p] == "hard_negative" for p in negatives)
    for p, kind in kinds.items():
        shown = sum((v or 0) > 0 for v in by_path[p].severities.values())
        assert (shown == 0) == (kind in ("hard_negative", "clean")), p
        assert (shown > 1) == (kind == "multi_label"), p
    stats = (generated.parent / "a.md").read_text(encoding="utf-8")
    assert "| hard negative |" in stats and "| gambling | 3 |" in stats


def test_same_seed_gives_identical_files(generated: Path, tmp_path: Path) -> None:
    again = _generate(tmp_path, "b")
    assert (again / "labels.csv").read_bytes() == (generated / "labels.csv").read_bytes()
    for p in sorted((generated / "images").rglob("*.jpg")):
        assert (again / p.relative_to(generated)).read_bytes() == p.read_bytes(), p.name


def test_another_seed_draws_other_pictures() -> None:
    spec = image_synth.ItemSpec("train", 0, "positive", "gambling", 2)
    a = image_synth.render(spec, image_synth.ImageDataConfig(size=64, seed=1)).image
    b = image_synth.render(spec, image_synth.ImageDataConfig(size=64, seed=2)).image
    assert a.tobytes() != b.tobytes()


def test_every_painter_returns_the_labels_it_is_registered_for() -> None:
    cells = {(c, s) for c in VISUAL_CATEGORIES for s in (1, 2, 3)}
    assert set(image_synth.POSITIVE) == cells
    box = image_synth.Box(3, 3, 61, 61)
    for (cat, sev), painters in image_synth.POSITIVE.items():
        for fn in painters:
            sc = image_synth.Scene(64, random.Random(fn.__name__))
            labels = fn(sc, box)
            assert labels.get(cat) == sev, fn.__name__
            assert set(labels) <= set(VISUAL_CATEGORIES), fn.__name__
    assert len(image_synth.HARD_NEGATIVE) >= 10
    for fn in image_synth.HARD_NEGATIVE + image_synth.CLEAN:
        assert fn(image_synth.Scene(64, random.Random(fn.__name__)), box) == {}, fn.__name__


def test_sexual_scenes_never_share_a_picture_with_child_cues() -> None:
    painters = (
        [fn for fns in image_synth.POSITIVE.values() for fn in fns] + image_synth.HARD_NEGATIVE + image_synth.CLEAN
    )
    assert image_synth.CHILD_CUES.issubset(fn.__name__ for fn in painters)
    cfg = image_synth.ImageDataConfig(size=32, seed=3)
    for i in range(60):
        second = "negative" if i % 2 else "dangerous_acts"  # dangerous_acts 1 includes a child-news scene
        spec = image_synth.ItemSpec("train", i, "positive", "sexual", 1 + i % 3, second)
        scenes = image_synth.render(spec, cfg).scenes
        assert len(scenes) == 2 and not set(scenes) & image_synth.CHILD_CUES, scenes


def test_config_rejects_a_bad_quality_range(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("image_data:\n  jpeg_quality_range: [90, 40]\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="jpeg_quality_range"):
        image_synth.main(["--params", str(params), "--out", str(tmp_path / "out")])


# --- the reader's checks ---------------------------------------------------------------------------------------------


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)


def _csv(root: Path, header: list[str], rows: list[list[str]]) -> Path:
    _image(root / "images" / "a.jpg")
    _image(root / "images" / "b.png")
    path = root / "labels.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


GOOD = ["images/a.jpg", "train", "0", "2", "", "0", "0", "1"]


def test_reader_accepts_empty_cells_and_missing_category_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, list(CSV_HEADER), [GOOD, ["images/b.png", "dev", "", "", "3", "", "", ""]])
    a, b = read_image_manifest(path)
    assert a.path == tmp_path / "images" / "a.jpg" and a.split == "train"
    assert a.severities == {
        "sexual": 0,
        "violence": 2,
        "substances": None,
        "gambling": 0,
        "self_harm": 0,
        "dangerous_acts": 1,
    }
    assert b.severities["substances"] == 3 and b.severities["sexual"] is None
    (only,) = read_image_manifest(
        _csv(tmp_path / "narrow", ["path", "split", "violence"], [["images/a.jpg", "test", "1"]])
    )
    assert only.severities["violence"] == 1 and only.severities["gambling"] is None


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ([*CSV_HEADER, "note"], [*GOOD, "x"], "unknown column"),
        (list(CSV_HEADER), ["images/a.jpg", "train", "0", "4", "", "0", "0", "1"], "line 2.*severity 4"),
        (list(CSV_HEADER), ["images/a.jpg", "train", "0", "x", "", "0", "0", "1"], "line 2.*violence severity"),
        (list(CSV_HEADER), ["images/a.jpg", "train", "0", "-1", "", "0", "0", "1"], "line 2.*violence severity"),
        (list(CSV_HEADER), ["images/missing.jpg", "train", "0", "0", "0", "0", "0", "0"], "line 2.*does not exist"),
        (list(CSV_HEADER), ["images/a.jpg", "validation", "0", "0", "0", "0", "0", "0"], "line 2.*split"),
        (list(CSV_HEADER), ["images/a.jpg", "train", "0", "0"], "line 2: 4 cells"),
        (list(CSV_HEADER), ["images/a.jpg", "train", "", "", "", "", "", ""], "line 2.*no category is annotated"),
        (list(CSV_HEADER), ["/tmp/a.jpg", "train", "0", "0", "0", "0", "0", "0"], "line 2.*relative"),
        (["path", "split", "violence", "violence"], ["images/a.jpg", "train", "1", "1"], "repeated column"),
        (["path", "violence"], ["images/a.jpg", "1"], "'path' and 'split'"),
    ],
)
def test_reader_refuses_malformed_csv(tmp_path: Path, header: list[str], row: list[str], message: str) -> None:
    path = _csv(tmp_path, header, [row])
    with pytest.raises(ValueError, match=message):
        read_image_manifest(path)


def test_reader_refuses_a_repeated_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"line 3 \(images/a.jpg\).*twice"):
        read_image_manifest(_csv(tmp_path, list(CSV_HEADER), [GOOD, GOOD]))


def test_reader_reads_the_folder_layout(tmp_path: Path) -> None:
    _image(tmp_path / "train" / "violence__2" / "x.jpg")
    _image(tmp_path / "train" / "clean" / "y.png")
    _image(tmp_path / "dev" / "gambling__2+substances__1" / "z.JPG")
    (tmp_path / "README.txt").write_text("ignored", encoding="utf-8")
    records = {r.path.name: r for r in read_image_manifest(tmp_path)}
    assert set(records) == {"x.jpg", "y.png", "z.JPG"}
    assert records["x.jpg"].split == "train"
    assert records["x.jpg"].severities["violence"] == 2 and records["x.jpg"].severities["sexual"] is None
    assert records["y.png"].severities == dict.fromkeys(VISUAL_CATEGORIES, 0)
    z = records["z.JPG"].severities
    assert (z["gambling"], z["substances"], z["violence"]) == (2, 1, None)


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("train/violence_2/x.jpg", "label folders"),
        ("train/weapons__2/x.jpg", "label folders"),
        ("train/violence__5/x.jpg", "severity 5"),
        ("validation/clean/x.jpg", "not a split"),
        ("train/clean/x.gif", "not a .jpg"),
    ],
)
def test_reader_refuses_a_bad_folder_layout(tmp_path: Path, folder: str, message: str) -> None:
    _image(tmp_path / folder)
    with pytest.raises(ValueError, match=message):
        read_image_folder(tmp_path)
