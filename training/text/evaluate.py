"""DVC stage `evaluate`: the exported (served) text model beside the baseline.

Reads the ONNX model through the same engine the API uses, so the figures are
those of what is served. Writes `metrics/text_eval.json`, DVC plot data and
PNG charts under `reports/`, and the text model card `data_cards/model_card_text.md`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from tqdm import tqdm

from training.calibration import (
    REVIEW_GRID,
    band_inputs,
    band_readings,
    fit_band_calibration,
    fit_native_offsets,
    fit_review,
    known_band_rows,
    native_labels_of,
)
from training.config import EvaluateConfig, load_section
from training.metrics import (
    band_confusion,
    band_decision_metrics,
    band_metrics,
    binary_f1,
    macro_f1,
    presence_metrics,
    reliability,
    served_bands,
    span_f1,
)
from training.text.baseline import Baseline
from training.text.dataset import load_rows, severity_targets
from training.text.model import NATIVE_HEADS, VIHOS_CATEGORIES, native_slices
from training.text.robustness import obfuscate, strip_diacritics
from vicas.band import risk_coverage
from vicas.engine import TextEngine
from vicas.inference import Calibration, native_decisions, severities, severity_probabilities
from vicas.policy import load_policy
from vicas.taxonomy import BAND_ORDER, CATEGORIES, Band

SYSTEMS = ("model", "baseline")


class Scorer:
    """Severity probabilities and native probabilities for texts, for one system."""

    def __init__(self, name: str, fn: Callable[[list[str]], tuple[np.ndarray, np.ndarray]], calibration: Calibration):
        self.name, self.fn, self.calibration = name, fn, calibration

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.fn(texts)


def engine_scorer(engine: TextEngine, batch: int = 256) -> Scorer:
    def fn(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sev, nat = [], []
        for s in tqdm(range(0, len(texts), batch), desc="model", leave=False, mininterval=5):
            logits, native = engine.text_logits(engine.infer(texts[s : s + batch]))
            sev.append(logits)
            nat.append(native)
        return severity_probabilities(np.concatenate(sev), engine.calibration), np.concatenate(nat)

    return Scorer("model", fn, engine.calibration)


def baseline_scorer(model: Baseline) -> Scorer:
    def fn(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sev, nat = model.logits(texts)
        return severity_probabilities(sev, model.calibration), nat

    return Scorer("baseline", fn, model.calibration)


def contract_metrics(
    probs: np.ndarray, rows: list[dict[str, Any]], calibration: Calibration, review_risk: float | None = None
) -> dict[str, Any]:
    """Presence per category; on rows with a known band, the band as served (the policy's child-first
    decision with review, `band`) and as the severities alone call for it (`band_severity_rule`), and the
    risk-coverage curve (under-rating among automatic decisions against the share sent to review)."""
    targets = np.stack([severity_targets(r["labels"])[0] for r in rows])
    masks = np.stack([severity_targets(r["labels"])[1] for r in rows])
    pred_sev = severities(probs, calibration)
    pred = np.array([[int(s[c] > 0) for c in CATEGORIES] for s in pred_sev])
    out: dict[str, Any] = {"categories": presence_metrics(pred, targets[..., 0], masks[..., 0])}
    per_cat = {c: v for c, v in out["categories"].items() if c != "macro"}
    if per_cat:
        worst = min(per_cat, key=lambda c: per_cat[c]["f1"])
        out["categories"]["worst"] = {"category": worst, "f1": per_cat[worst]["f1"]}
    full = known_band_rows(rows)
    if full:
        policy = load_policy()
        true_sev = [{c: rows[i]["labels"][c][0] for c in CATEGORIES} for i in full]
        out["band_severity_rule"] = band_metrics([pred_sev[i] for i in full], true_sev, policy)
        at_least, floors, truth = band_inputs(probs[full], true_sev, calibration, policy)
        served, review = served_bands(at_least, floors, policy, review_risk)
        out["band"] = band_decision_metrics(served, review, truth)
        rule = policy.decision
        out["risk_coverage"] = [
            {"review_risk": p.review_risk, "review_share": p.review_share, "under_rating_auto": p.under_rated_auto}
            for p in risk_coverage(at_least, floors, truth, rule.under_cost, rule.over_cost, REVIEW_GRID)
        ]
    return out


def clean_comments_restricted(
    probs: np.ndarray, rows: list[dict[str, Any]], calibration: Calibration, review_risk: float | None
) -> dict[str, Any]:
    """Real comments their own annotators labelled clean (ViHSD CLEAN, ViCTSD non-toxic, dev splits): the
    share served at T13 or above (restricted for a 12-year-old) and at T16 or above (stored for review)."""
    idx = [
        i
        for i, r in enumerate(rows)
        if (r["source"] == "vihsd" and r["native"].get("vihsd") == 0)
        or (r["source"] == "victsd" and r["native"].get("victsd_toxic") == 0)
    ]
    if not idx:
        return {}
    policy = load_policy()
    at_least, floors = band_readings(probs[idx], calibration, policy)
    served, review = served_bands(at_least, floors, policy, review_risk)
    return {
        "n": len(idx),
        "t13_or_above": round(float((served >= Band.T13.rank).mean()), 4),
        "t16_or_above": round(float((served >= Band.T16.rank).mean()), 4),
        "review_share": round(float(review.mean()), 4),
        "t13_or_above_severity_rule": round(float((floors >= Band.T13.rank).mean()), 4),
    }


def fixed_decisions(nat: np.ndarray, offsets: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Per native head, every row's label under fixed offsets (empty offsets: plain argmax / logit > 0)."""
    sl = native_slices()
    return {head: native_decisions(nat[:, sl[head]], offsets.get(head)) for head in NATIVE_HEADS}


def crossfit_decisions(nat: np.ndarray, rows: list[dict[str, Any]], seed: int, folds: int = 2) -> dict[str, np.ndarray]:
    """Per native head, every row's label under offsets fitted on the *other* folds of dev.

    The served offsets are fitted on all of dev, so scoring them on dev would flatter them; this is an
    honest estimate of what the tuned decision rule does on rows it was not fitted on.
    """
    labels = native_labels_of(rows)
    fold = np.random.default_rng(seed).integers(0, folds, size=len(rows))
    out = {head: np.zeros(len(rows), dtype=int) for head in NATIVE_HEADS}
    for f in range(folds):
        fit_idx = np.flatnonzero(fold != f)
        offsets = fit_native_offsets(nat[fit_idx], [labels[i] for i in fit_idx], NATIVE_HEADS)
        for head, pred in fixed_decisions(nat, offsets).items():
            out[head][fold == f] = pred[fold == f]
    return out


def native_benchmarks(decisions: dict[str, np.ndarray], rows: list[dict[str, Any]]) -> dict[str, float]:
    """The public datasets' own tasks on their dev splits, from per-row native decisions."""
    out: dict[str, float] = {}

    def pick(source: str, key: str) -> tuple[list[int], list[int], list[int]]:
        idx = [i for i, r in enumerate(rows) if r["source"] == source and key in r["native"]]
        return idx, [int(rows[i]["native"][key]) for i in idx], decisions[key][idx].tolist()

    idx, y, p = pick("vihsd", "vihsd")
    if idx:
        out["vihsd_macro_f1"] = macro_f1(y, p)
    idx, y, p = pick("victsd", "victsd_toxic")
    if idx:
        out["victsd_toxic_f1"] = binary_f1(y, p)
    idx, y, p = pick("vispamreviews", "vispam")
    if idx:
        out["vispam_binary_macro_f1"] = macro_f1(y, p)
        _, yt, pt = pick("vispamreviews", "vispam_type")
        out["vispam_type_macro_f1"] = macro_f1(yt, pt)
    idx, y, p = pick("smishing", "smishing")
    if idx:
        out["smishing_f1"] = binary_f1(y, p)
    f1s = []
    for target in ("individual", "groups", "religion", "race", "politics"):
        idx, y, p = pick("vithsd", f"vithsd_{target}")
        if idx:
            f1s.append(macro_f1(y, p))
    if f1s:
        out["vithsd_mean_target_macro_f1"] = round(float(np.mean(f1s)), 4)
    return out


def evaluate(cfg: EvaluateConfig, model_dir: Path, baseline_path: Path, data: Path) -> dict[str, Any]:
    dev = load_rows(data / "dev.jsonl")
    test_path = data / "test.jsonl"
    test_all = load_rows(test_path) if test_path.exists() else []
    test = [x for x in test_all if x["source"] == "own"]
    real_test = [x for x in test_all if x.get("meta", {}).get("real_labels")]
    engine = TextEngine(model_dir)
    scorers = [engine_scorer(engine), baseline_scorer(joblib.load(baseline_path))]
    results: dict[str, Any] = {s: {} for s in SYSTEMS}
    rng = np.random.default_rng(cfg.seed)
    own_dev = [r for r in dev if r["source"] == "own"]
    public_dev = [r for r in dev if r["source"] != "own"]
    pick = rng.choice(len(public_dev), size=min(cfg.robustness_public_rows, len(public_dev)), replace=False)
    robust_rows = own_dev + [public_dev[i] for i in sorted(pick)]
    plots: dict[str, Any] = {}
    for scorer in scorers:
        r = results[scorer.name]
        probs, nat = scorer([x["text"] for x in dev])
        # band calibration and review threshold: the model's fitted at export (served); the baseline's fitted
        # here the same way; beside the model, its decision without the band calibration (review refitted)
        full = known_band_rows(dev)
        true_sev = [{c: dev[i]["labels"][c][0] for c in CATEGORIES} for i in full]
        if scorer.name != "model":
            fitted = fit_band_calibration(probs[full], true_sev, scorer.calibration, load_policy())
            scorer.calibration = fit_review(probs[full], true_sev, fitted, load_policy())
        review_risk = scorer.calibration.review_risk
        r["review_risk"] = review_risk
        uncalibrated = None
        if scorer.name == "model" and scorer.calibration.band_calibration is not None:
            uncalibrated = fit_review(
                probs[full], true_sev, scorer.calibration.model_copy(update={"band_calibration": None}), load_policy()
            )
            r["without_band_calibration"] = {
                "review_risk": uncalibrated.review_risk,
                "clean_comments_dev": clean_comments_restricted(probs, dev, uncalibrated, uncalibrated.review_risk),
            }
        r["dev"] = contract_metrics(probs, dev, scorer.calibration, review_risk)
        r["clean_comments_dev"] = clean_comments_restricted(probs, dev, scorer.calibration, review_risk)
        r["dev_by_source"] = {}
        for source in sorted({x["source"] for x in dev}):
            idx = [i for i, x in enumerate(dev) if x["source"] == source]
            r["dev_by_source"][source] = contract_metrics(
                probs[idx], [dev[i] for i in idx], scorer.calibration, review_risk
            )
        # headline: the tuned decision rule, cross-fitted on dev; beside it the plain argmax rule
        r["benchmarks"] = native_benchmarks(crossfit_decisions(nat, dev, cfg.seed), dev)
        r["benchmarks_argmax"] = native_benchmarks(fixed_decisions(nat, {}), dev)
        if real_test:
            rt_probs, _ = scorer([x["text"] for x in real_test])
            r["real_test"] = contract_metrics(rt_probs, real_test, scorer.calibration, review_risk)
            if uncalibrated is not None:
                raw = contract_metrics(rt_probs, real_test, uncalibrated, uncalibrated.review_risk)
                r["without_band_calibration"]["real_test"] = raw.get("band", {})
        if test:
            t_probs, _ = scorer([x["text"] for x in test])
            r["own_test"] = contract_metrics(t_probs, test, scorer.calibration, review_risk)
            if uncalibrated is not None:
                raw = contract_metrics(t_probs, test, uncalibrated, uncalibrated.review_risk)
                r["without_band_calibration"]["own_test"] = raw.get("band", {})
            if scorer.name == "model":
                pred = severities(t_probs, scorer.calibration)
                true = [{c: x["labels"][c][0] for c in CATEGORIES} for x in test]
                plots["band_confusion"] = band_confusion(pred, true, load_policy())
        for name, transform in (("no_diacritics", strip_diacritics), ("obfuscated", obfuscate)):
            p2, _ = scorer([transform(x["text"]) for x in robust_rows])
            r[f"robust_{name}"] = contract_metrics(p2, robust_rows, scorer.calibration)
        base_idx = [dev.index(x) for x in robust_rows] if len(robust_rows) < 5000 else []
        if base_idx:
            r["robust_original"] = contract_metrics(probs[base_idx], robust_rows, scorer.calibration)
        if scorer.name == "model":
            targets = np.stack([severity_targets(x["labels"])[0] for x in dev])
            masks = np.stack([severity_targets(x["labels"])[1] for x in dev])
            rel = {}
            for ci, cat in enumerate(CATEGORIES):
                keep = masks[:, ci, 0] > 0
                if targets[keep, ci, 0].sum() >= 5:
                    rows_, ece = reliability(probs[keep, ci, 0], targets[keep, ci, 0])
                    rel[cat] = {"curve": rows_, "ece": ece}
            plots["reliability"] = rel
    # ViHOS span F1 (paper definition) from the model's token evidence
    vihos = [x for x in dev if x["source"] == "vihos"]
    if vihos:
        pred_chars = engine.evidence_characters(
            [x["text"] for x in vihos], list(VIHOS_CATEGORIES), engine.calibration.evidence_threshold
        )
        gold = [{i for s, e in (x["spans"] or []) for i in range(s, e)} for x in vihos]
        results["model"]["benchmarks"]["vihos_span_f1"] = span_f1(pred_chars, gold)
        results["baseline"]["benchmarks"]["vihos_span_f1"] = None  # a bag of n-grams gives no spans
    return {
        "results": results,
        "plots": plots,
        "model_version": engine.version,
        "served_file": engine.manifest.default_onnx,
        "dev_rows": len(dev),
        "test_rows": len(test),
        "real_test_rows": len(real_test),
        "robustness_rows": len(robust_rows),
    }


def write_plots(out: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rel = out["plots"].get("reliability", {})
    rows = [{"category": c, **p} for c, v in rel.items() for p in v["curve"]]
    (folder / "reliability.json").write_text(json.dumps(rows, indent=1))
    fig, axes = plt.subplots(3, 4, figsize=(14, 10), sharex=True, sharey=True)
    for ax, cat in zip(axes.flat, CATEGORIES, strict=True):
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
        if cat in rel:
            pts = rel[cat]["curve"]
            ax.plot([p["predicted"] for p in pts], [p["observed"] for p in pts], "o-")
            ax.set_title(f"{cat} (ECE {rel[cat]['ece']:.3f})", fontsize=10)
        else:
            ax.set_title(f"{cat} (too few dev labels)", fontsize=10)
    fig.supxlabel("calibrated P(present)")
    fig.supylabel("observed rate")
    fig.suptitle("Reliability on dev, calibrated presence probabilities")
    fig.tight_layout()
    fig.savefig(folder / "reliability.png", dpi=80)
    plt.close(fig)

    per_cat = out["results"]
    cats = (
        [c for c in CATEGORIES if c in per_cat["model"]["own_test"]["categories"]]
        if "own_test" in per_cat["model"]
        else []
    )
    if cats:
        f1m = [per_cat["model"]["own_test"]["categories"][c]["f1"] for c in cats]
        f1b = [per_cat["baseline"]["own_test"]["categories"].get(c, {}).get("f1", 0) for c in cats]
        rows = [
            {"category": c, "system": s, "f1": v}
            for c, a, b in zip(cats, f1m, f1b, strict=True)
            for s, v in (("model", a), ("baseline", b))
        ]
        (folder / "f1_by_category.json").write_text(json.dumps(rows, indent=1))
        fig, ax = plt.subplots(figsize=(12, 4))
        x = np.arange(len(cats))
        ax.bar(x - 0.2, f1m, 0.4, label=f"model ({out['served_file']})")
        ax.bar(x + 0.2, f1b, 0.4, label="TF-IDF baseline")
        ax.set_xticks(x, cats, rotation=30, ha="right")
        ax.set_ylabel("F1 (own test split)")
        ax.set_ylim(0, 1)
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "f1_by_category.png", dpi=80)
        plt.close(fig)
    risk_coverage_plot(out, folder)
    conf = out["plots"].get("band_confusion")
    if conf:
        bands = [b.value for b in BAND_ORDER]
        rows = [
            {"actual": bands[i], "predicted": bands[j], "count": conf[i][j]}
            for i in range(len(bands))
            for j in range(len(bands))
            for _ in range(1)
        ]
        (folder / "band_confusion.json").write_text(json.dumps(rows, indent=1))
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.imshow(np.array(conf), cmap="Blues")
        for i in range(len(bands)):
            for j in range(len(bands)):
                ax.text(j, i, conf[i][j], ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(bands)), bands)
        ax.set_yticks(range(len(bands)), bands)
        ax.set_xlabel("predicted band")
        ax.set_ylabel("true band")
        ax.set_title("Bands, own test split\n(left of the diagonal: under-rated)", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / "band_confusion.png", dpi=80)
        plt.close(fig)


def risk_coverage_plot(out: dict[str, Any], folder: Path) -> None:
    """Under-rating among automatic decisions against the share sent to review, with the operating point."""
    import matplotlib.pyplot as plt

    splits = [s for s in ("own_test", "real_test") if "risk_coverage" in out["results"]["model"].get(s, {})]
    if not splits:
        return
    fig, axes = plt.subplots(1, len(splits), figsize=(6 * len(splits), 4.2), squeeze=False)
    rows = []
    for ax, split in zip(axes[0], splits, strict=True):
        for system, style in (("model", "-"), ("baseline", "--")):
            res = out["results"][system].get(split, {})
            pts = res.get("risk_coverage", [])
            if not pts:
                continue
            ax.plot([p["review_share"] for p in pts], [p["under_rating_auto"] for p in pts], style, label=system)
            band = res["band"]
            ax.plot([band["review_share"]], [band["under_rating_auto"]], "o", color="black")
            rows += [{"split": split, "system": system, **p} for p in pts]
        ax.axhline(0.03, color="red", lw=0.8, ls=":")
        ax.axvline(0.15, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("share of items sent to review")
        ax.set_ylabel("under-rated among automatic decisions")
        ax.set_title(f"{split} (dot: operating point; targets 3% / 15%)", fontsize=10)
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "risk_coverage.png", dpi=80)
    plt.close(fig)
    (folder / "risk_coverage.json").write_text(json.dumps(rows, indent=1))


def flat_metrics(out: dict[str, Any]) -> dict[str, Any]:
    """The small, stable set of numbers `dvc metrics show` and `dvc exp show` compare."""
    flat: dict[str, Any] = {"model_version": out["model_version"]}
    for s in SYSTEMS:
        r = out["results"][s]
        # all dev rows, through the served decision rule whose thresholds were fitted on dev (optimistic); not
        # train_text's `train_eval/dev_subset_macro_f1_presence` (a dev subset at probability 0.5, PyTorch)
        flat[f"{s}/dev_macro_f1_calibrated"] = r["dev"]["categories"]["macro"]["f1"]
        for split in ("own_test", "real_test"):
            if split not in r:
                continue
            flat[f"{s}/{split}_macro_f1"] = r[split]["categories"]["macro"]["f1"]
            if "worst" in r[split]["categories"]:
                flat[f"{s}/{split}_worst_f1"] = r[split]["categories"]["worst"]["f1"]
                flat[f"{s}/{split}_worst_category"] = r[split]["categories"]["worst"]["category"]
            for k, v in r[split].get("band", {}).items():
                flat[f"{s}/{split}_band_{k}"] = v
        for k, v in r.get("clean_comments_dev", {}).items():
            flat[f"{s}/clean_comments_dev_{k}"] = v
        raw = r.get("without_band_calibration", {})  # the decision on the combined probabilities, for comparison
        for split in ("own_test", "real_test"):
            for k in ("exact", "under_rating_auto", "review_share", "over_rating"):
                if k in raw.get(split, {}):
                    flat[f"{s}/{split}_band_uncalibrated_{k}"] = raw[split][k]
        for name in ("no_diacritics", "obfuscated", "original"):
            key = f"robust_{name}"
            if key in r:
                flat[f"{s}/{key}_macro_f1"] = r[key]["categories"]["macro"]["f1"]
        for k, v in r["benchmarks"].items():
            flat[f"{s}/{k}"] = v
    return flat


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate the exported text model beside the baseline.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate')")
    parser.add_argument("--model", default="models/text", type=Path, help="exported model folder")
    parser.add_argument("--baseline", default="models/baseline/baseline.joblib", type=Path)
    parser.add_argument("--data", default="data/prepared", type=Path)
    parser.add_argument("--metrics", default="metrics/text_eval.json", type=Path)
    parser.add_argument("--details", default="reports/text_eval_details.json", type=Path)
    parser.add_argument("--plots", default="reports/plots", type=Path)
    parser.add_argument("--card", default="data_cards/model_card_text.md", type=Path)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "evaluate", EvaluateConfig)
    out = evaluate(cfg, args.model, args.baseline, args.data)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(flat_metrics(out), indent=2, sort_keys=True))
    args.details.parent.mkdir(parents=True, exist_ok=True)
    args.details.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    write_plots(out, args.plots)
    from training.text.model_card import text_model_card

    args.card.write_text(text_model_card(out, args.model, flat_metrics(out)), encoding="utf-8")
    print(json.dumps(flat_metrics(out), indent=2))


if __name__ == "__main__":
    main()
