"""Throughput of the served ONNX int8 model (length-bucketed batches) against plain PyTorch fp32.

Same texts, same machine, one run. The PyTorch side is what a `transformers` user would write:
the trained model in fp32, batches of 32 in the given order, padded to the longest text of each batch.

    python benchmarks/text_speed.py --trained models/text_torch --model models/text --data data/prepared/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trained", type=Path, default=Path("models/text_torch"))
    parser.add_argument("--model", type=Path, default=Path("models/text"))
    parser.add_argument("--data", type=Path, default=Path("data/prepared/dev.jsonl"))
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=Path("reports/text_speed.json"))
    args = parser.parse_args()

    from training.text.export import load_trained
    from vicas.engine import TextEngine
    from vicas.normalize import normalize_text

    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")][: args.texts]
    texts = [r["text"] for r in rows]
    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "texts": len(texts),
        "torch_threads": torch.get_num_threads(),
    }

    model, tokenizer = load_trained(args.trained)
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), 32):
            batch = [normalize_text(t) for t in texts[i : i + 32]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
            model(enc["input_ids"], enc["attention_mask"])
    report["pytorch_fp32_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)

    for label, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        engine = TextEngine(args.model, name)
        engine.classify(texts[:64])
        start = time.perf_counter()
        for i in range(0, len(texts), 256):
            engine.classify(texts[i : i + 256], batch_size=32)
        report[f"onnx_{label}_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    speedup = float(report["onnx_int8_per_s"]) / float(report["pytorch_fp32_per_s"])  # type: ignore[arg-type]
    report["speedup_int8_vs_pytorch"] = round(speedup, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
