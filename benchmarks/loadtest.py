"""Load test of the API on loopback, beside raw ONNX Runtime throughput on the same texts.

Bounded in requests and time, talks only to 127.0.0.1. Starts `vicas serve` itself on a free port
with a throwaway SQLite database and API key, then measures:

1. raw: the exported model through the engine in-process, batches of 64 (the ceiling);
2. batch endpoint: /v1/classify/batch with 64 items per call, 2 calls in flight;
3. single short texts at concurrency 1: latency percentiles;
4. single texts at concurrency 32: latency percentiles, timeouts.

    python benchmarks/loadtest.py --model models/text --data data/prepared/dev.jsonl --out reports/loadtest.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def load_texts(path: Path, n: int) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) >= n:
                break
    return texts


def percentiles(latencies: list[float]) -> dict[str, float]:
    a = np.array(latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
        "n": len(a),
    }


def raw_throughput(model: Path, texts: list[str]) -> float:
    from vicas.engine import TextEngine

    engine = TextEngine(model)
    engine.classify(texts[:64])  # warm up
    start = time.perf_counter()
    for i in range(0, len(texts), 64):
        engine.classify(texts[i : i + 64])
    return len(texts) / (time.perf_counter() - start)


async def batch_throughput(client: httpx.AsyncClient, texts: list[str], in_flight: int = 2) -> float:
    chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)

    async def worker() -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            r = await client.post("/v1/classify/batch", json={"items": [{"text": t} for t in chunk]})
            r.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(texts) / (time.perf_counter() - start)


async def single_latency(
    client: httpx.AsyncClient, texts: list[str], concurrency: int, timeout: float
) -> dict[str, Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for t in texts:
        queue.put_nowait(t)
    latencies: list[float] = []
    errors = {"timeouts": 0, "non_200": 0}

    async def worker() -> None:
        while not queue.empty():
            text = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/classify", json={"text": text}, timeout=timeout)
                if r.status_code != 200:
                    errors["non_200"] += 1
            except httpx.TimeoutException:
                errors["timeouts"] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {**percentiles(latencies), **errors, "throughput_per_s": round(len(latencies) / elapsed, 1)}


def start_server(model: Path, port: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "VICAS_MODEL_DIR": str(model),
        "VICAS_DATABASE_URL": f"sqlite:///{workdir / 'load.db'}",
        "VICAS_SPOOL_DIR": str(workdir / "spool"),
        "VICAS_CACHE_ITEMS": "0",
        "VICAS_DEFAULT_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    key = subprocess.run(
        [sys.executable, "-m", "vicas.cli", "keys", "create", "--name", "loadtest"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vicas.cli", "serve", "--host", HOST, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return proc, key
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready in 60 s")


async def run_http(port: int, key: str, texts: list[str], short: list[str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", headers=headers, limits=limits, timeout=30
    ) as client:
        await single_latency(client, short[:20], 1, 5)  # warm up
        out: dict[str, Any] = {}
        out["batch_endpoint_per_s"] = round(await batch_throughput(client, texts), 1)
        out["single_c1"] = await single_latency(client, short[:300], 1, 5)
        out["single_c32"] = await single_latency(client, short[:1500], 32, 5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/text"))
    parser.add_argument("--data", type=Path, default=Path("data/prepared/dev.jsonl"))
    parser.add_argument("--texts", type=int, default=2048, help="texts for the throughput runs")
    parser.add_argument("--out", type=Path, default=Path("reports/loadtest.json"))
    args = parser.parse_args()
    texts = load_texts(args.data, args.texts * 3)
    short = [t for t in texts if len(t.split()) <= 20][:2000]
    texts = texts[: args.texts]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "texts": len(texts),
        "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "raw_onnx_per_s": round(raw_throughput(args.model, texts), 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc, key = start_server(args.model, port, Path(tmp))
        try:
            report.update(asyncio.run(run_http(port, key, texts, short)))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report["batch_share_of_raw"] = round(report["batch_endpoint_per_s"] / report["raw_onnx_per_s"], 3)
    report["targets"] = {
        "batch >= 60% of raw": report["batch_share_of_raw"] >= 0.6,
        "c1 p50 < 20 ms": report["single_c1"]["p50_ms"] < 20,
        "c1 p99 < 60 ms": report["single_c1"]["p99_ms"] < 60,
        "c32 no timeouts": report["single_c32"]["timeouts"] == 0,
        "c32 p99 < 500 ms": report["single_c32"]["p99_ms"] < 500,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
