"""The `evaluate_ocr` stage end to end on a few texts, with the real Tesseract and the tiny text model."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.images import ocr_eval
from vicas.engine import TextEngine
from vicas.ocr import engine_name

pytestmark = pytest.mark.slow

TEXTS = [
    "Nạp 50k nhận 100k tài xỉu uy tín, ib mình ngay",
    "hôm nay cả nhà đi công viên chơi vui lắm",
    "vào link này nhận 9999 kim cương miễn phí nhập mật khẩu",
    "mình không muốn sống nữa, mệt mỏi lắm rồi 😢",
    "Công an triệt phá đường dây đánh bạc qua mạng, thu giữ nhiều tang vật. " * 3,
    "mai được nghỉ học rồi yeah",
]


def _params(tmp_path: Path, **over: Any) -> Path:
    section = {"n_texts": 6, "seed": 3, "sizes": [24, 32], "rotations": [0.0, 3.0], **over}
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"evaluate_ocr": section}, allow_unicode=True), encoding="utf-8")
    return p


def _texts(tmp_path: Path) -> Path:
    f = tmp_path / "texts.jsonl"
    f.write_text(
        "".join(json.dumps({"id": f"t{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(TEXTS))
    )
    return f


def test_evaluation_writes_metrics_plots_and_verdicts(tesseract, tiny_pipeline, tmp_path):
    metrics, plots = tmp_path / "ocr_eval.json", tmp_path / "plots"
    argv = [
        "--params",
        str(_params(tmp_path)),
        "--texts",
        str(_texts(tmp_path)),
        "--model",
        str(tiny_pipeline["model"]),
    ]
    ocr_eval.main([*argv, "--metrics", str(metrics), "--plots", str(plots), "--no-progress"])
    m = json.loads(metrics.read_text())
    assert m["images"] == 6
    assert m["engine"] == engine_name()  # the engine that set the seconds
    assert 0 <= m["cer"] <= 1 and 0 <= m["wer"] <= 1
    assert m["cer"] < 0.3  # large, clear text: a broken OCR path would be near 1
    assert set(m["by_condition"]) >= {"font", "size", "style", "rotation", "jpeg", "noise"}
    assert all(0 <= v <= 1 for levels in m["by_condition"].values() for v in levels.values())
    t = m["seconds_per_image"]
    assert 0 < t["p50"] <= t["p95"] and t["per_megapixel"] > 0
    v = m["verdict"]
    assert v["model_version"] == TextEngine(tiny_pipeline["model"]).version
    for key in ("band_agreement", "flagged_agreement", "under_rating_rate", "over_rating_rate"):
        assert 0 <= v[key] <= 1
    assert v["images"] == 6
    rows = list(csv.DictReader((plots / "cer_by_condition.csv").open(encoding="utf-8")))
    assert {r["factor"] for r in rows} >= {"font", "style", "rotation"}
    images = list(csv.DictReader((plots / "images.csv").open(encoding="utf-8")))
    assert len(images) == 6 and all(r["text_band"] and r["image_band"] for r in images)
    assert all("😢" not in r["reference"] for r in images)  # emoji cannot be drawn, so it is not asked for
    assert (plots / "cer_by_condition.png").stat().st_size > 10_000


def test_without_a_model_verdicts_are_skipped(tesseract, tmp_path):
    metrics = tmp_path / "m.json"
    argv = ["--params", str(_params(tmp_path, styles=["plain"])), "--texts", str(_texts(tmp_path))]
    ocr_eval.main(
        [
            *argv,
            "--model",
            str(tmp_path / "none"),
            "--metrics",
            str(metrics),
            "--plots",
            str(tmp_path / "p"),
            "--limit",
            "2",
            "--no-progress",
        ]
    )
    m = json.loads(metrics.read_text())
    assert m["images"] == 2 and "verdict" not in m


def test_the_engine_is_a_param_and_is_reported(tesseract, tmp_path):
    metrics = tmp_path / "m.json"
    params = _params(tmp_path, styles=["plain"], ocr={"engine": "pytesseract"})
    argv = ["--params", str(params), "--texts", str(_texts(tmp_path)), "--model", str(tmp_path / "none")]
    ocr_eval.main([*argv, "--metrics", str(metrics), "--plots", str(tmp_path / "p"), "--limit", "1", "--no-progress"])
    assert json.loads(metrics.read_text())["engine"] == "pytesseract"


@pytest.mark.skipif(importlib.util.find_spec("tesserocr") is None, reason="tesserocr is not installed")
def test_engine_benchmark_reads_the_same_images_with_each_variant(tesseract, tmp_path):
    from benchmarks import ocr_engines

    out, rows = tmp_path / "engines.json", tmp_path / "per_image.csv"
    argv = ["--params", str(_params(tmp_path, styles=["plain"])), "--texts", str(_texts(tmp_path)), "--n", "2"]
    variants = ["--variant", "a=tesserocr", "--variant", 'b=pytesseract:{"min_text_height_px": 0}']
    ocr_engines.main([*argv, "--repeats", "2", *variants, "--out", str(out), "--per-image", str(rows)])
    report = json.loads(out.read_text())
    assert report["images"] == 2 and report["repeats"] == 2
    a, b = report["variants"]["a"], report["variants"]["b"]
    assert (a["engine"], b["engine"]) == ("tesserocr", "pytesseract")
    assert b["overrides"] == {"min_text_height_px": 0, "engine": "pytesseract"}
    assert a["images"] == b["images"] == 2 and a["cer"] < 0.3 and b["cer"] < 0.3
    assert a["seconds_p50"] > 0 and b["seconds_p50"] > 0 and 0 <= b["same_text_as_a"] <= 1
    per_image = list(csv.DictReader(rows.open(encoding="utf-8")))
    assert [r["variant"] for r in per_image] == ["a", "a", "b", "b"]
    assert [r["id"] for r in per_image[:2]] == [r["id"] for r in per_image[2:]]  # the same images


def test_missing_prepared_data_says_what_to_do(tesseract, tmp_path):
    with pytest.raises(SystemExit, match="--texts"):
        ocr_eval.main(["--params", str(_params(tmp_path)), "--data", str(tmp_path / "nope")])


def test_bad_params_name_the_key(tmp_path):
    with pytest.raises(SystemExit, match=r"evaluate_ocr\.ocr\.psm"):
        ocr_eval.main(["--params", str(_params(tmp_path, ocr={"psm": 0}))])


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        ocr_eval.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--texts" in out and "--model" in out and "evaluate_ocr" in out
