"""Shared fixtures: a tiny, invented copy of every data source's file layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def make_source_dir(root: Path) -> Path:
    """Invented rows in the mirror's exact formats (no dataset content is copied)."""
    src = root / "datasets"
    _csv(
        src / "vihsd/train.csv",
        ["free_text", "label_id"],
        [
            ["bài hát hay quá", 0],
            ["đm cái game lag vl", 1],
            ["thằng kia ngu như bò", 2],
            ["bài hát hay quá", 0],
            ["", 0],
            ["trùng với dev nè", 0],
        ],
    )
    _csv(src / "vihsd/dev.csv", ["free_text", "label_id"], [["trùng với dev nè", 0], ["con này xấu vãi", 2]])
    cols = ["Unnamed: 0", "Comment", "Constructiveness", "Toxicity", "Title", "Topic"]
    _csv(
        src / "victsd/ViCTSD_train.csv",
        cols,
        [[1, "bài viết rất hữu ích", 1, 0, "t", "SucKhoe"], [2, "lũ ăn hại", 0, 1, "t", "TheGioi"]],
    )
    _csv(src / "victsd/ViCTSD_valid.csv", cols, [[3, "cảm ơn tác giả", 1, 0, "t", "SucKhoe"]])
    _csv(
        src / "vihos/train.csv",
        ["Unnamed: 0", "content", "index_spans"],
        [
            [0, "nói gì tào lao", "[7, 8, 9, 10, 11, 12, 13]"],
            [1, "dễ thương ghê", "[]"],
        ],
    )
    _csv(src / "vihos/dev.csv", ["Unnamed: 0", "content", "index_spans"], [[2, "đồ điên", "[0, 1, 2, 3, 4, 5, 6]"]])
    vcols = ["Unnamed: 0", "content", "individual", "groups", "religion/creed", "race/ethnicity", "politics"]
    _csv(
        src / "vithsd/train.csv",
        vcols,
        [[0, "bọn miền đó toàn lừa đảo", 0, 3, 0, 0, 0], [1, "anh này nói đúng", 1, 0, 0, 0, 0]],
    )
    _csv(src / "vithsd/dev.csv", vcols, [[2, "con mụ đó mất dạy", 2, 0, 0, 0, 0]])
    scols = ["Rating", "Comment", "Label", "SpamLabel"]
    _csv(src / "vispamreviews/train.csv", scols, [[5, "hàng đẹp giao nhanh", 0, 0], [1, "ib shop em giá rẻ", 1, 3]])
    _csv(src / "vispamreviews/dev.csv", scols, [[4, "vải mỏng nhưng ổn", 0, 0]])
    mcols = ["content", "label", "has_url", "has_phone_number", "sender_type"]
    rows: list[list[object]] = [
        [f"TK cua ban bi khoa, xac minh tai http://vn-bank{i}.xyz", 1, 1, 0, "personal_number"] for i in range(4)
    ]
    rows += [[f"Viettel tang {i}0% the nap hom nay", 0, 0, 0, "brandname"] for i in range(1, 9)]
    _csv(src / "smishing/train.csv", mcols, rows)
    return src


OWN_ITEMS = [
    {"id": "t-1", "text": "nạp 50k nhận 100k tài xỉu uy tín, link ở bio", "labels": {"gambling": 3}},
    {"id": "t-2", "text": "Công an triệt phá đường dây đánh bạc qua mạng", "labels": {"gambling": 1}},
    {
        "id": "t-3",
        "text": "em học lớp mấy, gửi anh ảnh nhé, đừng kể với mẹ",
        "labels": {"child_sexual": 3, "sexual": 1},
    },
    {"id": "t-4", "text": "hôm nay cả nhà đi công viên chơi vui lắm", "labels": {}},
    {"id": "t-5", "text": "chán sống quá không ai hiểu mình", "labels": {"self_harm": 2}},
    {"id": "t-6", "text": "bé Na lớp 3A trường Hoa Sen nhà ở ngõ 12", "labels": {"personal_data": 3}},
    {"id": "t-7", "text": "mai được nghỉ học rồi yeah", "labels": {}},
    {"id": "t-8", "text": "tặng 9999 kim cương free fire, nhập tài khoản mật khẩu", "labels": {"scam": 3}},
]


def make_own_dir(root: Path, items: list[dict[str, object]] | None = None) -> Path:
    own = root / "own"
    own.mkdir(parents=True, exist_ok=True)
    with (own / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for it in items if items is not None else OWN_ITEMS:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    return own


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    return make_source_dir(tmp_path)


@pytest.fixture
def own_dir(tmp_path: Path) -> Path:
    return make_own_dir(tmp_path)


@pytest.fixture
def params_file(tmp_path: Path, source_dir: Path, own_dir: Path) -> Path:
    params = {
        "ingest": {
            "source_dir": str(source_dir),
            "sources": ["vihsd", "victsd", "vihos", "vithsd", "vispamreviews", "smishing"],
            "own_dir": str(own_dir),
            "reviewed_dir": str(tmp_path / "reviewed"),
            "smishing_dev_fraction": 0.25,
            "seed": 13,
        },
        "prepare": {"near_dup_threshold": 0.9, "own_split": {"train": 0.5, "dev": 0.25, "test": 0.25}, "seed": 13},
    }
    import yaml

    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """ingest -> prepare -> train -> baseline -> export on invented data with a tiny encoder (seconds)."""
    from tests.tiny_model import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_image_pipeline(tmp_path_factory):
    """image_data -> train_image -> export_image on a few generated 64-pixel images (EfficientNet-Lite0, 1 epoch)."""
    from tests.tiny_model import build_tiny_image_pipeline

    return build_tiny_image_pipeline(tmp_path_factory.mktemp("tiny_image"))


@pytest.fixture(scope="session")
def tesseract() -> None:
    """Real Tesseract with Vietnamese data; skipped without it, a failure when VICAS_REQUIRE_TESSERACT=1 (CI)."""
    import os

    from vicas.ocr import ocr_available

    if ocr_available():
        return
    reason = "tesseract with Vietnamese data is not installed (apt-get install tesseract-ocr tesseract-ocr-vie)"
    if os.environ.get("VICAS_REQUIRE_TESSERACT") == "1":
        pytest.fail(f"VICAS_REQUIRE_TESSERACT=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_conversations(tmp_path_factory):
    """The conversation model trained on 80 invented conversations (a second)."""
    from tests.tiny_model import build_tiny_conversations

    return build_tiny_conversations(tmp_path_factory.mktemp("tiny_conversations"))
