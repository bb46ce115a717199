"""OCR engines and settings compared on the `evaluate_ocr` images: character error rate and seconds per image.

The images are those of the DVC stage `evaluate_ocr` (the same texts, seed and rendering conditions from
params.yaml, `training.images.ocr_eval.render_items`). Every variant reads every image in the same run, interleaved:
for each image the variants take turns in a rotating order, so load from other processes falls on all of them
alike, and `--repeats` reads the whole set again (each image's time is its median over the repeats). CER is
pooled as in the stage (total edits / total reference characters), from the first repeat.

A variant is NAME=ENGINE or NAME=ENGINE:JSON, JSON being overrides of `vicas.ocr.OcrConfig`:

    python benchmarks/ocr_engines.py --texts data/own/corpus --n 300 --repeats 2 \\
        --variant tesserocr=tesserocr --variant pytesseract=pytesseract \\
        --variant 'tesserocr, upscale <= 2x=tesserocr:{"max_upscale": 2}'

Without --variant: tesserocr and pytesseract with the served defaults. --zoom F and --canvas WxH turn the
images into large ones (enlarged; or pasted on a white page) to see what reading large images costs.
Figures: benchmarks/RESULTS.md, "OCR engines". One image at a time on one Tesseract
thread (OMP_THREAD_LIMIT=1), as the stage and a server worker read them. tesserocr's first use of a language
set loads it (about 0.1 s): one untimed warm-up image per variant keeps that out, as a long-lived worker would.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # before Tesseract is loaded

from training.config import load_section  # noqa: E402
from training.images.ocr_eval import FACTORS, ImageRecord, OcrEvalConfig, load_texts, read_record, render_items  # noqa: E402
from vicas.ocr import OcrConfig, check_ocr, engine_name  # noqa: E402


@dataclass
class Variant:
    name: str
    config: OcrConfig
    records: list[ImageRecord] = field(default_factory=list)
    seconds: list[list[float]] = field(default_factory=list)  # per image, one per repeat


def parse_variant(spec: str, base: OcrConfig) -> Variant:
    """NAME=ENGINE or NAME=ENGINE:JSON (OcrConfig overrides) on top of `base`."""
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"--variant {spec!r}: write NAME=ENGINE or NAME=ENGINE:JSON")
    engine, _, overrides = rest.partition(":")
    update: dict[str, Any] = json.loads(overrides) if overrides.strip() else {}
    config = OcrConfig.model_validate({**base.model_dump(), **update, "engine": engine.strip()})
    return Variant(name.strip(), config)


def summary(v: Variant) -> dict[str, Any]:
    per_image = [statistics.median(s) for s in v.seconds]
    ce = sum(r.char_edits for r in v.records)
    cn = sum(r.ref_chars for r in v.records)
    we = sum(r.word_edits for r in v.records)
    wn = sum(r.ref_words for r in v.records)
    q = statistics.quantiles(per_image, n=20) if len(per_image) > 1 else per_image * 19
    return {
        "engine": engine_name(v.config.engine),
        "overrides": {k: val for k, val in v.config.model_dump().items() if val != getattr(OcrConfig(), k)},
        "images": len(v.records),
        "cer": round(ce / cn, 4) if cn else 0.0,
        "wer": round(we / wn, 4) if wn else 0.0,
        "errors": sum(bool(r.error) for r in v.records),
        "seconds_mean": round(statistics.fmean(per_image), 4),
        "seconds_p50": round(statistics.median(per_image), 4),
        "seconds_p95": round(q[18], 4),
        "mean_passes": round(statistics.fmean(r.passes for r in v.records), 3),
    }


def write_per_image(variants: list[Variant], path: Path) -> None:
    fields = ["variant", "id", "cer", "seconds", "passes", "scale", "skew_deg", "mean_confidence", "width", "height"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*fields, *FACTORS])
        w.writeheader()
        for v in variants:
            for r, secs in zip(v.records, v.seconds, strict=True):
                row = {k: getattr(r, k) for k in fields[4:]}
                w.writerow(
                    {
                        "variant": v.name,
                        "id": r.id,
                        "cer": round(r.cer, 4),
                        "seconds": round(statistics.median(secs), 4),
                        **row,
                        **r.buckets(),
                    }
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate_ocr')")
    parser.add_argument("--data", default="data/prepared", type=Path, help="prepared data folder ({split}.jsonl)")
    parser.add_argument("--texts", type=Path, help="a .jsonl file (or folder of them) with a 'text' field instead")
    parser.add_argument("--n", type=int, help="images (default: the stage's n_texts)")
    parser.add_argument("--repeats", type=int, default=2, help="reads of the whole set per variant")
    parser.add_argument("--variant", action="append", default=[], help="NAME=ENGINE[:JSON] (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("reports/ocr_engines.json"))
    parser.add_argument("--per-image", type=Path, help="also write one CSV row per variant and image here")
    parser.add_argument(
        "--zoom",
        type=float,
        default=1.0,
        help="enlarge every image by this factor first (bicubic, untimed): high-resolution photos and screenshots",
    )
    parser.add_argument(
        "--canvas",
        type=lambda v: tuple(int(x) for x in v.lower().split("x")),
        help="WxH: paste every image on a white canvas this large (untimed): small text in a large photo",
    )
    args = parser.parse_args(argv)

    cfg = load_section(args.params, "evaluate_ocr", OcrEvalConfig)
    if args.n is not None:
        cfg = cfg.model_copy(update={"n_texts": args.n})
    specs = args.variant or ["tesserocr=tesserocr", "pytesseract=pytesseract"]
    variants = [parse_variant(s, cfg.ocr) for s in specs]
    for v in variants:
        check_ocr(v.config.languages, v.config.engine)
    items, origin = load_texts(cfg, None if args.texts else args.data, args.texts)
    images = list(render_items(items, cfg))
    print(f"{len(images)} images from {origin}; variants: {', '.join(v.name for v in variants)}", flush=True)
    it, cond, rendered = images[0]
    for v in variants:  # warm-up, untimed (at the original size)
        read_record(it, cond, rendered, v.config)
    k = len(variants)
    t_start = time.perf_counter()
    for rep in range(args.repeats):
        for i, (it, cond, rendered) in enumerate(images):
            if args.zoom != 1.0:
                size = (round(rendered.image.width * args.zoom), round(rendered.image.height * args.zoom))
                rendered = replace(rendered, image=rendered.image.resize(size, Image.Resampling.BICUBIC))
            if args.canvas:
                page = Image.new("RGB", args.canvas, (255, 255, 255))
                page.paste(rendered.image, ((page.width - rendered.image.width) // 2, page.height // 3))
                rendered = replace(rendered, image=page)
            for j in range(k):
                v = variants[(i + rep + j) % k]
                t0 = time.perf_counter()
                rec = read_record(it, cond, rendered, v.config)
                dt = time.perf_counter() - t0
                if rep == 0:
                    v.records.append(rec)
                    v.seconds.append([dt])
                else:
                    v.seconds[i].append(dt)
            if (i + 1) % 50 == 0:
                print(f"repeat {rep + 1}: {i + 1}/{len(images)} ({time.perf_counter() - t_start:.0f} s)", flush=True)
    results = {v.name: summary(v) for v in variants}
    base = variants[0]
    for v in variants[1:]:
        same = sum(a.hypothesis == b.hypothesis for a, b in zip(base.records, v.records, strict=True))
        results[v.name]["same_text_as_" + base.name] = round(same / len(images), 4)
    report = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "command": " ".join(["python", "benchmarks/ocr_engines.py", *(argv if argv is not None else sys.argv[1:])]),
        "texts_from": origin,
        "images": len(images),
        "zoom": args.zoom,
        "canvas": list(args.canvas) if args.canvas else None,
        "mean_megapixels": round(statistics.fmean(r.width * r.height / 1e6 for r in variants[0].records), 4),
        "repeats": args.repeats,
        "variants": results,
    }
    if args.per_image:
        write_per_image(variants, args.per_image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("date", "machine", "images", "mean_megapixels")}, ensure_ascii=False))
    print("| variant | engine | CER | WER | s/image mean | p50 | p95 | passes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['engine']} | {r['cer']:.4f} | {r['wer']:.4f} | {r['seconds_mean']:.3f} | "
            f"{r['seconds_p50']:.3f} | {r['seconds_p95']:.3f} | {r['mean_passes']:.2f} |"
        )


if __name__ == "__main__":
    main()
