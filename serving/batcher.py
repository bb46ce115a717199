"""Micro-batching across concurrent callers, a result cache by content hash, and atomic model swaps.

Requests wait at most `wait_ms` for company; the batch then runs in a worker thread (tokenisation and
ONNX Runtime both off the event loop). Swapping the engine replaces one reference: a batch in flight
finishes on the engine it started with, the next one uses the new engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vicas.engine import TextEngine, TextPrediction
from vicas.inference import Evidence
from vicas.normalize import normalize
from vicas.taxonomy import CATEGORIES


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], TextPrediction] = OrderedDict()

    def get(self, key: tuple[str, str]) -> TextPrediction | None:
        item = self._data.get(key)
        if item is not None:
            self._data.move_to_end(key)
        return item

    def put(self, key: tuple[str, str], value: TextPrediction) -> None:
        if self.size <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class SharedCache:
    """Results by model version and content hash in Redis, so replicas do not score the same content twice."""

    def __init__(self, url: str, ttl_seconds: int = 86400) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl = ttl_seconds

    def get(self, key: tuple[str, str], text: str) -> TextPrediction | None:
        try:
            raw = self._redis.get(f"vicas:pred:{key[0]}:{key[1]}")
        except Exception:
            return None
        if raw is None:
            return None
        d = json.loads(raw)
        return TextPrediction(
            normalize(text),
            d["severities"],
            d["scores"],
            np.zeros((len(CATEGORIES), 3)),
            [Evidence(**e) for e in d["evidence"]],
            d["native"],
            d["windows"],
        )

    def put(self, key: tuple[str, str], pred: TextPrediction) -> None:
        d = {
            "severities": pred.severities,
            "scores": pred.scores,
            "evidence": [asdict(e) for e in pred.evidence],
            "native": pred.native,
            "windows": pred.windows,
        }
        with contextlib.suppress(Exception):
            self._redis.set(f"vicas:pred:{key[0]}:{key[1]}", json.dumps(d, ensure_ascii=False), ex=self.ttl)


class QueueFull(RuntimeError):
    """More texts wait for the model than the queue holds: the caller should answer 503 with Retry-After."""


class MicroBatcher:
    def __init__(
        self,
        engine: TextEngine,
        max_batch: int = 32,
        wait_ms: float = 3.0,
        cache_items: int = 20000,
        shared: SharedCache | None = None,
        max_queue: int = 512,
        on_cache_hit: Callable[[str], None] | None = None,
    ):
        self.engine = engine
        self.on_cache_hit = on_cache_hit or (lambda _cache: None)  # "local" or "shared", for the metrics
        self.max_queue = max_queue
        self.shared = shared
        self.shared_hits = 0
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self.cache = LRU(cache_items)
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[TextPrediction]]] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vicas-infer")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.cache_hits = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def version(self) -> str:
        return self.engine.version

    async def classify(self, texts: list[str]) -> list[TextPrediction]:
        assert self._queue is not None, "MicroBatcher.start() was not awaited"
        if self._queue.qsize() + len(texts) > self.max_queue:  # refuse whole requests, before queueing any text
            raise QueueFull(f"{self._queue.qsize()} texts wait for the model; the queue holds {self.max_queue}")
        loop = asyncio.get_running_loop()
        version = self.engine.version
        results: list[TextPrediction | None] = []
        waits: list[tuple[int, asyncio.Future[TextPrediction]]] = []
        for i, text in enumerate(texts):
            key = (version, content_hash(text))
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                self.on_cache_hit("local")
                results.append(hit)
                continue
            if self.shared is not None:
                hit = await asyncio.to_thread(self.shared.get, key, text)
                if hit is not None:
                    self.shared_hits += 1
                    self.on_cache_hit("shared")
                    self.cache.put(key, hit)
                    results.append(hit)
                    continue
            fut: asyncio.Future[TextPrediction] = loop.create_future()
            await self._queue.put((text, fut))
            waits.append((i, fut))
            results.append(None)
        for i, fut in waits:
            results[i] = await fut
        return [r for r in results if r is not None]

    async def _worker(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.wait
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(
                        self._queue.get_nowait()
                        if remaining <= 0
                        else await asyncio.wait_for(self._queue.get(), remaining)
                    )
                except (TimeoutError, asyncio.QueueEmpty):
                    break
            engine = self.engine
            texts = [t for t, _ in batch]
            try:
                preds = await loop.run_in_executor(self._executor, engine.classify, texts)
            except Exception as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            for (text, fut), pred in zip(batch, preds, strict=True):
                self.cache.put((engine.version, content_hash(text)), pred)
                if self.shared is not None:
                    await asyncio.to_thread(self.shared.put, (engine.version, content_hash(text)), pred)
                if not fut.done():
                    fut.set_result(pred)

    async def swap(self, model_dir: Path, threads: int | None = None) -> str:
        """Load and verify a new model off the event loop, then switch to it; raises if it is refused."""
        loop = asyncio.get_running_loop()
        new = await loop.run_in_executor(None, lambda: TextEngine(model_dir, threads=threads))
        self.engine = new
        return new.version
