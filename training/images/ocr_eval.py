"""DVC stage `evaluate_ocr`: how well the served OCR path reads Vietnamese text in images.

Dev-split texts are rendered into images under sampled conditions (font, size,
style, rotation, JPEG quality, noise, blur; `training/images/text_images.py`), read back
with `vicas.ocr.read_text` (the serving code, with its defaults unless params.yaml
overrides them), and compared with what was drawn:

- character and word error rates (Levenshtein on NFC text, whitespace collapsed),
  overall and per condition; rates are pooled (total edits / total reference length);
- OCR seconds per image and per megapixel, with the engine that read them (tesserocr or pytesseract,
  `OcrConfig.engine` / VICAS_OCR_ENGINE);
- verdict agreement, when an exported text model is given: does the text model give
  the image's OCR text the same band as the source text (default policy)?
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from rapidfuzz.distance import Levenshtein
from tqdm import tqdm

from training.config import StageConfig, load_section
from training.images.text_images import (
    FONT_FILES,
    STYLES,
    ConditionSpace,
    RenderCondition,
    RenderedText,
    Style,
    available_fonts,
    jpeg_bucket,
    noise_bucket,
    render_text,
    rotation_bucket,
    sample_condition,
    size_bucket,
)
from vicas.ocr import OcrConfig, OcrError, OcrResult, check_ocr, engine_name, read_text
from vicas.taxonomy import BAND_ORDER, Band


class OcrEvalConfig(StageConfig):
    seed: int = 13
    n_texts: int = Field(300, ge=1, description="texts sampled from the split (one image each)")
    split: str = Field("dev", description="prepared split the texts come from")
    own_share: float = Field(
        0.5, ge=0, le=1, description="share of the sample from the own corpus (it covers every category)"
    )
    min_chars: int = Field(8, ge=1)
    max_chars: int = Field(400, ge=20, description="longer texts are cut at a word boundary")
    fonts: list[str] = Field(default_factory=lambda: list(FONT_FILES))
    sizes: list[int] = Field(default_factory=lambda: [12, 16, 20, 28, 36, 48])
    styles: list[Style] = Field(default_factory=lambda: list(STYLES))
    rotations: list[float] = Field(default_factory=lambda: [0.0, 0.0, 2.0, -2.0, 5.0, -5.0, 8.0, -8.0])
    jpeg_qualities: list[int | None] = Field(default_factory=lambda: [None, 90, 70, 50, 30])
    noise_sigmas: list[float] = Field(default_factory=lambda: [0.0, 0.0, 6.0, 12.0])
    blurs: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0, 0.7])
    widths: list[int] = Field(default_factory=lambda: [480, 720, 960])
    ocr: OcrConfig = Field(default_factory=OcrConfig, description="overrides of vicas.ocr.OcrConfig defaults")
    flag_band: Band = Field(Band.T13, description="an item is 'flagged' at this band or above")
    engine_threads: int = Field(1, ge=1, description="ONNX Runtime threads for the text model")

    def space(self) -> ConditionSpace:
        fonts = [f for f in self.fonts if f in available_fonts()]
        if not fonts:
            raise SystemExit(f"none of the fonts {self.fonts} is installed; available: {available_fonts()}")
        return ConditionSpace(
            fonts=tuple(fonts),
            sizes=tuple(self.sizes),
            styles=tuple(self.styles),
            rotations=tuple(self.rotations),
            jpeg_qualities=tuple(self.jpeg_qualities),
            noise_sigmas=tuple(self.noise_sigmas),
            blurs=tuple(self.blurs),
            widths=tuple(self.widths),
        )


# ---------------------------------------------------------------------------------------------- texts

_KEEP_RANGES = ((0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x1E00, 0x1EFF), (0x2010, 0x2027), (0x20AB, 0x20AC))


def drawable(text: str) -> str:
    """The part of `text` the fonts can draw and OCR can be asked to read: Latin with Vietnamese
    letters, digits, punctuation. Emoji, CJK and control characters go; whitespace is tidied."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(ch if any(lo <= ord(ch) <= hi for lo, hi in _KEEP_RANGES) or ch == "\n" else " " for ch in text)
    lines = [" ".join(line.split()) for line in kept.splitlines()]
    return "\n".join(line for line in lines if line)


def cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = max(head.rfind(" "), head.rfind("\n"))
    return head[:space] if space > max_chars // 2 else head


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def load_texts(cfg: OcrEvalConfig, data: Path | None, texts: Path | None) -> tuple[list[dict[str, Any]], str]:
    """Sampled rows ({id, source, text}) and a description of where they came from."""
    if texts is not None:
        files = sorted(texts.glob("*.jsonl")) if texts.is_dir() else [texts]
        if not files or not all(f.is_file() for f in files):
            raise SystemExit(f"--texts {texts}: no such .jsonl file or folder of .jsonl files")
        rows = [r for f in files for r in _read_jsonl(f)]
        for r in rows:
            r.setdefault("source", "own")
        origin = str(texts)
    else:
        if data is None:
            raise SystemExit("give --data (the prepared folder) or --texts FILE.jsonl")
        path = data / f"{cfg.split}.jsonl"
        if not path.is_file():
            raise SystemExit(
                f"{path} not found: run the prepare stage first (dvc repro prepare), "
                "or pass --texts data/own/corpus to evaluate on the own corpus"
            )
        rows = _read_jsonl(path)
        origin = f"{path}"
    items = []
    for i, r in enumerate(rows):
        t = cut(drawable(str(r.get("text", ""))), cfg.max_chars)
        if len(t) >= cfg.min_chars:
            items.append({"id": str(r.get("id", i)), "source": str(r.get("source", "?")), "text": t})
    if not items:
        raise SystemExit(f"no usable texts (at least {cfg.min_chars} drawable characters) in {origin}")
    rng = random.Random(cfg.seed)
    own = [r for r in items if r["source"] == "own"]
    other = [r for r in items if r["source"] != "own"]
    n_own = min(len(own), round(cfg.n_texts * cfg.own_share)) if other else min(len(own), cfg.n_texts)
    n_other = min(len(other), cfg.n_texts - n_own)
    n_own = min(len(own), cfg.n_texts - n_other)
    sample = rng.sample(own, n_own) + rng.sample(other, n_other)
    rng.shuffle(sample)
    return sample, origin


# ---------------------------------------------------------------------------------------------- metrics


def norm_for_cer(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def char_errors(hyp: str, ref: str) -> tuple[int, int]:
    """(edit distance, reference length) on NFC text with whitespace collapsed."""
    h, r = norm_for_cer(hyp), norm_for_cer(ref)
    return Levenshtein.distance(h, r), len(r)


def word_errors(hyp: str, ref: str) -> tuple[int, int]:
    h, r = norm_for_cer(hyp).split(), norm_for_cer(ref).split()
    return Levenshtein.distance(h, r), len(r)


def cer(hyp: str, ref: str) -> float:
    d, n = char_errors(hyp, ref)
    return d / n if n else float(d > 0)


@dataclass
class ImageRecord:
    id: str
    source: str
    reference: str
    hypothesis: str
    condition: RenderCondition
    width: int
    height: int
    seconds: float
    char_edits: int
    ref_chars: int
    word_edits: int
    ref_words: int
    mean_confidence: float
    skew_deg: float
    scale: float
    passes: int = 1
    error: str = ""
    text_band: str = ""
    image_band: str = ""

    @property
    def cer(self) -> float:
        return min(1.0, self.char_edits / self.ref_chars) if self.ref_chars else 0.0

    def buckets(self) -> dict[str, str]:
        c = self.condition
        return {
            "font": c.font,
            "weight": "bold" if c.bold or c.style == "meme" else "regular",  # memes are always bold
            "size": size_bucket(c.size),
            "style": c.style,
            "rotation": rotation_bucket(c.rotation),
            "jpeg": jpeg_bucket(c.jpeg_quality),
            "noise": noise_bucket(c.noise_sigma, c.blur),
            "length": "short (<80 chars)" if self.ref_chars < 80 else "long (>=80 chars)",
        }


FACTORS = ("style", "size", "rotation", "jpeg", "noise", "font", "weight", "length")

# levels in their natural order (worse to the bottom), for tables and plots
LEVEL_ORDER: dict[str, list[str]] = {
    "size": [size_bucket(s) for s in (48, 20, 12)],
    "rotation": [rotation_bucket(a) for a in (0, 2, 5, 8)],
    "jpeg": [jpeg_bucket(q) for q in (None, 90, 70, 50, 30)],
    "style": [str(s) for s in STYLES],
    "length": ["long (>=80 chars)", "short (<80 chars)"],
}


def _level_key(factor: str, level: str) -> tuple[int, int, str]:
    order = LEVEL_ORDER.get(factor, [])
    if factor == "noise":  # clean first, then by amount
        amounts = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", level)]
        return (FACTORS.index(factor), 0 if level == "clean" else 1 + level.count("+"), f"{sum(amounts):08.2f}")
    return (FACTORS.index(factor), order.index(level) if level in order else len(order), level)


def _pooled(records: list[ImageRecord]) -> dict[str, float]:
    ce = sum(r.char_edits for r in records)
    cn = sum(r.ref_chars for r in records)
    we = sum(r.word_edits for r in records)
    wn = sum(r.ref_words for r in records)
    return {
        "images": len(records),
        "cer": round(min(1.0, ce / cn), 4) if cn else 0.0,
        "cer_mean": round(float(np.mean([r.cer for r in records])), 4) if records else 0.0,
        "wer": round(min(1.0, we / wn), 4) if wn else 0.0,
    }


def by_condition(records: list[ImageRecord]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[ImageRecord]] = defaultdict(list)
    for r in records:
        for factor, level in r.buckets().items():
            groups[(factor, level)].append(r)
    rows = []
    for (factor, level), rs in sorted(groups.items(), key=lambda kv: _level_key(*kv[0])):
        rows.append({"factor": factor, "level": level, **_pooled(rs)})
    return rows


def timing(records: list[ImageRecord]) -> dict[str, float]:
    secs = np.array([r.seconds for r in records])
    mp = np.array([r.width * r.height / 1e6 for r in records])
    return {
        "mean": round(float(secs.mean()), 4),
        "p50": round(float(np.percentile(secs, 50)), 4),
        "p95": round(float(np.percentile(secs, 95)), 4),
        "per_megapixel": round(float(secs.sum() / mp.sum()), 4),
        "mean_megapixels": round(float(mp.mean()), 4),
        "mean_passes": round(float(np.mean([r.passes for r in records])), 3),
    }


def verdict_agreement(records: list[ImageRecord], flag_band: Band) -> dict[str, Any]:
    pairs = [(Band(r.text_band), Band(r.image_band)) for r in records if r.text_band and r.image_band]
    if not pairs:
        return {}
    n = len(pairs)
    flagged_text = sum(t >= flag_band for t, _ in pairs)
    return {
        "images": n,
        "band_agreement": round(sum(t == i for t, i in pairs) / n, 4),
        "flagged_agreement": round(sum((t >= flag_band) == (i >= flag_band) for t, i in pairs) / n, 4),
        "under_rating_rate": round(sum(i < t for t, i in pairs) / n, 4),
        "over_rating_rate": round(sum(i > t for t, i in pairs) / n, 4),
        "flag_band": flag_band.value,
        "flagged_by_text": flagged_text,
        "text_bands": {b.value: sum(t == b for t, _ in pairs) for b in BAND_ORDER if any(t == b for t, _ in pairs)},
        "flag_recall": round(sum(t >= flag_band and i >= flag_band for t, i in pairs) / flagged_text, 4)
        if flagged_text
        else 1.0,
    }


# ---------------------------------------------------------------------------------------------- run


def render_items(
    items: list[dict[str, Any]], cfg: OcrEvalConfig
) -> Iterator[tuple[dict[str, Any], RenderCondition, RenderedText]]:
    """Each text rendered under its sampled condition; the same images for the same seed and items
    (benchmarks/ocr_engines.py reads them with each engine)."""
    rng = random.Random(cfg.seed + 1)
    space = cfg.space()
    for it in items:
        cond = sample_condition(rng, space)
        yield it, cond, render_text(it["text"], cond)


def read_record(it: dict[str, Any], cond: RenderCondition, rendered: RenderedText, ocr: OcrConfig) -> ImageRecord:
    """Read one rendered image with `ocr` and score it against what was drawn."""
    ref = rendered.text
    error = ""
    try:
        res: OcrResult | None = read_text(rendered.image, ocr)
    except OcrError as e:  # a timeout counts as reading nothing
        res, error = None, str(e)
    hyp = res.text if res else ""
    ce, cn = char_errors(hyp, ref)
    we, wn = word_errors(hyp, ref)
    return ImageRecord(
        id=it["id"],
        source=it["source"],
        reference=ref,
        hypothesis=hyp,
        condition=cond,
        width=rendered.image.width,
        height=rendered.image.height,
        seconds=res.seconds if res else ocr.timeout_s,
        char_edits=ce,
        ref_chars=cn,
        word_edits=we,
        ref_words=wn,
        mean_confidence=res.mean_confidence if res else 0.0,
        skew_deg=res.skew_deg if res else 0.0,
        scale=res.scale if res else 1.0,
        passes=res.passes if res else 0,
        error=error,
    )


def render_and_read(items: list[dict[str, Any]], cfg: OcrEvalConfig, progress: bool = True) -> list[ImageRecord]:
    rendered = render_items(items, cfg)
    return [
        read_record(it, cond, r, cfg.ocr)
        for it, cond, r in tqdm(rendered, total=len(items), desc="ocr", unit="img", disable=not progress, mininterval=2)
    ]


def add_bands(records: list[ImageRecord], model: Path, threads: int) -> str:
    """Band of the source text and of the OCR text, through the served engine and the default policy."""
    from vicas.engine import TextEngine
    from vicas.policy import load_policy
    from vicas.result import build_result

    engine = TextEngine(model, threads=threads)
    policy = load_policy(None)

    def bands(texts: list[str]) -> list[str]:
        preds = engine.classify(texts, with_evidence=False)
        return [build_result(p, policy, engine.version, None, engine.calibration).band.value for p in preds]

    text_bands = bands([r.reference.replace("\n", " ") for r in records])
    image_bands = bands([r.hypothesis.replace("\n", " ") for r in records])
    for r, t, i in zip(records, text_bands, image_bands, strict=True):
        r.text_band, r.image_band = t, i
    return engine.version


def summarise(records: list[ImageRecord], cfg: OcrEvalConfig, model_version: str | None) -> dict[str, Any]:
    """The numbers `dvc metrics show` compares (examples and settings go to details.json)."""
    out: dict[str, Any] = {
        **_pooled(records),
        "engine": engine_name(cfg.ocr.engine),  # seconds differ by engine (benchmarks/ocr_engines.py)
        "errors": sum(bool(r.error) for r in records),
        "seconds_per_image": timing(records),
        "by_condition": {
            f: {row["level"]: row["cer"] for row in by_condition(records) if row["factor"] == f} for f in FACTORS
        },
    }
    if model_version is not None:
        out["verdict"] = {"model_version": model_version, **verdict_agreement(records, cfg.flag_band)}
    return out


def details(records: list[ImageRecord], cfg: OcrEvalConfig, origin: str, worst: int = 10) -> dict[str, Any]:
    ranked = sorted(records, key=lambda r: r.cer, reverse=True)[:worst]
    return {
        "texts_from": origin,
        "config": cfg.model_dump(mode="json"),
        "worst_examples": [
            {
                "id": r.id,
                "cer": round(r.cer, 3),
                "condition": r.condition.as_dict(),
                "reference": r.reference,
                "ocr": r.hypothesis,
            }
            for r in ranked
        ],
    }


def write_outputs(
    records: list[ImageRecord], summary: dict[str, Any], extra: dict[str, Any], metrics: Path, plots: Path
) -> None:
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    plots.mkdir(parents=True, exist_ok=True)
    (plots / "details.json").write_text(json.dumps(extra, indent=1, ensure_ascii=False), encoding="utf-8")
    rows = by_condition(records)
    with (plots / "cer_by_condition.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["factor", "level", "images", "cer", "cer_mean", "wer"])
        w.writeheader()
        w.writerows(rows)
    with (plots / "images.csv").open("w", encoding="utf-8", newline="") as f:
        fields = [
            "id",
            "source",
            "cer",
            "seconds",
            "width",
            "height",
            "mean_confidence",
            "skew_deg",
            "scale",
            "passes",
            *FACTORS,
            "text_band",
            "image_band",
            "error",
            "reference",
            "ocr",
        ]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in records:
            w.writerow(
                {
                    "id": r.id,
                    "source": r.source,
                    "cer": round(r.cer, 4),
                    "seconds": r.seconds,
                    "width": r.width,
                    "height": r.height,
                    "mean_confidence": r.mean_confidence,
                    "skew_deg": r.skew_deg,
                    "scale": r.scale,
                    "passes": r.passes,
                    **r.buckets(),
                    "text_band": r.text_band,
                    "image_band": r.image_band,
                    "error": r.error,
                    "reference": r.reference,
                    "ocr": r.hypothesis,
                }
            )
    plot_cer(rows, summary, plots / "cer_by_condition.png")


def plot_cer(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factors = [f for f in FACTORS if any(r["factor"] == f for r in rows)]
    ncols = 4
    nrows = math.ceil(len(factors) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(18, 3.4 * nrows), squeeze=False)
    overall = summary["cer"]
    top = max([r["cer"] for r in rows] + [overall, 0.05]) * 1.25
    for ax, factor in zip(axes.ravel(), factors, strict=False):
        sub = [r for r in rows if r["factor"] == factor]
        labels = [f"{r['level']} (n={r['images']})" for r in sub]
        values = [r["cer"] for r in sub]
        colours = ["#c0392b" if v > 2 * overall and v > 0.05 else "#2c7fb8" for v in values]
        bars = ax.barh(labels, values, color=colours)
        ax.axvline(overall, color="grey", linestyle="--", linewidth=1)
        for b, v in zip(bars, values, strict=True):
            ax.text(v + top * 0.01, b.get_y() + b.get_height() / 2, f"{v:.1%}", va="center", fontsize=8)
        ax.set_xlim(0, top)
        ax.set_title(factor, fontsize=11)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    for ax in axes.ravel()[len(factors) :]:
        ax.axis("off")
    t = summary["seconds_per_image"]
    title = (
        f"OCR character error rate by rendering condition: {summary['images']} images, overall CER "
        f"{overall:.1%} (dashed), WER {summary['wer']:.1%}; {t['p50']:.2f} s/image median"
    )
    if "verdict" in summary and "band_agreement" in summary["verdict"]:
        v = summary["verdict"]
        title += (
            f"\nverdicts ({v['model_version']}): same band as the source text {v['band_agreement']:.1%}, "
            f"under-rated {v['under_rating_rate']:.1%}, same flag (>= {v['flag_band']}) {v['flagged_agreement']:.1%}"
        )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def evaluate(
    cfg: OcrEvalConfig,
    data: Path | None,
    texts: Path | None,
    model: Path | None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[list[ImageRecord], dict[str, Any], dict[str, Any]]:
    check_ocr(cfg.ocr.languages, cfg.ocr.engine)
    items, origin = load_texts(cfg, data, texts)
    log(f"{len(items)} texts from {origin}")
    records = render_and_read(items, cfg, progress)
    version = None
    if model is not None and (model / "manifest.json").is_file():
        version = add_bands(records, model, cfg.engine_threads)
    elif model is not None:
        log(f"no exported text model in {model}: verdict agreement skipped")
    return records, summarise(records, cfg, version), details(records, cfg, origin)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Render dev-split texts into images, read them back with vicas.ocr, and measure the errors."
    )
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate_ocr')")
    parser.add_argument("--data", default="data/prepared", type=Path, help="prepared data folder ({split}.jsonl)")
    parser.add_argument("--texts", type=Path, help="a .jsonl file (or folder of them) with a 'text' field instead")
    parser.add_argument("--model", default="models/text", type=Path, help="exported text model (verdicts)")
    parser.add_argument("--metrics", default="metrics/ocr_eval.json", type=Path, help="metrics JSON (dvc metrics)")
    parser.add_argument(
        "--plots",
        default="reports/plots/ocr",
        type=Path,
        help="folder for cer_by_condition.csv/.png, images.csv (one row per image), details.json",
    )
    parser.add_argument("--limit", type=int, help="evaluate at most N texts (overrides n_texts)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "evaluate_ocr", OcrEvalConfig)
    if args.limit is not None:
        cfg = cfg.model_copy(update={"n_texts": args.limit})
    # Tesseract's OpenMP threads fight each other on small machines; one image at a time on one thread
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    records, summary, extra = evaluate(cfg, args.data, args.texts, args.model, progress=not args.no_progress)
    write_outputs(records, summary, extra, args.metrics, args.plots)
    brief = {k: summary[k] for k in ("images", "cer", "wer", "engine", "seconds_per_image")}
    if "verdict" in summary:
        brief["verdict"] = summary["verdict"]
    print(json.dumps(brief, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
