"""DVC stage `train_text`: fine-tune the encoder with the contract and auxiliary heads.

CPU-friendly by default (params.yaml `train_text`): the vocabulary is trimmed to
the pieces the data uses, only the first layers are kept, sequences are capped
and batched by length. The budget is a number of steps, so a run does not depend
on what else the machine is doing; `max_minutes` is only a safety stop. Early
stopping watches dev macro-F1 on a subset of dev. The run is recorded with dvclive
(`train/*` every `log_every` steps, `train_eval/dev_subset_macro_f1_presence` at each
evaluation, each at the step it was measured), so `dvc exp run -S train_text.lr=...`
and `dvc exp show` work. The same module runs under `accelerate launch` on several
GPUs. The calibration written here is the PyTorch model's; export fits each ONNX
file's own.

Resume: at each evaluation the run's state (weights, optimiser, scheduler, random
generators: `accelerate` `save_state`; the step, the best weights so far) goes to a
checkpoint folder that is no DVC output (`models/checkpoints/train_text`). A run
stopped there, by a kill or by the safety stop, continues from its last evaluation
when started again on the same inputs (code, params, data: training/versioning.py);
a finished run removes it.

The trained folder loads with `transformers`: `AutoModel.from_pretrained(folder)` is
the encoder, `AutoTokenizer.from_pretrained(folder)` its tokenizer; the heads are
beside them in `heads.safetensors` (the model is a custom head over a transformers
encoder, not a transformers model class).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from training.calibration import calibrate, fit_native_offsets
from training.config import TrainTextConfig, load_section
from training.text.dataset import (
    Encoded,
    collate,
    encode_rows,
    load_rows,
    restore_rows,
    sequential_batches,
    unaccented_copies,
    weighted_batches,
)
from training.text.model import NATIVE_HEADS, VIHOS_CATEGORIES, HarmClassifier, ModelOutput, native_slices
from training.text.vocab import trim_vocabulary
from training.versioning import input_version
from vicas.diacritics import DiacriticsRestorer
from vicas.taxonomy import CATEGORIES

VIHOS_IDX = [CATEGORIES.index(c) for c in VIHOS_CATEGORIES]
HEADS_FILE = "heads.safetensors"  # read by training/text/export.py load_trained
DEV_METRIC = "train_eval/dev_subset_macro_f1_presence"  # not evaluate's model/dev_macro_f1_calibrated
CHECKPOINT_POINTER = "latest"
# params a resumed run may change: the safety stop (raise it and continue) and the CPU threads
RESUME_FREE = frozenset({"max_minutes", "threads"})


def native_class_weights(data: list[Encoded], cap: float) -> dict[str, torch.Tensor]:
    """Per native head, inverse-frequency class weights (capped): macro-F1 benchmarks reward minority classes."""
    out: dict[str, torch.Tensor] = {}
    for name, n in NATIVE_HEADS.items():
        ys = np.array([d.native[name] for d in data if name in d.native])
        if len(ys) == 0:
            continue
        k = max(n, 2)
        counts = np.bincount(ys, minlength=k).astype(np.float64)
        w = np.clip(counts.sum() / np.maximum(counts, 1.0) / k, 1.0 / cap, cap)
        out[name] = torch.tensor(w[1] / w[0] if n == 1 else w, dtype=torch.float32)
    return out


def compute_loss(
    out: ModelOutput,
    batch: dict[str, torch.Tensor],
    pos_weight: torch.Tensor,
    weights: dict[str, float],
    native_weights: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked multi-task loss: severity thresholds, MIL on token evidence, ViHOS spans, native labels."""
    sev_mask = batch["sev_mask"]
    sev = F.binary_cross_entropy_with_logits(out.severity, batch["sev_target"], pos_weight=pos_weight, reduction="none")
    sev_loss = (sev * sev_mask).sum() / sev_mask.sum().clamp(min=1.0)

    # multiple-instance: a category is present iff one of its tokens is evidence for it
    bag = torch.logsumexp(out.tokens, dim=1) - math.log(out.tokens.shape[1])  # soft max over tokens
    pres_mask = sev_mask[..., 0]
    mil = F.binary_cross_entropy_with_logits(bag, batch["sev_target"][..., 0], reduction="none")
    mil_loss = (mil * pres_mask).sum() / pres_mask.sum().clamp(min=1.0)

    tok_mask = batch["token_mask"]
    offensive = torch.logsumexp(out.tokens[..., VIHOS_IDX], dim=-1)
    tok = F.binary_cross_entropy_with_logits(offensive, batch["token_target"], reduction="none")
    tok_loss = (tok * tok_mask).sum() / tok_mask.sum().clamp(min=1.0)

    nat_loss = out.native.new_zeros(())
    slices = native_slices()
    n_heads = 0
    for name, n in NATIVE_HEADS.items():
        y = batch[f"native_{name}"]
        keep = y >= 0
        if not keep.any():
            continue
        logits = out.native[keep][:, slices[name]]
        if n == 1:
            pw = native_weights.get(name) if native_weights else None
            nat_loss = nat_loss + F.binary_cross_entropy_with_logits(logits[:, 0], y[keep].float(), pos_weight=pw)
        else:
            cw = native_weights.get(name) if native_weights else None
            nat_loss = nat_loss + F.cross_entropy(logits, y[keep], weight=cw)
        n_heads += 1
    if n_heads:
        nat_loss = nat_loss / n_heads
    total = (
        weights["severity"] * sev_loss
        + weights["mil"] * mil_loss
        + weights["evidence"] * tok_loss
        + weights["native"] * nat_loss
    )
    parts = {
        "severity": sev_loss.item(),
        "mil": mil_loss.item(),
        "evidence": tok_loss.item(),
        "native": nat_loss.item(),
    }
    return total, parts


def positive_weights(data: list[Encoded], cap: float) -> torch.Tensor:
    """Per category and threshold: negatives / positives among annotated examples, capped."""
    t = np.stack([d.sev_target for d in data])
    m = np.stack([d.sev_mask for d in data])
    pos = (t * m).sum(0)
    neg = ((1 - t) * m).sum(0)
    return torch.from_numpy(np.clip(neg / np.maximum(pos, 1.0), 1.0, cap).astype(np.float32))


@torch.no_grad()
def predict(
    model: HarmClassifier, data: list[Encoded], pad_id: int, batch_size: int = 64, desc: str = "predict"
) -> dict[str, Any]:
    """Severity logits (N, C, 3), native logits (N, K) and per-item token logits (list of (T, C))."""
    model.eval()
    n = len(data)
    sev = np.zeros((n, len(CATEGORIES), 3), dtype=np.float32)
    nat = np.zeros((n, sum(NATIVE_HEADS.values())), dtype=np.float32)
    toks: list[np.ndarray] = [np.zeros(0)] * n
    for idx, items in tqdm(list(sequential_batches(data, batch_size)), desc=desc, leave=False, mininterval=5):
        b = collate(items, pad_id)
        out = model(b["input_ids"], b["attention_mask"])
        sev[idx] = out.severity.float().numpy()
        nat[idx] = out.native.float().numpy()
        tk = out.tokens.float().numpy()
        for j, i in enumerate(idx):
            toks[i] = tk[j, : len(items[j].input_ids)]
    model.train()
    return {"severity": sev, "native": nat, "tokens": toks}


def macro_f1_presence(logits: np.ndarray, data: list[Encoded]) -> float:
    """Dev macro-F1 over categories on 'severity >= 1' at probability 0.5 (early stopping signal)."""
    t = np.stack([d.sev_target[:, 0] for d in data])
    m = np.stack([d.sev_mask[:, 0] for d in data])
    p = logits[..., 0] > 0
    f1s = []
    for c in range(len(CATEGORIES)):
        keep = m[:, c] > 0
        if t[keep, c].sum() == 0:
            continue
        tp = float((p[keep, c] & (t[keep, c] > 0)).sum())
        fp = float((p[keep, c] & (t[keep, c] == 0)).sum())
        fn = float((~p[keep, c] & (t[keep, c] > 0)).sum())
        f1s.append(2 * tp / max(1.0, 2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def early_stopping_subset(dev: list[Encoded], rows: int, seed: int) -> list[Encoded]:
    """Every own-corpus dev row (all categories annotated) plus a seeded sample of the rest."""
    own = [d for d in dev if d.source in ("own", "reviewed")]
    rest = [d for d in dev if d.source not in ("own", "reviewed")]
    rng = np.random.default_rng(seed)
    k = max(0, min(len(rest), rows - len(own)))
    picked: list[int] = rng.choice(len(rest), size=k, replace=False).tolist() if k else []
    return own + [rest[i] for i in sorted(picked)]


def run_fingerprint(cfg: TrainTextConfig, base_dir: Path, prepared: Path, diacritics: Path | None) -> str:
    """What a checkpoint must have been made from to be resumed: this code, these params (less `RESUME_FREE`),
    this base model, data and restorer."""
    params = cfg.model_dump(mode="json", exclude=set(RESUME_FREE))
    inputs = {f"data:{s}": prepared / f"{s}.jsonl" for s in ("train", "dev", "test")}
    return input_version("train_text", params, {"base": base_dir, "diacritics": diacritics, **inputs}).version


def resumable(checkpoint_dir: Path | None, fingerprint: str) -> dict[str, Any] | None:
    """The last checkpoint's state when it was made from the same inputs; None otherwise (a fresh start)."""
    if checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT_POINTER).is_file():
        return None
    folder = checkpoint_dir / (checkpoint_dir / CHECKPOINT_POINTER).read_text(encoding="utf-8").strip()
    try:
        state: dict[str, Any] = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint:
        tqdm.write(f"train_text: the checkpoint in {checkpoint_dir} was made from other inputs; starting over")
        return None
    return {**state, "folder": folder}


def save_checkpoint(
    accelerator: Accelerator, checkpoint_dir: Path, state: dict[str, Any], best: dict[str, torch.Tensor] | None
) -> None:
    """Everything needed to go on from this step, in a new folder; the pointer moves to it only once it is
    complete, so a run killed while saving resumes from the previous one."""
    from safetensors.torch import save_file

    folder = checkpoint_dir / f"step-{state['step']:07d}"
    accelerator.save_state(str(folder / "accelerate"))
    if accelerator.is_main_process:
        if best is not None:
            save_file(best, str(folder / "best.safetensors"))
        (folder / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        tmp = checkpoint_dir / f"{CHECKPOINT_POINTER}.tmp"
        tmp.write_text(folder.name, encoding="utf-8")
        os.replace(tmp, checkpoint_dir / CHECKPOINT_POINTER)
        for old in checkpoint_dir.glob("step-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def trim_live_history(live: Any, last_step: int) -> None:
    """Drop dvclive rows logged after the checkpoint a run resumes from (they are logged again)."""
    import csv

    for tsv in Path(live.plots_dir, "metrics").rglob("*.tsv"):
        with tsv.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        col = rows[0].index("step")
        kept = [rows[0]] + [r for r in rows[1:] if int(r[col]) <= last_step]
        with tsv.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f, delimiter="\t").writerows(kept)


def train(
    cfg: TrainTextConfig,
    base_dir: Path,
    prepared: Path,
    out_dir: Path,
    live: Any | None = None,
    restorer: DiacriticsRestorer | None = None,
    checkpoint_dir: Path | None = None,
    diacritics_file: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluating on a dev subset every `eval_every` steps; with `checkpoint_dir`, checkpoint there at each
    evaluation and resume from the last one made from the same inputs (`diacritics_file`: the restorer's file,
    part of those inputs)."""
    fingerprint = run_fingerprint(cfg, base_dir, prepared, diacritics_file) if checkpoint_dir is not None else ""
    resume = resumable(checkpoint_dir, fingerprint)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads) if cfg.threads else None
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    prep_started = time.time()

    train_rows = load_rows(prepared / "train.jsonl", cfg.limit_train)
    dev_rows = load_rows(prepared / "dev.jsonl", cfg.limit_dev)
    # before trimming the vocabulary, so the pieces of unaccented words are kept too
    train_rows = train_rows + unaccented_copies(train_rows, cfg.augment_no_diacritics, cfg.seed)
    # the served model restores diacritics first (vicas.engine): train on the same view of each text
    train_rows, dev_rows = restore_rows(train_rows, restorer), restore_rows(dev_rows, restorer)
    tokenizer: Any = AutoTokenizer.from_pretrained(base_dir)
    model = HarmClassifier.from_base(str(base_dir), num_layers=cfg.num_layers, dropout=cfg.dropout)
    if cfg.trim_vocab:
        texts = [r["norm"] for r in train_rows + dev_rows]
        test_path = prepared / "test.jsonl"
        if test_path.exists():
            texts += [r["norm"] for r in restore_rows(load_rows(test_path), restorer)]
        tokenizer = trim_vocabulary(model.encoder, tokenizer, texts)
    if cfg.freeze_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)

    train_data = encode_rows(train_rows, tokenizer, cfg.max_length)
    native_weights = native_class_weights(train_data, cfg.pos_weight_cap)
    dev_data = encode_rows(dev_rows, tokenizer, cfg.max_length)
    watch_data = early_stopping_subset(dev_data, cfg.watch_rows, cfg.seed)
    pad_id = int(tokenizer.pad_token_id)
    pos_weight = positive_weights(train_data, cfg.pos_weight_cap)
    # the safety stop counts training time only: data loading, diacritics restoration and encoding above
    # depend on the data's size, not on the step budget
    started = time.time()
    prep_minutes = round((started - prep_started) / 60, 2)

    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.") and p.requires_grad]
    enc_params = [p for n, p in model.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg.lr}, {"params": head_params, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.max_steps * cfg.warmup_ratio), cfg.max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    pos_weight = pos_weight.to(accelerator.device)

    best_f1, best_state, best_step, bad_evals = -1.0, None, 0, 0
    history: list[dict[str, float]] = []
    step = 0
    if resume is not None:
        from safetensors.torch import load_file

        # weights, optimiser, scheduler and random generators as they were after the checkpoint's step
        accelerator.load_state(str(resume["folder"] / "accelerate"))
        step, best_f1, best_step = resume["step"], resume["best_f1"], resume["best_step"]
        bad_evals, history = resume["bad_evals"], resume["history"]
        if (resume["folder"] / "best.safetensors").exists():
            best_state = load_file(str(resume["folder"] / "best.safetensors"))
        if live is not None:
            trim_live_history(live, step)
        tqdm.write(f"train_text: resuming from the checkpoint at step {step} ({resume['folder']})")
    resumed_from = step
    # from_pretrained leaves the encoder in eval mode (dropout off) until the first evaluation's model.train():
    # train mode from the first step, so a resumed run trains as the run it continues
    model.train()
    # each process of a multi-GPU run (`accelerate launch`) draws its own batches: with one process the
    # offset is 0 and the run is the single-process run; a resumed run skips the batches already trained on
    seed = cfg.seed + accelerator.process_index
    batches = islice(weighted_batches(train_data, cfg.source_weights, cfg.batch_size, cfg.max_steps, seed), step, None)
    progress = tqdm(total=cfg.max_steps, initial=step, desc="train_text", mininterval=10)
    stop_reason = "max_steps"

    def checkpoint() -> None:
        if checkpoint_dir is not None:
            state = {"fingerprint": fingerprint, "step": step, "best_f1": best_f1, "best_step": best_step}
            save_checkpoint(
                accelerator, checkpoint_dir, state | {"bad_evals": bad_evals, "history": history}, best_state
            )

    for items in batches:
        batch = {k: v.to(accelerator.device) for k, v in collate(items, pad_id).items()}
        out = model(batch["input_ids"], batch["attention_mask"])
        loss, parts = compute_loss(out, batch, pos_weight, cfg.loss_weights, native_weights)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        progress.update(1)
        if live is not None and step % cfg.log_every == 0:
            live.step = step  # before logging: each value is recorded at the step it was measured
            live.log_metric("train/loss", loss.item())
            for k, v in parts.items():
                live.log_metric(f"train/{k}", v)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            unwrapped = accelerator.unwrap_model(model)
            preds = predict(unwrapped, watch_data, pad_id, desc="dev")
            f1 = macro_f1_presence(preds["severity"], watch_data)
            history.append({"step": step, "dev_subset_macro_f1_presence": f1, "loss": loss.item()})
            if live is not None:
                live.step = step
                live.log_metric(DEV_METRIC, f1)
                live.next_step()  # writes the summary and plots for `dvc exp show` while the run goes on
            progress.set_postfix(dev_f1=round(f1, 4))
            improved = f1 > best_f1 + 1e-4
            if improved:
                best_f1, best_step, bad_evals = f1, step, 0
                best_state = {k: v.detach().cpu().clone() for k, v in unwrapped.state_dict().items()}
            else:
                bad_evals += 1
            checkpoint()
            if not improved and bad_evals >= cfg.patience:
                stop_reason = f"early stopping: no dev gain in {cfg.patience} evaluations"
                break
        if (time.time() - started) / 60 > cfg.max_minutes:
            # a safety stop, not the plan: a stopped run depends on machine load, so say so loudly
            stop_reason = f"safety stop after {cfg.max_minutes} minutes at step {step} of {cfg.max_steps}"
            tqdm.write(f"train_text: {stop_reason}; the machine is slower or busier than the profile assumes")
            if step % cfg.eval_every:
                checkpoint()  # run it again to go on from here
            break
    progress.close()

    final = accelerator.unwrap_model(model)
    if best_state is not None:
        final.load_state_dict(best_state)
    preds = predict(final, dev_data, pad_id, desc="calibrate")
    calibration = calibrate(
        preds["severity"],
        np.stack([d.sev_target for d in dev_data]),
        np.stack([d.sev_mask for d in dev_data]),
        cfg.recall_first,
    )
    calibration.native_offsets = fit_native_offsets(preds["native"], [d.native for d in dev_data], NATIVE_HEADS)

    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {"steps": step, "process": accelerator.process_index}
    from safetensors.torch import save_file

    # `from_pretrained` reads the folder: the encoder (config.json, model.safetensors) and its tokenizer; the
    # heads beside them
    final.encoder.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    heads = {k: v.detach().cpu().contiguous() for k, v in final.state_dict().items() if not k.startswith("encoder.")}
    save_file(heads, str(out_dir / HEADS_FILE))
    (out_dir / "calibration.json").write_text(calibration.model_dump_json(indent=2), encoding="utf-8")
    if checkpoint_dir is not None and not stop_reason.startswith("safety stop"):
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # done: a safety stop keeps it, to go on from there
    summary = {
        "steps": step,
        "resumed_from_step": resumed_from,
        "best_step": best_step,
        "best_dev_subset_macro_f1_presence": round(best_f1, 4),
        "stop_reason": stop_reason,
        "minutes": round((time.time() - started) / 60, 2),
        "data_minutes": prep_minutes,
        "train_examples": len(train_data),
        "dev_examples": len(dev_data),
        "vocab_size": int(final.encoder.config.vocab_size),
        "num_layers": int(final.encoder.config.num_hidden_layers),
        "max_length": cfg.max_length,
        "history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fine-tune the text model (contract heads + auxiliary heads).")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'train_text')")
    parser.add_argument("--base", default="models/pretrained", type=Path, help="pretrained stage output")
    parser.add_argument("--data", default="data/prepared", type=Path, help="prepare stage output")
    parser.add_argument("--out", default="models/text_torch", type=Path, help="trained model folder")
    parser.add_argument("--no-live", action="store_true", help="do not record the run with dvclive")
    parser.add_argument(
        "--diacritics", type=Path, help="diacritics restorer (diacritics stage): train on texts as serving reads them"
    )
    parser.add_argument(
        "--checkpoints",
        type=Path,
        help="checkpoint folder, outside the DVC outputs (default: checkpoints/<out name> beside --out)",
    )
    parser.add_argument("--fresh", action="store_true", help="start over: delete the checkpoints instead of resuming")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "train_text", TrainTextConfig)
    restorer = DiacriticsRestorer.load(args.diacritics) if args.diacritics else None
    checkpoints: Path = args.checkpoints or args.out.parent / "checkpoints" / args.out.name
    if args.fresh and os.environ.get("RANK", "0") == "0":
        shutil.rmtree(checkpoints, ignore_errors=True)
    # under `accelerate launch` only the main process (RANK 0) records the run
    if args.no_live or os.environ.get("RANK", "0") != "0":
        summary = train(cfg, args.base, args.data, args.out, None, restorer, checkpoints, args.diacritics)
    else:
        from dvclive import Live

        # a resumed training goes on with the run's dvclive history instead of starting a new one
        resuming = resumable(checkpoints, run_fingerprint(cfg, args.base, args.data, args.diacritics)) is not None
        with Live(dir="dvclive/train_text", save_dvc_exp=True, dvcyaml=None, resume=resuming) as live:
            summary = train(cfg, args.base, args.data, args.out, live, restorer, checkpoints, args.diacritics)
            live.summary.update({k: v for k, v in summary.items() if k != "history"})
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
