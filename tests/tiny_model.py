"""A tiny end-to-end pipeline (ingest -> prepare -> train -> baseline -> export) on invented data.

Built once per test session (a 2-layer, 32-wide BERT made on the fly: seconds, not minutes) and shared
by the model-stage, CLI, notebook and API tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import joblib
import torch
import yaml
from transformers import BertConfig, BertModel

from tests.conftest import OWN_ITEMS, make_own_dir, make_source_dir
from training.config import BaselineConfig, ExportTextConfig, TrainTextConfig
from training.data import ingest, prepare
from training.text import diacritics
from training.text import export as export_text
from training.text.baseline import Baseline
from training.text.dataset import load_rows, restore_rows
from training.text.pretrained import build_tokenizer, fast_tokenizer
from training.text.train import train
from vicas.diacritics import DiacriticsRestorer

EXTRA_OWN = [
    {"id": f"x-{i}", "text": t, "labels": lab}
    for i, (t, lab) in enumerate(
        [
            ("vào link này nhận 9999 kim cương miễn phí nhập mật khẩu", {"scam": 3}),
            ("tối nay bay lắc không anh em, kẹo xịn", {"substances": 2}),
            ("hôm nay lớp mình đi tham quan bảo tàng", {}),
            ("đm thằng kia chơi game ngu vcl", {"profanity": 2, "harassment": 2}),
            ("mình không muốn sống nữa, mệt mỏi lắm rồi", {"self_harm": 2}),
            ("thử thách nín thở đến ngất đi, ai dám quay clip", {"dangerous_acts": 3}),
            ("bọn người miền đó toàn lũ mọi rợ", {"hate": 2}),
            ("chị gái xinh ship tận nơi, gái gọi giá rẻ", {"sexual": 3}),
        ]
    )
]


def make_tiny_base(folder: Path, texts: list[str]) -> Path:
    """A 2-layer BERT with a Unigram vocabulary of the fixture's words (random weights)."""
    words = sorted({w for t in texts for w in t.split()})
    chars = sorted({c for t in texts for c in t if not c.isspace()})
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁"] + [f"▁{w}" for w in words] + chars
    pieces = list(dict.fromkeys(pieces))
    scores = [0.0] * 5 + [-5.0 - 0.01 * i for i in range(len(pieces) - 5)]
    tok = build_tokenizer(pieces, scores, unk=3, bos=0, eos=2, pad=1)
    folder.mkdir(parents=True, exist_ok=True)
    fast_tokenizer(tok, pieces, 0, 2, 1, 3).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        pad_token_id=1,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


# the project's labels on a few of the invented public rows: ids, hashes and labels, as data/real_labels has them
REAL_LABELS = [
    ("vihsd", "train", 1, "đm cái game lag vl", {"profanity": 2}),  # stays in train
    ("vihsd", "train", 2, "thằng kia ngu như bò", {"harassment": 2}),  # held out: real-text test
    ("vithsd", "train", 0, "bọn miền đó toàn lừa đảo", {"hate": 1}),  # held out
    ("vihsd", "dev", 1, "con này xấu vãi", {"harassment": 2, "profanity": 1}),  # dev: tunes
    ("victsd", "train", 0, "bài viết rất hữu ích", {}),
]


def write_real_labels(path: Path) -> Path:
    from training.data.real_labels import text_hash

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"{src}-{split}-{row:05d}", "source": src, "split": split, "row": row, "sha": text_hash(text),
         "stratum": "random:" + src, "labels": labels}
        for src, split, row, text, labels in REAL_LABELS
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_pipeline(root: Path) -> dict[str, Path]:
    src = make_source_dir(root)
    own = make_own_dir(root, OWN_ITEMS + EXTRA_OWN)
    real = write_real_labels(root / "real_labels" / "labels.jsonl")
    params = {
        "ingest": {
            "source_dir": str(src),
            "sources": ["vihsd", "victsd", "vihos", "vithsd", "vispamreviews", "smishing"],
            "own_dir": str(own),
            "reviewed_dir": str(root / "reviewed"),
            "real_labels": str(real),
            "smishing_dev_fraction": 0.25,
        },
        "prepare": {"near_dup_threshold": 0.9, "own_split": {"train": 0.5, "dev": 0.25, "test": 0.25}},
        "diacritics": {"min_count": 1, "eval_rows": 100},
    }
    pfile = root / "params.yaml"
    pfile.write_text(yaml.safe_dump(params, allow_unicode=True))
    ingest.main(["--params", str(pfile), "--out", str(root / "interim")])
    prepare.main(
        [
            "--params",
            str(pfile),
            "--interim",
            str(root / "interim"),
            "--out",
            str(root / "prepared"),
            "--stats",
            str(root / "stats"),
            "--metrics",
            str(root / "counts.json"),
        ]
    )
    prepared = root / "prepared"
    texts = [r["norm"] for s in ("train", "dev", "test") for r in load_rows(prepared / f"{s}.jsonl")]
    base = make_tiny_base(root / "base", [*texts, "passage: query:"])
    cfg = TrainTextConfig(
        num_layers=None,
        max_steps=8,
        eval_every=4,
        batch_size=4,
        max_length=64,
        source_weights={"own": 3.0},
        watch_rows=50,
        max_minutes=5,
    )
    diacritics.main(
        ["--params", str(pfile), "--data", str(prepared), "--out", str(root / "diacritics"), "--metrics",
         str(root / "diacritics.json")]
    )  # fmt: skip
    restorer_file = root / "diacritics" / "diacritics.json.gz"
    restorer = DiacriticsRestorer.load(restorer_file)
    train(cfg, base, prepared, root / "text_torch", restorer=restorer)
    bl = Baseline(BaselineConfig(max_features=5000), restorer)
    bl.fit(restore_rows(load_rows(prepared / "train.jsonl"), restorer))

    (root / "baseline").mkdir()
    joblib.dump(bl, root / "baseline" / "baseline.joblib")
    export_cfg = ExportTextConfig(
        max_length=64, parity_examples=16, f1_rows=50, int8_max_f1_drop=100.0, serve_int8=True, ngram_weight=0.5
    )
    baseline = root / "baseline" / "baseline.joblib"
    export_text.export(
        export_cfg, root / "text_torch", prepared, root / "text", "tiny-test-bert", baseline, restorer_file
    )
    return {
        "root": root,
        "prepared": prepared,
        "model": root / "text",
        "trained": root / "text_torch",
        "baseline": root / "baseline" / "baseline.joblib",
        "src": src,
    }


TINY_IMAGE_PARAMS = {
    "image_data": {"n_train": 48, "n_dev": 24, "n_test": 24, "size": 64, "seed": 5},
    "train_image": {"image_size": 64, "epochs": 1, "batch_size": 16, "max_minutes": 5, "threads": 2},
    "export_image": {"calibration_images": 8, "parity_images": 8, "int8_max_f1_drop": 100.0},
    "evaluate_image": {"bins": 5},
}


def build_tiny_image_pipeline(root: Path) -> dict[str, Path]:
    """The image stages as `dvc repro` runs them, on a tiny generated set: seconds, with the real backbone."""
    import yaml

    from training.images import evaluate as evaluate_image
    from training.images import export as export_image
    from training.images import synth as image_synth
    from training.images import train as train_image

    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(TINY_IMAGE_PARAMS), encoding="utf-8")
    images = root / "images"
    image_synth.main(["--params", str(params), "--out", str(images), "--stats", str(root / "stats.md")])
    labels = images / "labels.csv"
    train_image.main(
        ["--params", str(params), "--images", str(labels), "--out", str(root / "image_torch"), "--no-live"]
    )
    export_image.main(
        [
            "--params",
            str(params),
            "--trained",
            str(root / "image_torch"),
            "--images",
            str(labels),
            "--out",
            str(root / "image"),
        ]
    )
    evaluate_image.main(
        [
            "--params", str(params), "--model", str(root / "image"), "--images", str(labels),
            "--metrics", str(root / "image_eval.json"), "--plots", str(root / "plots"), "--card", str(root / "card.md"),
        ]
    )  # fmt: skip
    return {
        "params": params,
        "labels": labels,
        "trained": root / "image_torch",
        "model": root / "image",
        "metrics": root / "image_eval.json",
        "plots": root / "plots",
        "card": root / "card.md",
    }


# --- conversations: an invented grooming script and a classroom one, varied a little ------------------------
GROOMING_SCRIPT = [
    ("b", "em hoc lop may roi", "trust_age_probing"),
    ("a", "lop 6 a", None),
    ("b", "anh nap kim cuong cho em nhe, em choi hay lam", "trust_age_probing"),
    ("b", "dung ke voi bo me nhe, bi mat cua hai anh em", "isolation_secrecy"),
    ("b", "ket ban zalo voi anh di, o day nhieu nguoi doc", "private_channel"),
    ("a", "dạ", None),
    ("b", "gui anh xem anh rieng tu cua em duoc khong", "sexual_request"),
    ("b", "cuoi tuan anh qua truong don em di choi nhe", "meeting_request"),
]
CLASSROOM_SCRIPT = [
    ("t", "cac em nop bai tap toan truoc thu sau nhe", None),
    ("a", "da vang co", None),
    ("t", "em nao chua vao nhom zalo cua lop thi nhan co", None),
    ("a", "em vao roi a", None),
    ("t", "nho mang ao dong phuc cho buoi chup anh ky yeu", None),
    ("a", "da em nho roi", None),
]


def conversation_row(cid: str, grooming: bool, rng: random.Random) -> dict:
    script = GROOMING_SCRIPT if grooming else CLASSROOM_SCRIPT
    from vicas.conversation import STAGES

    messages, stages = [], {s: [] for s in STAGES}
    for i, (sender, text, stage) in enumerate(script):
        messages.append({"sender": sender, "text": text + rng.choice(["", " :)", " nha", " ạ", "!!"]), "minutes": i})
        if stage:
            stages[stage].append(i)
    senders = {m["sender"] for m in messages}
    participants = {s: {"role": "child", "age": 12} if s == "a" else {"role": "adult"} for s in senders}
    return {
        "id": cid,
        "register": "messaging",
        "participants": participants,
        "messages": messages,
        "kind": "grooming" if grooming else "negative:teacher_student",
        "stages": stages,
        "first_flag": 3 if grooming else None,
        "labels": {"child_sexual": 3} if grooming else {},
    }


def build_tiny_conversations(root: Path) -> dict[str, object]:
    """80 invented conversations and the conversation model trained on them (a second)."""
    from training.text.conversations import train

    rng = random.Random(7)
    rows = [conversation_row(f"g{i}", True, rng) for i in range(40)]
    rows += [conversation_row(f"n{i}", False, rng) for i in range(40)]
    (root / "data").mkdir(parents=True)
    (root / "data" / "all.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    report = train(root / "data", root / "model", root / "metrics.json", c=4.0, max_negative_rate=0.05)
    return {"model": root / "model", "metrics": root / "metrics.json", "report": report}
