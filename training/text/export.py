"""DVC stage `export_text`: ONNX (fp32 and int8), parity gate, manifest.

The exported folder is all serving needs: `model.onnx`, `model.int8.onnx`,
`tokenizer.json`, `calibration.json`, `manifest.json` (checksums, versions, the
normalisation fingerprint, parity figures), and `README.md`, a Hugging Face model
card. The version is derived from the inputs (training/versioning.py), never the
clock, and is stamped with the contract and normalisation versions into each ONNX
file's metadata. Export fails loudly when the ONNX outputs drift from PyTorch's
beyond tolerance, or when int8 quantisation changes too many decisions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from tqdm import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer

from training.config import ExportTextConfig, load_section
from training.text.dataset import collate, encode_rows, load_rows
from training.text.model import NATIVE_HEADS, ExportWrapper, HarmClassifier
from training.versioning import created_at, input_version, library_versions, onnx_props, stamp_onnx
from vicas.diacritics import FILE_NAME as DIACRITICS_FILE_NAME
from vicas.engine import TextEngine, read_special_ids
from vicas.inference import Calibration, severity_probabilities
from vicas.manifest import Manifest, normalizer_fingerprint, sha256_file
from vicas.ngrams import NgramModel
from vicas.policy import load_policy
from vicas.stacking import Stacking
from vicas.taxonomy import CATEGORIES

NGRAM_FILE = "ngram.npz"
MODEL_NAME = "vicas-text"
HEADS_FILE = "heads.safetensors"


class ExportParityError(RuntimeError):
    """The exported model does not reproduce the trained one within tolerance."""


def load_trained(folder: Path) -> tuple[HarmClassifier, Any]:
    """The trained model: the encoder as `from_pretrained` reads it and the heads beside it (train_text), or
    the older layout (`model.pt` + `encoder_config/` + `tokenizer/`)."""
    if (folder / HEADS_FILE).exists():
        from safetensors.torch import load_file

        # eager attention traces into a graph that keeps dynamic batch and sequence shapes
        encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False, attn_implementation="eager")
        model = HarmClassifier(encoder, encoder.config.hidden_size)
        missing = model.load_state_dict(load_file(str(folder / HEADS_FILE)), strict=False)
        unexpected_heads = [k for k in missing.missing_keys if not k.startswith("encoder.")]
        if unexpected_heads or missing.unexpected_keys:
            raise ValueError(f"{folder / HEADS_FILE}: heads do not match the model ({missing})")
        model.eval()
        return model, AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder / "encoder_config")
    encoder = AutoModel.from_config(config, add_pooling_layer=False, attn_implementation="eager")
    model = HarmClassifier(encoder, config.hidden_size)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    return model, tokenizer


def export_onnx(model: HarmClassifier, path: Path, opset: int) -> None:
    top = int(model.encoder.config.vocab_size) - 1
    ids = torch.tensor([[0, min(top, 100), min(top, 200), min(top, 300), 2], [0, min(top, 101), 2, 1, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    torch.onnx.export(
        ExportWrapper(model),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["severity", "tokens", "native"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "severity": {0: "batch"},
            "tokens": {0: "batch", 1: "seq"},
            "native": {0: "batch"},
        },
        opset_version=opset,
        dynamo=False,
    )


def quantize_int8(fp32_path: Path, int8_path: Path, cfg: ExportTextConfig) -> None:
    """Dynamic int8 weights for the chosen op types; nodes matching `int8_keep_fp32` stay fp32."""
    import re

    import onnx

    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    keep = [re.compile(p) for p in cfg.int8_keep_fp32]
    exclude = [n.name for n in graph.node if any(p.search(n.name) for p in keep)]
    # the quantiser rewrites a Gemm as a MatMul named "<name>_MatMul" before it excludes nodes by name
    exclude += [f"{n.name}_MatMul" for n in graph.node if n.op_type == "Gemm" and n.name in exclude]
    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        per_channel=cfg.int8_per_channel,
        op_types_to_quantize=cfg.int8_op_types,
        nodes_to_exclude=exclude,
    )


def parity_report(
    model: HarmClassifier, fp32: TextEngine, batches: list[dict[str, torch.Tensor]], calibration: Calibration
) -> float:
    """Max difference of calibrated probabilities, PyTorch vs ONNX fp32."""
    worst = 0.0
    for b in batches:
        with torch.no_grad():
            ref = model(b["input_ids"], b["attention_mask"])
        ids = [row[m.bool()].tolist() for row, m in zip(b["input_ids"], b["attention_mask"], strict=True)]
        s32, _, _ = fp32.run(ids)
        p_ref = severity_probabilities(ref.severity.numpy(), calibration)
        p32 = severity_probabilities(s32, calibration)
        worst = max(worst, float(np.abs(p_ref - p32).max()))
    return worst


def dev_outputs(engine: TextEngine, dev: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per dev row, the engine's text-level severity and native logits, and the normalised text."""
    sev, nat, norms = [], [], []
    for start in tqdm(range(0, len(dev), 256), desc="dev outputs", unit="batch", leave=False, mininterval=5):
        raw = engine.infer([str(r["text"]) for r in dev[start : start + 256]])
        s, n = engine.text_logits(raw)
        sev.append(s)
        nat.append(n)
        norms += [x.text for x in raw.norms]
    return np.concatenate(sev), np.concatenate(nat), norms


def calibrate_engine(engine: TextEngine, dev: list[dict[str, Any]], cfg: ExportTextConfig) -> Calibration:
    """Fit the calibration of an exported ONNX file on its own dev outputs: temperatures, thresholds (F1 rule,
    then the under-rating rule when configured), the native heads' decision offsets, and the band decision's
    band calibration then review threshold (vicas.band) for the policy's targets."""
    from training.calibration import (
        calibrate,
        fit_band_calibration,
        fit_native_offsets,
        fit_review,
        known_band_rows,
        native_labels_of,
    )
    from training.text.dataset import severity_targets

    sev, nat, _ = dev_outputs(engine, dev)
    t = np.stack([severity_targets(r["labels"])[0] for r in dev])
    m = np.stack([severity_targets(r["labels"])[1] for r in dev])
    policy = load_policy()
    calibration = calibrate(sev, t, m, cfg.recall_first, cfg.max_under_rating, policy)
    calibration.native_offsets = fit_native_offsets(nat, native_labels_of(dev), NATIVE_HEADS)
    full = known_band_rows(dev)
    probs = severity_probabilities(sev[full], calibration)
    true_sev = [{c: int(dev[i]["labels"][c][0]) for c in CATEGORIES} for i in full]
    calibration = fit_band_calibration(probs, true_sev, calibration, policy)
    return fit_review(probs, true_sev, calibration, policy)


SHARE_GRID = np.round(np.linspace(0.0, 1.0, 11), 2)


def fit_share(model: np.ndarray, ngram: np.ndarray, y: np.ndarray, default: float) -> float:
    """The n-grams' share w in `(1 - w) * model + w * ngram` (both already on calibrated scales) whose mix,
    after its own temperature, has the lowest log-loss on dev; `default` when either class has < 10 rows."""
    from training.calibration import fit_temperature, log_loss

    if min(y.sum(), len(y) - y.sum()) < 10:
        return default
    losses = []
    for w in SHARE_GRID:
        z = (1 - w) * model + w * ngram
        losses.append(log_loss(z / fit_temperature(z, y), y))
    return float(SHARE_GRID[int(np.argmin(losses))])


def fit_stacking(
    engine: TextEngine, ngram: NgramModel, dev: list[dict[str, Any]], weight: float, per_output: bool = True
) -> Stacking:
    """Scales that put the encoder's and the n-gram model's outputs on calibrated scales, then mix them.

    Per severity column and one-logit native head, each model gets a temperature fitted on dev (log-loss,
    on the rows that annotate it) and, with `per_output`, the n-grams' share is fitted there too (the two
    models are not equally good at every category); multi-class heads mix log-probabilities as they are,
    at `weight`.
    """
    from training.calibration import fit_temperature
    from training.text.dataset import severity_targets

    sev, nat, norms = dev_outputs(engine, dev)
    scores = ngram.scores(norms)
    n_sev = len(CATEGORIES) * 3
    t = np.stack([severity_targets(r["labels"])[0] for r in dev]).reshape(len(dev), -1)
    m = np.stack([severity_targets(r["labels"])[1] for r in dev]).reshape(len(dev), -1)
    model_cols = np.concatenate([sev.reshape(len(dev), -1), nat], axis=1)
    model_t, ngram_t = np.ones(model_cols.shape[1]), np.ones(model_cols.shape[1])
    shares = np.full(model_cols.shape[1], weight)

    def fit_column(col: int, rows: np.ndarray, y: np.ndarray) -> None:
        model_t[col] = fit_temperature(model_cols[rows, col], y)
        ngram_t[col] = fit_temperature(scores[rows, col], y)
        if per_output:
            a, b = model_cols[rows, col] / model_t[col], scores[rows, col] / ngram_t[col]
            shares[col] = fit_share(a, b, y, weight)

    for col in range(n_sev):
        keep = np.flatnonzero(m[:, col] > 0)
        fit_column(col, keep, t[keep, col])
    start = n_sev
    for head, n in NATIVE_HEADS.items():
        idx = np.array([i for i, r in enumerate(dev) if head in r.get("native", {})], dtype=int)
        if n == 1 and len(idx):
            fit_column(start, idx, np.array([float(dev[i]["native"][head]) for i in idx]))
        start += n
    return Stacking(
        ngram_file=NGRAM_FILE,
        ngram_weight=weight,
        ngram_weights=[round(float(w), 2) for w in shares] if per_output else [],
        model_scale=[round(float((1 - w) / v), 6) for w, v in zip(shares, model_t, strict=True)],
        ngram_scale=[round(float(w / v), 6) for w, v in zip(shares, ngram_t, strict=True)],
    )


def export_ngram(baseline_path: Path, dev: list[dict[str, Any]], out: Path, tolerance: float) -> NgramModel:
    """The baseline as `ngram.npz`; fails when its numpy scores drift from scikit-learn's on dev."""
    from training.text.baseline import to_ngram_model

    baseline = joblib.load(baseline_path)
    ngram = to_ngram_model(baseline)
    ngram.save(out / NGRAM_FILE)
    ngram = NgramModel.load(out / NGRAM_FILE)
    norms = [str(r["norm"]) for r in dev[:256]]
    sev, _ = baseline.logits(norms, normalized=True)
    diff = float(np.abs(ngram.scores(norms)[:, : sev[0].size] - sev.reshape(len(norms), -1)).max())
    if diff > tolerance:
        raise ExportParityError(f"the n-gram model's scores differ from the baseline's by {diff:.6f}")
    return ngram


def macro_f1_of(engine: TextEngine, rows: list[dict[str, object]]) -> float:
    """Presence macro-F1 of an exported model on prepared rows (masked like evaluation)."""
    from training.metrics import presence_metrics
    from training.text.dataset import severity_targets

    preds = engine.classify([str(r["text"]) for r in rows], with_evidence=False)
    pred = np.array([[int(p.severities[c] > 0) for c in CATEGORIES] for p in preds])
    t = np.stack([severity_targets(r["labels"])[0][:, 0] for r in rows])  # type: ignore[arg-type]
    m = np.stack([severity_targets(r["labels"])[1][:, 0] for r in rows])  # type: ignore[arg-type]
    return float(presence_metrics(pred, t, m)["macro"]["f1"])


def f1_rows(dev: list[dict[str, object]], n: int, seed: int) -> list[dict[str, object]]:
    """Every own-corpus dev row plus a seeded sample of public dev rows."""
    own = [r for r in dev if r["source"] == "own"]
    rest = [r for r in dev if r["source"] != "own"]
    rng = np.random.default_rng(seed)
    pick: list[int] = (
        rng.choice(len(rest), size=min(len(rest), max(0, n - len(own))), replace=False).tolist() if rest else []
    )
    return own + [rest[i] for i in sorted(pick)]


def export(
    cfg: ExportTextConfig,
    trained: Path,
    data: Path,
    out: Path,
    base_model: str,
    baseline: Path | None = None,
    diacritics: Path | None = None,
) -> Manifest:
    """Export, calibrate and check the trained model into `out`; the manifest is written last, when it passed."""
    # the version names the inputs (code, params, files), so re-exporting the same inputs gives the same one
    made = input_version(
        "export_text",
        {"export_text": cfg.model_dump(mode="json"), "base_model": base_model},
        {
            "trained": trained,
            "train": data / "train.jsonl",
            "dev": data / "dev.jsonl",
            "baseline": baseline if cfg.ngram_weight > 0 else None,
            "diacritics": diacritics,
        },
    )
    exported_at = created_at()
    steps = tqdm(total=7, desc="export_text", unit="step")  # each step takes minutes on the full dev split
    steps.set_postfix_str("ONNX fp32")
    model, tokenizer = load_trained(trained)
    out.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = out / "model.onnx", out / "model.int8.onnx"
    export_onnx(model, fp32_path, cfg.opset)
    model.eval()  # the exporter can leave modules in training mode (dropout on): parity needs eval
    steps.update()
    steps.set_postfix_str("int8")
    quantize_int8(fp32_path, int8_path, cfg)
    for path in (fp32_path, int8_path):  # the file says what it is, even without its manifest
        stamp_onnx(path, onnx_props(f"{MODEL_NAME}@{made.version}", cfg.opset))
    steps.update()
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    shutil.copy(trained / "calibration.json", out / "calibration.json")
    if diacritics is not None:  # before any dev pass: calibration sees unaccented dev texts as serving will
        shutil.copy(diacritics, out / DIACRITICS_FILE_NAME)
    training = json.loads((trained / "training.json").read_text()) if (trained / "training.json").exists() else {}
    training.pop("history", None)

    digest = hashlib.sha256()
    for name in ("train.jsonl", "dev.jsonl"):
        if (data / name).exists():
            digest.update(sha256_file(data / name).encode())
    data_version = digest.hexdigest()[:16]

    stacking: Stacking | None = None
    libraries = library_versions()

    def manifest(parity: dict[str, float]) -> Manifest:
        files = ["model.onnx", "model.int8.onnx", "tokenizer.json", "calibration.json", "calibration.int8.json"]
        files += [NGRAM_FILE] if stacking else []
        files += [DIACRITICS_FILE_NAME] if diacritics is not None else []
        return Manifest(
            name=MODEL_NAME,
            version=made.version,
            kind="text",
            created_at=exported_at,
            base_model=base_model,
            files={f: sha256_file(out / f) for f in files},
            default_onnx="model.int8.onnx" if cfg.serve_int8 else "model.onnx",
            calibrations={"model.onnx": "calibration.json", "model.int8.onnx": "calibration.int8.json"},
            categories=list(CATEGORIES),
            native_heads=dict(NATIVE_HEADS),
            max_length=int(training.get("max_length", cfg.max_length)),
            special_ids=read_special_ids(out / "tokenizer.json"),
            normalizer=normalizer_fingerprint(),
            parity=parity,
            training=training,
            data_version=data_version,
            policy_version=load_policy().version,
            stacking=stacking,
            diacritics_file=DIACRITICS_FILE_NAME if diacritics is not None else None,
            version_inputs=made.parts,
            libraries=libraries,
        )

    # each ONNX file gets its own calibration, fitted on its own dev outputs (int8 shifts probabilities a
    # little); the training calibration stands in meanwhile, so the engine can load the folder
    shutil.copy(out / "calibration.json", out / "calibration.int8.json")
    manifest(parity={}).write(out)
    dev = load_rows(data / "dev.jsonl")
    steps.set_postfix_str("n-gram stacking")
    if cfg.ngram_weight > 0:
        if baseline is None:
            raise ValueError("export_text.ngram_weight > 0 needs the baseline model (--baseline)")
        ngram = export_ngram(baseline, dev, out, cfg.fp32_tolerance)
        engine = TextEngine(out, "model.onnx", check_files=False)
        stacking = fit_stacking(engine, ngram, dev, cfg.ngram_weight, cfg.fit_ngram_weights)
        manifest(parity={}).write(out)
    steps.update()
    for onnx_file, cal_file in (("model.onnx", "calibration.json"), ("model.int8.onnx", "calibration.int8.json")):
        steps.set_postfix_str(f"calibrate {onnx_file}")
        fitted = calibrate_engine(TextEngine(out, onnx_file, check_files=False), dev, cfg)
        (out / cal_file).write_text(fitted.model_dump_json(indent=2), encoding="utf-8")
        steps.update()
    manifest(parity={}).write(out)
    steps.set_postfix_str("parity and int8 gate")
    enc = encode_rows(dev[: cfg.parity_examples], tokenizer, cfg.max_length)
    batches = [collate(enc[i : i + 16], int(tokenizer.pad_token_id)) for i in range(0, len(enc), 16)]
    calibration = Calibration.model_validate_json((out / "calibration.json").read_text())
    fp32, int8 = TextEngine(out, "model.onnx"), TextEngine(out, "model.int8.onnx")
    diff = parity_report(model, fp32, batches, calibration)
    rows = f1_rows(dev, cfg.f1_rows, seed=13)
    f1_32, f1_8 = macro_f1_of(fp32, rows), macro_f1_of(int8, rows)
    report = {
        "max_prob_diff_fp32_vs_torch": round(diff, 6),
        "dev_macro_f1_fp32": round(f1_32, 4),
        "dev_macro_f1_int8": round(f1_8, 4),
        "int8_macro_f1_drop_points": round(100 * (f1_32 - f1_8), 3),
        "rows": len(rows),
    }
    problems = []
    if diff > cfg.fp32_tolerance:
        problems.append(f"ONNX fp32 differs from PyTorch by {diff:.6f} (tolerance {cfg.fp32_tolerance})")
    report["int8_gate_passed"] = float(report["int8_macro_f1_drop_points"] <= cfg.int8_max_f1_drop)
    if cfg.serve_int8 and report["int8_macro_f1_drop_points"] > cfg.int8_max_f1_drop:
        problems.append(
            f"int8 loses {report['int8_macro_f1_drop_points']} macro-F1 points on dev "
            f"(at most {cfg.int8_max_f1_drop}); set export_text.serve_int8: false or retrain"
        )
    steps.update()
    if problems:
        steps.close()
        raise ExportParityError("export parity check failed: " + "; ".join(problems))
    final = manifest(report)
    steps.set_postfix_str("model card")
    from training.text.model_card import write_export_card

    write_export_card(final, out)
    final.write(out)
    steps.update()
    steps.close()
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export the trained text model to ONNX (fp32 + int8) with a manifest.")
    parser.add_argument("--params", default="params.yaml", help="params file (sections 'export_text', 'pretrained')")
    parser.add_argument("--trained", default="models/text_torch", type=Path)
    parser.add_argument("--data", default="data/prepared", type=Path)
    parser.add_argument("--out", default="models/text", type=Path)
    parser.add_argument(
        "--baseline", default="models/baseline/baseline.joblib", type=Path, help="n-gram model stacked in"
    )
    parser.add_argument(
        "--diacritics", type=Path, help="diacritics restorer (diacritics stage) to ship and put in front of the model"
    )
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "export_text", ExportTextConfig)
    from training.config import PretrainedConfig

    base = load_section(args.params, "pretrained", PretrainedConfig).base_model
    m = export(cfg, args.trained, args.data, args.out, base, args.baseline, args.diacritics)
    sizes = {f: round((args.out / f).stat().st_size / 1e6, 1) for f in ("model.onnx", "model.int8.onnx")}
    print(json.dumps({"version": m.version, "parity": m.parity, "size_mb": sizes}, indent=2))


if __name__ == "__main__":
    main()
