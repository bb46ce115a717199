"""DVC stage `ingest`: every source through its adapter into data/interim/<source>.jsonl."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from training.data.adapters import PUBLIC_ADAPTERS, Record, read_own, read_reviewed, read_smishing
from training.config import IngestConfig, load_section
from training.data.real_labels import apply_real_labels, load_real_labels


def write_records(records: Iterable[Record], path: Path, desc: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for rec in tqdm(records, desc=desc, unit=" rows", leave=False, mininterval=2):
            f.write(rec.to_json() + "\n")
            n += 1
    return n


def ingest(cfg: IngestConfig, out_dir: Path) -> dict[str, int]:
    """Run every configured adapter; returns rows written per source (and real-labelled rows per split)."""
    counts: dict[str, int] = {}
    real = load_real_labels(cfg.real_labels) if cfg.real_labels is not None else {}
    joined: Counter[str] = Counter()
    for name in cfg.sources:
        if name == "smishing":
            rows = read_smishing(cfg.source_dir, cfg.smishing_dev_fraction, cfg.seed)
        else:
            rows = PUBLIC_ADAPTERS[name](cfg.source_dir)
        counts[name] = write_records(apply_real_labels(rows, real, joined), out_dir / f"{name}.jsonl", name)
    missing = len(real) - sum(joined.values())
    if missing:
        print(f"warning: {missing} real labels name rows that no configured source gave (source disabled?)")
    counts.update({f"real_labels {k}": v for k, v in sorted(joined.items())})
    counts["own"] = write_records(read_own(cfg.own_dir), out_dir / "own.jsonl", "own")
    counts["reviewed"] = write_records(read_reviewed(cfg.reviewed_dir), out_dir / "reviewed.jsonl", "reviewed")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Read every data source and map its labels onto the contract.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ingest')")
    parser.add_argument("--out", default="data/interim", type=Path, help="folder for <source>.jsonl")
    parser.add_argument(
        "--download",
        action="store_true",
        help="first fetch the public sources from their GitHub origins into ingest.source_dir "
        "(machines with internet; test splits are only used to remove their texts)",
    )
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "ingest", IngestConfig)
    if args.download:
        from training.data.download import download

        for name, n in download(cfg.source_dir, cfg.sources).items():
            print(f"downloaded {name}: {n} rows")
    counts = ingest(cfg, args.out)
    for name, n in counts.items():
        print(f"{name:>14}: {n:6d} rows")


if __name__ == "__main__":
    main()
