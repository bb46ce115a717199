"""`diacritics` stage: learn the diacritics restorer from the training split and measure it on dev.

The restorer (`vicas.diacritics`) is shipped in the exported text model and put
in front of it for texts typed without diacritics. Measured here on unaccented
copies of dev texts: the share of syllables restored exactly as written, and of
texts restored without a single error.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from tqdm import tqdm

from training.config import DiacriticsConfig, load_section
from training.text.dataset import load_rows
from vicas.diacritics import FILE_NAME, DiacriticsRestorer, accented_share, is_unaccented, syllables_of
from vicas.normalize import fold_diacritics


def measure(restorer: DiacriticsRestorer, texts: list[str]) -> dict[str, float]:
    """Restore unaccented copies of accented texts; compare syllable by syllable with what was written."""
    n_syllables = correct = plain_correct = exact_texts = n_texts = 0
    start = time.perf_counter()
    for text in tqdm(texts, desc="restore dev", unit="text", mininterval=5):
        if is_unaccented(text) or accented_share(text)[0] == 0:
            continue  # written without diacritics: nothing to compare with
        plain = fold_diacritics(text)
        restored = restorer.restore(plain)
        n_texts += 1
        exact_texts += restored == text
        for w, g, p in zip(syllables_of(text), syllables_of(restored), syllables_of(plain), strict=True):
            n_syllables += 1
            correct += w == g
            plain_correct += w == p  # what leaving the text unaccented gets right
    seconds = time.perf_counter() - start
    return {
        "texts": n_texts,
        "syllables": n_syllables,
        "syllable_accuracy": round(correct / max(1, n_syllables), 4),
        "unrestored_accuracy": round(plain_correct / max(1, n_syllables), 4),
        "text_exact": round(exact_texts / max(1, n_texts), 4),
        "ms_per_text": round(1000 * seconds / max(1, n_texts), 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--data", default="data/prepared", type=Path, help="folder with train.jsonl and dev.jsonl")
    parser.add_argument("--out", default="models/diacritics", type=Path, help=f"folder for {FILE_NAME}")
    parser.add_argument("--metrics", default="metrics/diacritics.json", type=Path)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "diacritics", DiacriticsConfig)
    for split in ("train", "dev"):
        if not (args.data / f"{split}.jsonl").exists():
            raise SystemExit(f"{args.data / f'{split}.jsonl'} is missing: run `dvc repro prepare` first")

    train = [str(r["norm"]) for r in load_rows(args.data / "train.jsonl")]  # prepare's normalised text
    # counting the n-grams of every training text takes a while on the full data: show it
    counting = tqdm(train, desc="count syllable n-grams", unit="text", mininterval=5)
    restorer = DiacriticsRestorer.fit(counting, cfg.min_count, cfg.discount)
    args.out.mkdir(parents=True, exist_ok=True)
    restorer.save(args.out / FILE_NAME)

    dev_rows = load_rows(args.data / "dev.jsonl")
    random.Random(13).shuffle(dev_rows)
    metrics = measure(restorer, [str(r["norm"]) for r in dev_rows[: cfg.eval_rows]])
    metrics |= {
        "unigrams": len(restorer.unigrams),
        "bigrams": len(restorer.bigrams),
        "trigrams": len(restorer.trigrams),
        "file_mb": round((args.out / FILE_NAME).stat().st_size / 1e6, 2),
    }
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
