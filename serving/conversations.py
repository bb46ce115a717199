"""Live conversations: partners that moderate chat send messages as they come and get the current risk.

Each conversation keeps a bounded window (the latest `MAX_MESSAGES` messages, with each message's stage
scores, so a new message costs one pass of the stage tagger) that expires `ttl` seconds after its last
message. In process memory by default (a replica sees the messages sent to it), in Redis when
VICAS_REDIS_URL is set (every replica and worker sees the whole conversation). Windows hold message texts:
they live only as long as the TTL, and conversations are keyed per partner.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from vicas.conversation import MAX_MESSAGES, STAGES, Conversation, Message


@dataclass
class Window:
    senders: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    participants: dict[str, dict[str, object]] = field(default_factory=dict)
    flagged: bool = False  # stored for review once, when it first crossed the threshold

    def add(self, sender: str, text: str, probs: np.ndarray) -> None:
        self.senders.append(sender)
        self.texts.append(text)
        self.probs.append([round(float(p), 5) for p in probs])
        del self.senders[:-MAX_MESSAGES], self.texts[:-MAX_MESSAGES], self.probs[:-MAX_MESSAGES]

    def conversation(self) -> Conversation:
        return Conversation([Message(a, t) for a, t in zip(self.senders, self.texts, strict=True)], self.participants)

    def prob_array(self) -> np.ndarray:
        return np.array(self.probs, dtype=np.float32).reshape(-1, len(STAGES))


class MemoryWindows:
    """Windows in this process, least recently used dropped beyond `capacity`, expired after `ttl`."""

    def __init__(self, ttl: float, capacity: int = 50_000) -> None:
        self.ttl, self.capacity = ttl, capacity
        self._items: OrderedDict[str, tuple[float, Window]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Window:
        now = time.monotonic()
        with self._lock:
            found = self._items.get(key)
            if found is None or now - found[0] > self.ttl:
                return Window()
            return found[1]

    def put(self, key: str, window: Window) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), window)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class RedisWindows:
    """Windows in Redis (one JSON value per conversation, expiring), shared by every replica."""

    def __init__(self, url: str, ttl: float, prefix: str = "vicas:conv:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.ttl, self.prefix = ttl, prefix
        self._fallback = MemoryWindows(ttl)  # while Redis does not answer

    def get(self, key: str) -> Window:
        try:
            raw = self._redis.get(self.prefix + key)
        except Exception:
            return self._fallback.get(key)
        return Window(**json.loads(raw)) if raw else Window()

    def put(self, key: str, window: Window) -> None:
        data = json.dumps(window.__dict__, ensure_ascii=False)
        try:
            self._redis.set(self.prefix + key, data, ex=max(1, int(self.ttl)))
        except Exception:
            self._fallback.put(key, window)


def make_windows(redis_url: str | None, ttl: float) -> MemoryWindows | RedisWindows:
    return RedisWindows(redis_url, ttl) if redis_url else MemoryWindows(ttl)


class WindowLocks:
    """Striped locks: messages of one conversation are handled in order (per process), without a lock kept per
    conversation."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [asyncio.Lock() for _ in range(stripes)]

    def of(self, key: str) -> asyncio.Lock:
        return self._locks[int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % len(self._locks)]
