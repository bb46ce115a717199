"""Image throughput: the served ONNX int8 visual model against the trained PyTorch fp32 model, and OCR cost.

Same images, same machine, one run. The PyTorch side is what a user of the
trained checkpoint would write: the model in fp32 under `inference_mode`, batches
of 16 preprocessed by `vicas.visual.preprocess`. Both sides include preprocessing.
OCR is timed separately (Tesseract through `vicas.ocr.read_text`, one image at a
time, as the API runs it), on the test images and on rendered Vietnamese text.

    python benchmarks/image_speed.py --trained models/image_torch --model models/image \
        --images data/images/generated/labels.csv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trained", type=Path, default=Path("models/image_torch"))
    parser.add_argument("--model", type=Path, default=Path("models/image"))
    parser.add_argument("--images", type=Path, default=Path("data/images/generated/labels.csv"))
    parser.add_argument("--n", type=int, default=256, help="test images for the model throughput")
    parser.add_argument("--ocr-images", type=int, default=40, help="images for the OCR timing")
    parser.add_argument("--out", type=Path, default=Path("reports/image_speed.json"))
    args = parser.parse_args()

    from PIL import Image, ImageDraw, ImageFont

    from training.images.export import load_trained
    from training.images.manifest import read_image_manifest
    from vicas.ocr import read_text
    from vicas.visual import VisualEngine, preprocess

    records = [r for r in read_image_manifest(args.images) if r.split == "test"][: args.n]
    images = []
    for r in records:
        with Image.open(r.path) as im:
            images.append(im.convert("RGB"))
    model, info = load_trained(args.trained)
    size = int(info["image_size"])
    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "images": len(images),
        "image_size": size,
        "torch_threads": torch.get_num_threads(),
    }
    with torch.inference_mode():
        model(torch.from_numpy(np.stack([preprocess(im, size) for im in images[:4]])))
        start = time.perf_counter()
        for i in range(0, len(images), 16):
            model(torch.from_numpy(np.stack([preprocess(im, size) for im in images[i : i + 16]])))
    report["pytorch_fp32_per_s"] = round(len(images) / (time.perf_counter() - start), 1)
    # the same with channels-last tensors, the fastest PyTorch layout for depthwise convolutions on CPU
    model = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        start = time.perf_counter()
        for i in range(0, len(images), 16):
            x = torch.from_numpy(np.stack([preprocess(im, size) for im in images[i : i + 16]]))
            model(x.to(memory_format=torch.channels_last))
    report["pytorch_fp32_channels_last_per_s"] = round(len(images) / (time.perf_counter() - start), 1)
    for label, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        engine = VisualEngine(args.model, name)
        engine.classify(images[:4])
        start = time.perf_counter()
        engine.classify(images, batch_size=16)
        report[f"onnx_{label}_per_s"] = round(len(images) / (time.perf_counter() - start), 1)
    report["speedup_int8_vs_pytorch"] = round(
        float(report["onnx_int8_per_s"]) / float(report["pytorch_fp32_per_s"]),  # type: ignore[arg-type]
        2,
    )

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 28)
    lines = ["Nạp 50k nhận 100k, tài xỉu uy tín", "Ib mình để nhận quà miễn phí nha", "Học sinh lớp 7A trường THCS"]
    rendered = []
    for i in range(args.ocr_images):
        img = Image.new("RGB", (640, 200), "white")
        draw = ImageDraw.Draw(img)
        for j in range(3):
            draw.text((20, 20 + 55 * j), lines[(i + j) % 3], fill="black", font=font)
        rendered.append(img)
    for label, batch in (("generated_test_images", images[: args.ocr_images]), ("rendered_text_640x200", rendered)):
        times = []
        for im in batch:
            start = time.perf_counter()
            read_text(im)
            times.append(time.perf_counter() - start)
        report[f"ocr_{label}_ms"] = {
            "mean": round(1000 * statistics.mean(times), 1),
            "p50": round(1000 * statistics.median(times), 1),
            "p95": round(1000 * sorted(times)[int(0.95 * (len(times) - 1))], 1),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
