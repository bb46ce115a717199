"""Train and evaluate the conversation model (grooming and sextortion over many messages).

Data: the authored conversations (data/own/conversations/*.jsonl, data card data_cards/conversations.md),
split by a seeded hash of their id: 70% train, 15% dev (the threshold), 15% test (the figures). A stage
tagger (character n-gram TF-IDF, one logistic regression per stage) learns from the messages the authors
marked as evidence for each stage; the head (a logistic regression over `vicas.conversation.window_features`)
learns from the tagger's out-of-fold scores on the training conversations, so it reads tagger outputs as
noisy as the ones it will see. The threshold is the lowest whose dev hard-negative flag rate stays within
`max_negative_rate`: children first.

    python -m training.text.conversations --data data/own/conversations --out models/conversation \\
        --metrics metrics/conversation_eval.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from tqdm import tqdm

from training.versioning import created_at, input_version
from vicas.conversation import (
    FEATURES,
    STAGES,
    Conversation,
    ConversationModel,
    Message,
    window_features,
)
from vicas.ngrams import NgramModel
from vicas.normalize import normalize_text

HARMFUL = ("grooming", "sextortion")
Row = dict[str, Any]  # one authored conversation, as in the brief


def load_conversations(folder: Path) -> list[Row]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"no conversations in {folder}: see data/own/briefs/conversations.md")
    return rows


def split_of(conv_id: str) -> str:
    bucket = int(hashlib.sha256(f"conversations:{conv_id}".encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "dev" if bucket < 85 else "test"


def harmful(row: Row) -> bool:
    return str(row.get("kind")) in HARMFUL


def as_conversation(row: Row) -> Conversation:
    return Conversation([Message(m["sender"], m["text"]) for m in row["messages"]], row.get("participants") or {})


def message_targets(row: Row) -> np.ndarray:
    """(messages, stages) 0/1: the messages the authors marked as evidence for each stage."""
    y = np.zeros((len(row["messages"]), len(STAGES)), dtype=np.int8)
    for s, stage in enumerate(STAGES):
        for i in (row.get("stages") or {}).get(stage, []):
            y[i, s] = 1
    return y


def fit_tagger(texts: list[str], y: np.ndarray, c: float) -> NgramModel:
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, lowercase=True)
    x = vec.fit_transform(texts)
    weights = np.zeros((x.shape[1], len(STAGES)), dtype=np.float32)
    bias = np.full(len(STAGES), -10.0, dtype=np.float32)
    for s in range(len(STAGES)):
        if y[:, s].min() == y[:, s].max():  # a stage with no example: never fires
            continue
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x, y[:, s])
        weights[:, s], bias[s] = lr.coef_[0], lr.intercept_[0]
    return NgramModel(dict(vec.vocabulary_), vec.idf_.astype(np.float32), weights, bias, (2, 5))


def _messages(rows: list[Row]) -> tuple[list[str], np.ndarray, np.ndarray]:
    texts, ys, groups = [], [], []
    for n, row in enumerate(rows):
        texts += [normalize_text(m["text"]) for m in row["messages"]]
        ys.append(message_targets(row))
        groups += [n] * len(row["messages"])
    return texts, np.concatenate(ys), np.array(groups)


def out_of_fold_probs(rows: list[Row], c: float, folds: int = 5) -> list[np.ndarray]:
    """Per conversation, stage probabilities from a tagger that did not see it."""
    texts, y, groups = _messages(rows)
    probs = np.zeros(y.shape, dtype=np.float32)
    splits = list(GroupKFold(n_splits=folds).split(texts, y, groups))
    for train_idx, held_idx in tqdm(splits, desc="stage tagger, out of fold", unit="fold"):
        tagger = fit_tagger([texts[i] for i in train_idx], y[train_idx], c)
        probs[held_idx] = 1 / (1 + np.exp(-tagger.scores([texts[i] for i in held_idx])))
    out, pos = [], 0
    for row in rows:
        out.append(probs[pos : pos + len(row["messages"])])
        pos += len(row["messages"])
    return out


def pick_threshold(risks: np.ndarray, labels: np.ndarray, max_negative_rate: float) -> float:
    """The lowest threshold whose flag rate on negatives stays within the budget (recall first)."""
    negatives = np.sort(risks[labels == 0])
    if len(negatives) == 0:
        return 0.5
    allowed = int(np.floor(max_negative_rate * len(negatives)))  # negatives that may sit at or above it
    return float(negatives[len(negatives) - allowed - 1] + 1e-6) if allowed < len(negatives) else 0.0


def evaluate(model: ConversationModel, rows: list[Row]) -> dict[str, object]:
    """Figures on a split: flag rates, stage presence, and how early grooming is flagged."""
    flags, truth = [], []
    by_type: dict[str, list[bool]] = defaultdict(list)
    delays, needed = [], []
    stage_hits: Counter[str] = Counter()
    stage_true: Counter[str] = Counter()
    stage_pred: Counter[str] = Counter()
    for row in tqdm(rows, desc="evaluate conversations", unit="conv"):
        risk = model.assess(as_conversation(row), prefixes=harmful(row))
        flags.append(risk.flagged)
        truth.append(harmful(row))
        by_type[str(row.get("kind"))].append(risk.flagged)
        if harmful(row):
            if risk.first_flag is not None:
                needed.append(risk.first_flag + 1)
                if isinstance(row.get("first_flag"), int):
                    delays.append(risk.first_flag - row["first_flag"])
            predicted = {e.stage for e in risk.evidence}
            for stage in STAGES:
                has = bool((row.get("stages") or {}).get(stage))
                stage_true[stage] += has
                stage_pred[stage] += stage in predicted
                stage_hits[stage] += has and stage in predicted
    f = np.array(flags)
    t = np.array(truth)
    stage_f1 = {
        s: round(2 * stage_hits[s] / (stage_true[s] + stage_pred[s]), 3) if stage_true[s] + stage_pred[s] else None
        for s in STAGES
    }
    return {
        "conversations": len(rows),
        "harmful": int(t.sum()),
        "negatives": int((~t).sum()),
        "harmful_flagged_rate": round(float(f[t].mean()), 4) if t.any() else None,
        "negative_flagged_rate": round(float(f[~t].mean()), 4) if (~t).any() else None,
        "flagged_rate_by_kind": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_type.items())},
        "messages_to_flag_median": statistics.median(needed) if needed else None,
        "flag_delay_vs_authored_median": statistics.median(delays) if delays else None,
        "flagged_by_authored_first_flag_or_earlier": round(sum(d <= 0 for d in delays) / len(delays), 4)
        if delays
        else None,
        "stage_evidence_f1": stage_f1,
    }


def train(data: Path, out: Path, metrics_path: Path, c: float, max_negative_rate: float) -> dict[str, object]:
    rows = load_conversations(data)
    splits: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        splits[split_of(row["id"])].append(row)
    train_rows, dev_rows, test_rows = splits["train"], splits["dev"], splits["test"]
    oof = out_of_fold_probs(train_rows, c)
    x = np.stack([window_features(p, as_conversation(r)) for p, r in zip(oof, train_rows, strict=True)])
    y = np.array([harmful(r) for r in train_rows], dtype=np.int8)
    head = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, y)
    texts, targets, _ = _messages(train_rows)
    tagger = fit_tagger(texts, targets, c)
    model = ConversationModel(tagger, head.coef_[0].astype(np.float32), float(head.intercept_[0]), 0.5)
    dev_risks = np.array([model.assess(as_conversation(r)).risk for r in dev_rows])
    dev_labels = np.array([harmful(r) for r in dev_rows], dtype=np.int8)
    model.threshold = pick_threshold(dev_risks, dev_labels, max_negative_rate)
    # named by its inputs (code, params, conversations), not by its output: retraining the same gives the same
    made = input_version("train_conversations", {"c": c, "max_negative_rate": max_negative_rate}, {"data": data})
    model.version = f"vicas-conversation@{made.version}"
    report = {
        "version": model.version,
        "split_sizes": {k: len(v) for k, v in sorted(splits.items())},
        "threshold": round(model.threshold, 4),
        "max_negative_rate_on_dev": max_negative_rate,
        "head_weights": {f: round(float(w), 3) for f, w in zip(FEATURES, model.coef, strict=True)},
        "dev": evaluate(model, dev_rows),
        "test": evaluate(model, test_rows),
    }
    model.save(
        out,
        {
            "trained_on": report["split_sizes"],
            "threshold_rule": f"dev negatives <= {max_negative_rate}",
            "created_at": created_at(),
            "version_inputs": made.parts,
        },
    )
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/own/conversations"))
    parser.add_argument("--out", type=Path, default=Path("models/conversation"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/conversation_eval.json"))
    parser.add_argument("--c", type=float, default=4.0, help="inverse regularisation of the stage tagger")
    parser.add_argument(
        "--max-negative-rate", type=float, default=0.02, help="hard negatives the dev threshold may flag"
    )
    args = parser.parse_args(argv)
    report = train(args.data, args.out, args.metrics, args.c, args.max_negative_rate)
    test = report["test"]
    print(json.dumps({k: test[k] for k in ("harmful_flagged_rate", "negative_flagged_rate")}, indent=2))  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
