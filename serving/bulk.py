"""Bulk scoring of a crawl on Ray Data: `vicas bulk --input PATH --output DIR`.

The input (JSONL or Parquet with `id` and `text`, `html` or `image` paths, as `vicas classify` reads) is cut
into blocks of `--block-size` rows.
Each block is scored by a Ray actor holding one ONNX Runtime session (the same exported model, engine
and policy as the API) and written atomically as `part-NNNNN.jsonl` in the output folder. A block whose
part file exists is not scored again, so an interrupted run resumes where it stopped. Runs on a local Ray
started for it, or on an existing cluster when `RAY_ADDRESS` is set (the model folder and the input must
then be readable from every node).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PART = "part-{:05d}.jsonl"


@dataclass(frozen=True)
class BulkJob:
    input: Path
    output: Path
    model: Path
    policy: Path | None = None
    block_size: int = 1000
    workers: int = 1
    batch_size: int = 64
    image_model: Path | None = None  # exported image model; images are read by OCR alone without it
    ocr: bool = True
    open_nsfw: bool = True  # the default nudity reader for photos, as in the API and `vicas classify`
    imagenet_cues: bool = True  # the image model's ImageNet cues (weapons, alcohol, slot machines)
    conversation_model: Path | None = None  # for rows with a 'conversation'; they get an error row without it
    hash_db: str | None = None  # database with the known-material hash lists, read by every actor; None: no match


def read_items(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL or Parquet file; a malformed JSONL line becomes an item that reports its error."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [dict(r) for r in pq.read_table(path).to_pylist()]
    items: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                items.append(item if isinstance(item, dict) else {"_error": "each line must be a JSON object"})
            except json.JSONDecodeError as e:
                items.append({"_error": f"line {lineno}: not valid JSON ({e.msg})"})
    return items


def pending_blocks(job: BulkJob, n_items: int) -> list[int]:
    blocks = range((n_items + job.block_size - 1) // job.block_size)
    return [b for b in blocks if not (job.output / PART.format(b)).exists()]


class BlockScorer:
    """A Ray actor: one engine (one ONNX session) scoring whole blocks."""

    def __init__(self, job: BulkJob) -> None:
        from vicas.classifier import ContentClassifier
        from vicas.engine import TextEngine
        from vicas.image_reader import build_image_reader
        from vicas.ocr import OcrConfig
        from vicas.policy import load_policy
        from vicas.visual import VisualEngine

        self.job = job
        visual = VisualEngine(job.image_model, threads=1) if job.image_model else None
        ocr = OcrConfig() if job.ocr else None
        reader = build_image_reader(visual, ocr, open_nsfw=job.open_nsfw, imagenet_cues=job.imagenet_cues, threads=1)
        from vicas.conversation import ConversationModel

        conversations = ConversationModel.load(job.conversation_model) if job.conversation_model else None
        index = None
        if job.hash_db:
            from serving.hashes import load_index

            index = load_index(job.hash_db)
        self.classifier = ContentClassifier(
            TextEngine(job.model, threads=1), reader, conversations=conversations, hash_index=index
        )
        self.policy = load_policy(job.policy)
        self.items = read_items(job.input)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        done = [self.score_block(int(b)) for b in batch["block"]]
        return {"block": batch["block"], "rows": done}

    def score_block(self, block: int) -> int:
        from vicas.classifier import ContentItem, InputLineError, parse_item, read_image_files
        from vicas.conversation import conversation_document
        from vicas.image_reader import NamedImage
        from vicas.images import ImageError
        from vicas.result import HashMatchResult, build_result

        start = block * self.job.block_size
        rows = self.items[start : start + self.job.block_size]
        keep, out = [], []
        for i, row in enumerate(rows):
            row_id = row.get("id", start + i)
            if "_error" in row:
                out.append((i, {"id": row_id, "error": row["_error"]}))
                continue
            text: str | None
            imgs: list[NamedImage]
            try:
                item = parse_item(row)
                if item.conversation is not None:
                    if self.classifier.conversations is None:
                        raise InputLineError("conversations need the conversation model (--conversation-model)")
                    text, imgs = conversation_document(item.conversation)[0], []
                else:
                    images = read_image_files(item.image_paths, self.classifier.limits)
                    text, imgs = self.classifier.resolve(ContentItem(item.text, item.html, images))
            except (InputLineError, ImageError) as e:
                out.append((i, {"id": row_id, "error": str(e)}))
                continue
            keep.append((i, row_id, item, text, imgs))
        for s in range(0, len(keep), self.job.batch_size):
            chunk = keep[s : s + self.job.batch_size]
            preds = self.classifier.predict_matched([(text, imgs) for _, _, _, text, imgs in chunk])
            for (i, row_id, item, _, imgs), (pred, matches) in zip(chunk, preds, strict=True):
                reading, version = None, self.classifier.version_for(bool(imgs))
                if item.conversation is not None:
                    pred, reading = self.classifier.read_conversation(pred, item.conversation, row_id)
                    version = f"{version}+{reading.model_version}"
                res = build_result(pred, self.policy, version, item.age, self.classifier.text.calibration)
                res.conversation = reading
                res.hash_matches = [HashMatchResult(**vars(m)) for m in matches]
                out.append((i, {"id": row_id, **res.model_dump(mode="json")}))
        out.sort(key=lambda x: x[0])
        final = self.job.output / PART.format(block)
        tmp = final.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for _, row in out:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, final)  # atomic: a part file is either complete or absent
        return len(out)


def run(job: BulkJob) -> dict[str, int]:
    """Score every pending block; returns counts of items, blocks done now and blocks skipped."""
    import ray

    job.output.mkdir(parents=True, exist_ok=True)
    n_items = len(read_items(job.input))
    pending = pending_blocks(job, n_items)
    total_blocks = (n_items + job.block_size - 1) // job.block_size
    if pending:
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            ray.init(
                address=address,
                num_cpus=None if address else job.workers,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        ds = ray.data.from_items([{"block": b} for b in pending])
        results = ds.map_batches(
            BlockScorer, fn_constructor_args=(job,), batch_size=1, concurrency=job.workers, num_cpus=1
        )
        results.materialize()
    return {
        "items": n_items,
        "blocks": total_blocks,
        "scored_now": len(pending),
        "skipped": total_blocks - len(pending),
    }


def merged_rows(output: Path) -> list[dict[str, Any]]:
    """All part files in block order (for tests and small outputs)."""
    rows: list[dict[str, Any]] = []
    for part in sorted(output.glob("part-*.jsonl")):
        rows += [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows
