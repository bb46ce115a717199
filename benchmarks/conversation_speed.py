"""Per-message latency of live conversations against a single text, through the API in process.

    python benchmarks/conversation_speed.py --model models/text --conversation-model models/conversation \\
        --data data/own/conversations --requests 300

Sends the same number of single texts (`POST /v1/classify`) and live messages
(`POST /v1/conversations/{id}/messages`, conversations of the authored test split replayed message by
message, windows growing to 60 messages), one at a time, and prints p50/p99 of each and their ratio (the
issue's target: live p99 <= 2 x single-text p99 on 2 cores). The result cache is off so every text is scored.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from serving.api import create_app
from serving.config import Settings
from training.text.conversations import load_conversations, split_of
from vicas.conversation import ConversationModel


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/text"))
    parser.add_argument("--conversation-model", type=Path, default=Path("models/conversation"))
    parser.add_argument("--data", type=Path, default=Path("data/own/conversations"))
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    rows = [r for r in load_conversations(args.data) if split_of(r["id"]) == "test"]
    messages = [(r["id"], m, r.get("participants")) for r in rows for m in r["messages"]][: args.requests]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            model_dir=args.model,
            database_url=f"sqlite:///{tmp}/bench.db",
            spool_dir=Path(tmp) / "spool",
            require_api_key=False,
            cache_items=0,
            ocr=False,
            image_model_dir=None,
        )
        app = create_app(settings, conversation_model=ConversationModel.load(args.conversation_model))
        single, live = [], []
        with TestClient(app) as client:
            for _ in range(5):  # warm-up
                client.post("/v1/classify", json={"text": "xin chào"})
            seen: set[str] = set()
            for conv_id, message, participants in messages:
                start = time.perf_counter()
                client.post("/v1/classify", json={"text": message["text"]}).raise_for_status()
                single.append(time.perf_counter() - start)
                body = {"sender": message["sender"], "text": message["text"]}
                if conv_id not in seen:
                    body["participants"] = {
                        k: {f: v for f, v in p.items() if f in ("age", "role")} for k, p in (participants or {}).items()
                    }
                    seen.add(conv_id)
                start = time.perf_counter()
                client.post(f"/v1/conversations/{conv_id}/messages", json=body).raise_for_status()
                live.append(time.perf_counter() - start)
    rows_out = [("single text", single), ("live message", live)]
    print("| request | n | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, values in rows_out:
        print(f"| {name} | {len(values)} | {1000 * _p(values, 50):.1f} | {1000 * _p(values, 99):.1f} |")
    print(f"live p99 / single p99 = {_p(live, 99) / _p(single, 99):.2f} (target <= 2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
