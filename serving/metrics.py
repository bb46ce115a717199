"""Prometheus metrics of the API, correct with one worker or many.

With several worker processes (`vicas serve --workers N`) a scrape reaches one of them; prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `vicas serve` before the workers start) has each
process write its values to files there and the answering worker reads them all, so every scrape sees the
whole service. Without that variable, one process's own registry is served.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)
NO_PARTNER = "-"  # unkeyed routes (health, console) and requests refused before the key was known


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "vicas_requests", "HTTP requests answered", ["route", "method", "status", "partner"], registry=r
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "time to answer an HTTP request",
            ["route", "method"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.items = Counter("vicas_items_classified", "items classified", ["partner"], registry=r)
        self.images = Counter("vicas_images_classified", "images read (OCR, visual model)", registry=r)
        self.bands = Counter("vicas_items_by_band", "items classified, by band", ["band"], registry=r)
        self.flagged = Counter("vicas_flagged_items", "flagged items, stored or spooled", ["outcome"], registry=r)
        self.rate_limited = Counter("vicas_rate_limited", "429 answers", ["partner"], registry=r)
        self.cache_hits = Counter("vicas_cache_hits", "results served from a cache", ["cache"], registry=r)
        self.spooled = Gauge(
            "vicas_spooled_items", "flagged items waiting in the spool", registry=r, multiprocess_mode="max"
        )
        self.model_info = Gauge(
            "vicas_model_info",
            "1 for the models and policy answering (several label sets while workers swap)",
            ["text_model", "image_model", "policy"],
            registry=r,
            multiprocess_mode="max",
        )
        self._serving: tuple[str, str, str] | None = None

    def serving(self, text_model: str, image_model: str | None, policy: str) -> None:
        """Record which models answer now (after start and after every swap)."""
        labels = (text_model, image_model or "none", policy)
        if self._serving == labels:
            return
        if self._serving is not None:
            self.model_info.labels(*self._serving).set(0)
        self.model_info.labels(*labels).set(1)
        self._serving = labels

    def exposition(self) -> bytes:
        """The text format of every worker's metrics (multiprocess mode) or of this process's."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
