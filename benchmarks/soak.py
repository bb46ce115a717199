"""Soak test: two API processes sharing PostgreSQL and Redis, under mixed and hostile load, through faults.

Loopback only, bounded in time (--minutes) and in count (--max-requests). The script starts, on free ports
of 127.0.0.1 and in temporary folders:

- a private PostgreSQL server (initdb + pg_ctl, as the `postgres` user when run as root),
- a private redis-server (no persistence),
- two `python -m vicas.cli serve` processes sharing both, each with its own spool folder,

creates three partner keys (one with a low rate limit, to see 429s), then runs a bounded number of client
threads that send a mix of ordinary and harmful-looking Vietnamese texts, small PNG images (base64 JSON and
multipart), HTML pages, batches, verdict look-ups and hostile inputs (oversized text, malformed JSON, long
runs of one character, a PNG header claiming huge dimensions, bad keys...) to both processes, while:

    minute 0.3 x M   PostgreSQL is stopped (pg_ctl -m immediate stop)
    minute 0.4 x M   PostgreSQL is started again
    minute 0.6 x M   Redis is killed (SIGKILL) and started again on the same port a few seconds later

(M = --minutes, 10 by default: database down from minute 3 to 4, Redis restarted at minute 6). Phases:
before, db_down, after_db, redis_restart (a window after the kill: 30 s in a 10-minute run), after.

Every item sent carries a unique `url` (https://siteK.example.vn/soak/N/I), which the service keeps with a
flagged item: each row of flagged_items is matched to the answer that flagged it. Other VICAS_* variables
of the calling environment reach both processes; those set by the options below win.

At the end it waits for both spools to drain (/readyz `spooled` == 0), reads table flagged_items, and
checks every item the answers say was stored for review (band >= --flag-band, band C, or needs_review)
against the rows: nothing lost, nothing twice. It prints Markdown tables, writes a JSON report (--out) and
exits 0 when every check passes, 1 when one fails (server logs and their tracebacks are then printed and
kept next to the report), 2 when the services could not be started, 130 on Ctrl-C. Every process and
temporary folder it created is removed on exit, Ctrl-C and errors included.

    python benchmarks/soak.py                       # the full run: models/text, 10 minutes
    python benchmarks/soak.py --tiny --minutes 2    # anywhere: builds a tiny model first (about 20 s)
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import importlib
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import warnings
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _local_services import ApiProcess, LocalPostgres, LocalRedis, ServiceError

REPO = Path(__file__).resolve().parents[1]
PHASES = ("before", "db_down", "after_db", "redis_restart", "after")
BANDS = ("P", "K", "T13", "T16", "T18", "C")
TAG = re.compile(r"/soak/(\d+)/(\d+)")

# ---------------------------------------------------------------------------------------------- content

ORDINARY = [
    "hôm nay cả nhà đi công viên chơi vui lắm",
    "mai được nghỉ học rồi yeah",
    "bài viết rất hữu ích, cảm ơn tác giả nhiều",
    "Công an triệt phá đường dây đánh bạc qua mạng",
    "quán phở đầu ngõ hôm nay đông khách quá",
    "lớp mình đi tham quan bảo tàng lịch sử vào thứ bảy",
    "giá xăng giảm nhẹ từ 15 giờ chiều nay",
    "hàng đẹp giao nhanh, đóng gói cẩn thận, sẽ ủng hộ shop tiếp",
    "troi hom nay dep qua, chieu nay di da bong khong",
    "Thủ tướng chủ trì hội nghị về phát triển kinh tế số",
    "công thức làm bánh flan đơn giản tại nhà cho bé",
    "đội tuyển Việt Nam thắng 2-0 trong trận giao hữu tối qua",
]
HARMFUL = [
    "nạp thẻ nhận quà ngay hôm nay, gửi mã thẻ cào cho admin để nhận 500k",
    "TK cua ban bi khoa, xac minh tai http://vn-bank7.xyz trong 24h",
    "tặng 9999 kim cương free fire, nhập tài khoản mật khẩu tại đây",
    "nạp 50k nhận 100k tài xỉu uy tín, link ở bio",
    "đm thằng kia chơi game ngu vcl",
    "con mụ đó mất dạy, đồ điên",
    "bọn người miền đó toàn lũ mọi rợ",
    "mình không muốn sống nữa, mệt mỏi lắm rồi",
    "em học lớp mấy, gửi anh ảnh nhé, đừng kể với mẹ",
    "tối nay bay lắc không anh em, kẹo xịn",
    "bé Na lớp 3A trường Hoa Sen nhà ở ngõ 12, số điện thoại 0912 345 678",
    "thử thách nín thở đến ngất đi, ai dám quay clip",
]
IMAGE_WORDS = ["NAP THE NHAN QUA", "KHUYEN MAI 50%", "xin chao cac ban", "TAI XIU UY TIN", "bao tang lich su"]


def png_bytes(width: int, height: int, words: str, seed: int) -> bytes:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (rng.randrange(200, 256), rng.randrange(200, 256), 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle((2, 2, width - 3, height - 3), outline=(rng.randrange(256), 0, 0))
    draw.text((8, height // 2 - 6), words, fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG signature and header claiming width x height pixels, followed by a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)  # a sliver of the rows the header promises
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Req:
    """One request to send: what it is, and which statuses are correct answers to it."""

    kind: str
    method: str
    path: str
    expect: frozenset[int]
    json: Any = None
    content: bytes | None = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    tags: list[str] = field(default_factory=list)  # the URL of each item to classify, in order


class Content:
    """Builds the request mix; one instance per client thread (its own random generator)."""

    # kind -> weight; hostile kinds are refused (4xx) except the long runs, which are valid texts
    WEIGHTS: ClassVar[dict[str, float]] = {
        "text_ordinary": 22,
        "text_harmful": 20,
        "image_json": 6,
        "image_multipart": 4,
        "html": 8,
        "batch": 10,
        "verdict_lookup": 3,
        "hostile_oversized_text": 2,
        "hostile_long_run": 2,
        "hostile_malformed_json": 2,
        "hostile_invalid_utf8": 1,
        "hostile_bomb_png": 2,
        "hostile_bomb_multipart": 1,
        "hostile_bad_base64": 1,
        "hostile_bad_key": 2,
        "hostile_no_auth": 1,
        "hostile_empty_text": 1,
        "hostile_batch_too_large": 1,
        "hostile_deep_html": 1,
        "hostile_body_too_large": 0.5,
        "hostile_unknown_field": 1,
    }

    def __init__(self, rng: random.Random, images: list[bytes], max_text_chars: int, max_body: int, max_batch: int):
        self.rng = rng
        self.images = images
        self.images_b64 = [b64(i) for i in images]
        self.bomb = bomb_png()
        self.max_text_chars = max_text_chars
        self.max_body = max_body
        self.max_batch = max_batch
        self.kinds = list(self.WEIGHTS)
        self.weights = list(self.WEIGHTS.values())

    def text(self, n: int, harmful: bool | None = None) -> str:
        harmful = self.rng.random() < 0.5 if harmful is None else harmful
        t = self.rng.choice(HARMFUL if harmful else ORDINARY)
        return f"{t} #{n}" if self.rng.random() < 0.6 else t  # most unique: not all answered from the cache

    def html(self, n: int, with_image: bool) -> str:
        img = f'<img alt="banner" src="data:image/png;base64,{self.rng.choice(self.images_b64)}">' if with_image else ""
        return (
            f"<html><head><title>Tin tức {n}</title><style>p{{color:red}}</style>"
            f"<script>var x = {n};</script></head><body><h1>{self.text(n, False)}</h1>"
            f"<p>{self.text(n)}</p>{img}<p>Bình luận: {self.text(n)}</p></body></html>"
        )

    @staticmethod
    def tag(n: int, i: int = 0) -> str:
        """The URL sent with item i of request n: it identifies the item's row in flagged_items (the service
        keys rows by ids of its own, not shown in answers). Spread over 16 domains for the verdict look-ups."""
        return f"https://site{n % 16}.example.vn/soak/{n}/{i}"

    def item(self, n: int, i: int) -> dict[str, Any]:
        r = self.rng.random()
        url = self.tag(n, i)
        if r < 0.15:
            return {"html": self.html(n, self.rng.random() < 0.3), "url": url}
        if r < 0.25:
            image = {"name": "a.png", "data": self.rng.choice(self.images_b64)}
            return {"text": self.text(n), "images": [image], "url": url}
        return {"text": self.text(n), "url": url}

    def build(self, n: int) -> Req:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        ok = frozenset({200})
        bad = frozenset({422})
        big = frozenset({413})
        cls = "/v1/classify"
        url = self.tag(n)
        if kind == "text_ordinary":
            return Req(kind, "POST", cls, ok, json={"text": self.text(n, False), "url": url}, tags=[url])
        if kind == "text_harmful":
            body: dict[str, Any] = {"text": self.text(n, True), "url": url}
            if self.rng.random() < 0.3:
                body["audience_age"] = self.rng.choice([8, 13, 16, 30])
            return Req(kind, "POST", cls, ok, json=body, tags=[url])
        if kind == "image_json":
            images = [{"name": f"img{i}.png", "data": self.rng.choice(self.images_b64)} for i in range(2)]
            body = {"images": images[: self.rng.choice([1, 2])], "url": url}
            if self.rng.random() < 0.5:
                body["text"] = self.text(n)
            return Req(kind, "POST", cls, ok, json=body, tags=[url])
        if kind == "image_multipart":
            files = [("image", ("banner.png", self.rng.choice(self.images), "image/png"))]
            data = {"url": url, **({"text": self.text(n)} if self.rng.random() < 0.5 else {})}
            return Req(kind, "POST", cls, ok, data=data, files=files, tags=[url])
        if kind == "html":
            body = {"html": self.html(n, self.rng.random() < 0.4), "url": url}
            return Req(kind, "POST", cls, ok, json=body, tags=[url])
        if kind == "batch":
            items = [self.item(n, i) for i in range(self.rng.randint(2, 6))]
            return Req(kind, "POST", "/v1/classify/batch", ok, json={"items": items}, tags=[i["url"] for i in items])
        if kind == "verdict_lookup":
            back = max(1, n - self.rng.randint(1, 40))
            params = {"domain": f"site{n % 16}.example.vn"} if self.rng.random() < 0.5 else {"url": self.tag(back)}
            return Req(kind, "GET", "/v1/verdicts", frozenset({200, 404}), params=params)
        if kind == "hostile_oversized_text":
            return Req(kind, "POST", cls, big, json={"text": "lừa đảo " * (self.max_text_chars // 8 + 1), "url": url})
        if kind == "hostile_long_run":
            run = (self.rng.choice(["a", "9", "đ", "ha"]) * 30_000)[: min(30_000, self.max_text_chars)]
            return Req(kind, "POST", cls, ok, json={"text": run, "url": url}, tags=[url])
        if kind == "hostile_malformed_json":
            raw = self.rng.choice([b'{"text": "n\xe1\xba\xa1p th\xe1\xba\xbb', b"{'text': 1}", b"[1, 2", b"null", b""])
            return Req(kind, "POST", cls, bad, content=raw, headers={"content-type": "application/json"})
        if kind == "hostile_invalid_utf8":
            raw = b'{"text": "\xff\xfe\xfa"}'
            return Req(kind, "POST", cls, bad, content=raw, headers={"content-type": "application/json"})
        if kind == "hostile_bomb_png":
            return Req(kind, "POST", cls, big, json={"images": [{"name": "bomb.png", "data": b64(self.bomb)}]})
        if kind == "hostile_bomb_multipart":
            return Req(kind, "POST", cls, big, files=[("image", ("bomb.png", self.bomb, "image/png"))])
        if kind == "hostile_bad_base64":
            return Req(kind, "POST", cls, bad, json={"images": [{"data": "iVBORw0KGgo***not base64***"}]})
        if kind == "hostile_bad_key":
            headers = {"Authorization": f"Bearer vcs_{secrets.token_urlsafe(16)}"}
            return Req(kind, "POST", cls, frozenset({401}), json={"text": self.text(n), "url": url}, headers=headers)
        if kind == "hostile_no_auth":
            body = {"text": self.text(n), "url": url}
            return Req(kind, "POST", cls, frozenset({401}), json=body, headers={"Authorization": ""})
        if kind == "hostile_empty_text":
            return Req(kind, "POST", cls, bad, json={"text": " \n\t "})
        if kind == "hostile_batch_too_large":
            items = [{"text": f"x{i}"} for i in range(self.max_batch + 1)]
            return Req(kind, "POST", "/v1/classify/batch", big, json={"items": items})
        if kind == "hostile_deep_html":
            depth = 5_000
            page = "<div>" * depth + "nạp thẻ nhận quà" + "</div>" * depth
            return Req(kind, "POST", cls, frozenset({200, 413, 422}), json={"html": page, "url": url}, tags=[url])
        if kind == "hostile_body_too_large":
            raw = b'{"text": "' + b"x" * (self.max_body + 1024) + b'"}'
            return Req(kind, "POST", cls, big, content=raw, headers={"content-type": "application/json"})
        if kind == "hostile_unknown_field":
            return Req(kind, "POST", cls, bad, json={"text": self.text(n), "admin": True, "band": "P"})
        raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------- records


@dataclass
class Record:
    start: float  # seconds since the load began
    end: float
    kind: str
    partner: str
    replica: int
    status: int  # HTTP status; 0: client timeout, -1: connection error
    expect: list[int]  # the statuses that are correct answers (besides 429 and 503 during the outage)
    retry_after: str | None
    code: str | None = None  # the problem's `code` of an error answer
    tags: list[str] = field(default_factory=list)  # the URL of each item sent to classify
    items: int = 0  # items classified in a 200 answer (a batch item refused on its own is not)
    item_errors: int = 0  # batch items answered with their own error
    flagged: list[str] = field(default_factory=list)  # URLs of the items the answer says were stored for review
    error: str | None = None  # client exception, or the start of an unexpected answer's body
    after: int | None = None  # status of the request this client sent before to the same process (connection)

    @property
    def latency_ms(self) -> float:
        return (self.end - self.start) * 1000

    def expected(self, timeline: Timeline) -> bool:
        """A correct answer: one of `expect`; 429 with Retry-After (rate limit); 503 with Retry-After for a
        request in flight while the database was down (a key the process could not verify)."""
        if self.status in self.expect:
            return True
        if self.status in (429, 503) and self.retry_after:
            return self.status == 429 or timeline.in_outage(self.start, self.end)
        return False


@dataclass
class Timeline:
    """When each fault began and ended (seconds since the load began)."""

    db_stop_begin: float | None = None
    db_stop_done: float | None = None
    db_start_begin: float | None = None
    db_start_done: float | None = None
    redis_kill: float | None = None
    redis_start_done: float | None = None
    redis_window_end: float | None = None
    load_end: float | None = None

    def in_outage(self, start: float, end: float) -> bool:
        if self.db_stop_begin is None:
            return False
        until = self.db_start_done if self.db_start_done is not None else float("inf")
        return start <= until and end >= self.db_stop_begin

    def phase(self, t: float) -> str:
        if self.db_stop_begin is None or t < self.db_stop_begin:
            return "before"
        if self.db_start_done is None or t < self.db_start_done:
            return "db_down"
        if self.redis_kill is None or t < self.redis_kill:
            return "after_db"
        if self.redis_window_end is None or t < self.redis_window_end:
            return "redis_restart"
        return "after"

    def bounds(self, phase: str) -> tuple[float | None, float | None]:
        edges = {
            "before": (0.0, self.db_stop_begin),
            "db_down": (self.db_stop_begin, self.db_start_done),
            "after_db": (self.db_start_done, self.redis_kill),
            "redis_restart": (self.redis_kill, self.redis_window_end),
            "after": (self.redis_window_end, self.load_end),
        }
        return edges[phase]


def is_flagged(result: dict[str, Any], flag_band: str) -> bool:
    """The service's rule (serving.api): band >= VICAS_FLAG_BAND, band C, or needs_review."""
    band = str(result.get("band"))
    return BANDS.index(band) >= BANDS.index(flag_band) or band == "C" or bool(result.get("needs_review"))


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class Partner:
    name: str
    key: str
    rate_limit: int
    weight: float


class Load:
    """Client threads sending the mix to both replicas until told to stop or the request budget is spent."""

    def __init__(
        self, args: argparse.Namespace, urls: list[str], partners: list[Partner], images: list[bytes], t0: float
    ) -> None:
        self.args, self.urls, self.partners, self.images, self.t0 = args, urls, partners, images, t0
        self.records: list[Record] = []
        self.stop = threading.Event()
        self.timeline = Timeline()
        self._lock = threading.Lock()
        self._next = 0
        self.threads = [
            threading.Thread(target=self._client, args=(i,), name=f"client-{i}", daemon=True)
            for i in range(args.clients)
        ]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.args.max_requests:
                return None
            self._next += 1
            return self._next

    def _client(self, i: int) -> None:
        rng = random.Random(self.args.seed * 1000 + i)
        content = Content(rng, self.images, self.args.max_text_chars, self.args.max_body_bytes, self.args.max_batch)
        weights = [p.weight for p in self.partners]
        previous: dict[int, int] = {}  # replica -> status of this client's last request there (same connection)
        with httpx.Client(timeout=self.args.client_timeout) as http:
            while not self.stop.is_set():
                n = self._take()
                if n is None:
                    return
                req = content.build(n)
                partner = rng.choices(self.partners, weights)[0]
                replica = rng.randrange(len(self.urls))
                rec = self._send(http, req, partner, replica)
                rec.after = previous.get(replica)
                previous[replica] = rec.status
                self.records.append(rec)
                if self.args.think_ms:
                    time.sleep(self.args.think_ms / 1000)

    def _send(self, http: httpx.Client, req: Req, partner: Partner, replica: int) -> Record:
        headers = {"Authorization": f"Bearer {partner.key}", **req.headers}
        if headers.get("Authorization") == "":
            del headers["Authorization"]
        start = self.now()
        status, error, body, retry_after = 0, None, None, None
        try:
            r = http.request(
                req.method,
                self.urls[replica] + req.path,
                json=req.json,
                content=req.content,
                data=req.data,
                files=req.files,
                params=req.params,
                headers=headers,
            )
            status, retry_after = r.status_code, r.headers.get("retry-after")
            try:
                body = r.json()
            except ValueError:
                body = r.text[:300]
        except httpx.TimeoutException as e:
            error = f"timeout: {e.__class__.__name__}"
        except httpx.HTTPError as e:
            status, error = -1, f"{e.__class__.__name__}: {e}"[:300]
        end = self.now()
        rec = Record(start, end, req.kind, partner.name, replica, status, sorted(req.expect), retry_after)
        rec.tags, rec.error = req.tags, error
        if isinstance(body, dict) and status != 200:
            rec.code = body.get("code")
        if status == 200 and req.tags:
            results = body.get("results") if isinstance(body, dict) and req.path.endswith("/batch") else [body]
            if not isinstance(results, list) or len(results) != len(req.tags):
                rec.error = f"answer does not give one result per item: {json.dumps(body)[:200]}"
            else:  # results are in the order of the items; an item refused on its own has an `error`
                for url, res in zip(req.tags, results, strict=True):
                    if not isinstance(res, dict) or "error" in res or "band" not in res:
                        rec.item_errors += 1
                    else:
                        rec.items += 1
                        if is_flagged(res, self.args.flag_band):
                            rec.flagged.append(url)
        if status not in req.expect and error is None:
            rec.error = json.dumps(body, ensure_ascii=False)[:300] if body is not None else None
        return rec


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.array(values), q)), 1) if values else None


def summarise(records: list[Record], timeline: Timeline) -> list[dict[str, Any]]:
    rows = []
    for phase in PHASES:
        mine = [r for r in records if timeline.phase(r.start) == phase]
        lo, hi = timeline.bounds(phase)
        if not mine and lo is None:
            continue
        statuses = Counter(r.status for r in mine)
        ok_classify = [r.latency_ms for r in mine if r.status == 200 and r.items]
        window = round(hi - lo, 1) if lo is not None and hi is not None else None
        rows.append(
            {
                "phase": phase,
                "from_s": None if lo is None else round(lo, 1),
                "to_s": None if hi is None else round(hi, 1),
                "window_s": window,
                "requests": len(mine),
                "ok_200": statuses.get(200, 0),
                "errors_by_status": errors_by_status(mine),
                "unexpected": sum(1 for r in mine if not r.expected(timeline)),
                "p50_ms": percentile([r.latency_ms for r in mine], 50),
                "p99_ms": percentile([r.latency_ms for r in mine], 99),
                "classify_200_p50_ms": percentile(ok_classify, 50),
                "classify_200_p99_ms": percentile(ok_classify, 99),
                "items_classified": sum(r.items for r in mine),
                "flagged_in_answers": sum(len(r.flagged) for r in mine),
            }
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| phase | window (s) | requests | 200 | non-200 by status | unexpected | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in report["phases"]:
        window = f"{p['from_s']}-{p['to_s']}" if p["to_s"] is not None else f"{p['from_s']}-"
        errs = ", ".join(f"{k}: {v}" for k, v in p["errors_by_status"].items()) or "-"
        lines.append(
            f"| {p['phase']} | {window} | {p['requests']} | {p['ok_200']} | {errs} | {p['unexpected']} "
            f"| {p['p50_ms']} | {p['p99_ms']} |"
        )
    t = report["totals"]
    errs = ", ".join(f"{k}: {v}" for k, v in t["errors_by_status"].items()) or "-"
    lines.append(
        f"| **all** | 0-{t['duration_s']} | {t['requests']} | {t['ok_200']} | {errs} | {t['unexpected']} "
        f"| {t['p50_ms']} | {t['p99_ms']} |"
    )
    f = report["flagged"]
    lines += [
        "",
        "| flagged in answers | rows in flagged_items | distinct item_key | lost | stored twice "
        "| stored, not flagged in answer | stored, answer never came |",
        "|---|---|---|---|---|---|---|",
        f"| {f['expected']} | {f['rows']} | {f['distinct']} | {f['lost']} | {f['twice']} "
        f"| {f['not_flagged_but_stored']} | {f['stored_unanswered']} |",
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {c['name']} | {'PASS' if c['passed'] else 'FAIL'}: {c['detail']} |" for c in report["checks"]]
    return "\n".join(lines)


def traceback_groups(log: Path) -> list[dict[str, Any]]:
    """Traceback blocks in a server log (chained ones together, each with the log line that announced it),
    grouped by that line and the final exception with numbers (ports, ids) masked: how many, the first in full."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    chain = ("The above exception", "During handling")
    groups: dict[str, dict[str, Any]] = {}
    i = 0
    while i < len(lines):
        if not lines[i].startswith("Traceback (most recent call last)"):
            i += 1
            continue
        announce = lines[i - 1] if i > 0 else ""
        block = [announce]
        last = ""
        while i < len(lines):
            line = lines[i]
            block.append(line)
            i += 1
            if not line.strip() or line[0].isspace() or line.startswith(("Traceback", *chain)):
                continue
            last = line  # an exception line: its continuation lines, then the end unless a chained one follows
            while i < len(lines) and lines[i][:1].isspace() and lines[i].strip():
                block.append(lines[i])
                i += 1
            k = i
            while k < len(lines) and not lines[k].strip():
                k += 1
            if k >= len(lines) or not lines[k].startswith(chain):
                break
        key = re.sub(r"\d+", "N", f"{announce[:100]} | {last}")
        g = groups.setdefault(
            key, {"count": 0, "announced_by": announce, "last_line": last, "first": "\n".join(block[:200])}
        )
        g["count"] += 1
    return sorted(groups.values(), key=lambda g: -int(g["count"]))


def project_frames(block: str) -> str:
    """A traceback cut to its announcement, the frames in this project's code (not .venv) and exception lines."""
    out, keep_next = [], False
    for n, line in enumerate(block.splitlines()):
        frame = line.strip().startswith("File ")
        ours = frame and str(REPO) in line and ".venv" not in line
        if n == 0 or ours or keep_next or (line.strip() and not line[0].isspace() and not frame):
            out.append(line)
        keep_next = ours
    return "\n".join(out)


def tag_id(url: str | None) -> str | None:
    """'N/I' for the URL of item I of request N (`Content.tag`), whatever form the URL is stored in."""
    found = TAG.search(url or "")
    return f"{found[1]}/{found[2]}" if found else None


def label(r: Record) -> str:
    """A status as reported: 'timeout', 'conn-error', '503 queue_full' (5xx with the problem's code), '422'."""
    if r.status in (0, -1):
        return "timeout" if r.status == 0 else "conn-error"
    return f"{r.status} {r.code}" if r.status >= 500 and r.code else str(r.status)


def errors_by_status(records: list[Record]) -> dict[str, int]:
    return dict(sorted(Counter(label(r) for r in records if r.status != 200).items()))


# ---------------------------------------------------------------------------------------------- orchestration


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="vicas-soak-"))
        self.pg: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.apis: list[ApiProcess] = []
        self.load: Load | None = None
        self.tiny_root: Path | None = None
        self._cleaned = False

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def model_dir(self) -> Path:
        if not self.args.tiny:
            model = Path(self.args.model_dir).resolve()
            if not (model / "manifest.json").exists():
                raise ServiceError(f"no exported model in {model} (manifest.json): export one, or pass --tiny")
            return model
        self.log("building a tiny model (tests/tiny_model.py: invented data, 2-layer encoder, about 20 s)...")
        sys.path.insert(0, str(REPO))
        tiny = importlib.import_module("tests.tiny_model")  # torch, transformers: the 'train' extra

        self.tiny_root = Path(tempfile.mkdtemp(prefix="vicas-soak-tiny-"))
        out = io.StringIO()  # the stages' progress bars and warnings: shown only if the build fails
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = Path(tiny.build_tiny_pipeline(self.tiny_root)["model"])
        except Exception:
            print(out.getvalue()[-5000:], file=sys.stderr)
            raise
        self.log(f"tiny model in {model}")
        return model

    def start_services(self) -> list[Partner]:
        from serving.db import make_engine, migrate
        from serving.keys import create_key

        model = self.model_dir()
        self.pg = LocalPostgres()
        self.pg.start()
        self.log(f"PostgreSQL on 127.0.0.1:{self.pg.port} ({self.pg.root})")
        self.redis = LocalRedis(self.work / "redis")
        self.redis.start()
        self.log(f"Redis on 127.0.0.1:{self.redis.port}")
        migrate(self.pg.url)
        engine = make_engine(self.pg.url)
        partners = [
            Partner("telco-a", "", 100_000, 0.45),
            Partner("news-b", "", 20_000, 0.40),
            Partner("small-c", "", self.args.low_rate_limit, 0.15),
        ]
        for p in partners:
            p.key = create_key(engine, p.name, {"classify", "verdicts"}, rate_limit_per_minute=p.rate_limit)
        engine.dispose()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "VICAS_MODEL_DIR": str(model),
            "VICAS_DATABASE_URL": self.pg.url,
            "VICAS_REDIS_URL": self.redis.url,
            "VICAS_FLAG_BAND": self.args.flag_band,
            "VICAS_SECRET_KEY": secrets.token_urlsafe(32),
            "VICAS_MAX_TEXT_CHARS": str(self.args.max_text_chars),
            "VICAS_MAX_BODY_BYTES": str(self.args.max_body_bytes),
            "VICAS_MAX_BATCH_ITEMS": str(self.args.max_batch),
            "VICAS_ORT_THREADS": str(self.args.ort_threads),
        }
        if self.args.image_model_dir:
            env["VICAS_IMAGE_MODEL_DIR"] = str(Path(self.args.image_model_dir).resolve())
        for i in range(2):
            spool = self.work / f"spool-{i}"
            self.apis.append(
                ApiProcess(f"api-{i}", {**env, "VICAS_SPOOL_DIR": str(spool)}, self.work / f"api-{i}.log", REPO)
            )
        for api in self.apis:
            api.wait_ready()
            self.log(f"{api.name} ready on {api.base_url} (log {api.log})")
        return partners

    def readyz(self) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for api in self.apis:
            try:
                out.append(httpx.get(f"{api.base_url}/readyz", timeout=3).json())
            except (httpx.HTTPError, ValueError):
                out.append(None)
        return out

    def run(self) -> int:
        a = self.args
        duration = a.minutes * 60
        db_stop = a.db_stop_min * 60 if a.db_stop_min is not None else 0.3 * duration
        db_start = a.db_start_min * 60 if a.db_start_min is not None else 0.4 * duration
        redis_kill = a.redis_restart_min * 60 if a.redis_restart_min is not None else 0.6 * duration
        redis_window = a.redis_window if a.redis_window is not None else 0.05 * duration
        if not 0 < db_stop < db_start < redis_kill < duration:
            raise SystemExit("the timeline must satisfy 0 < db stop < db start < redis restart < --minutes")
        partners = self.start_services()
        images = [png_bytes(160 + 8 * i, 48, IMAGE_WORDS[i % len(IMAGE_WORDS)], i) for i in range(6)]
        t0 = time.monotonic()
        load = self.load = Load(a, [api.base_url for api in self.apis], partners, images, t0)
        tl = load.timeline
        assert self.pg is not None and self.redis is not None
        pg, redis = self.pg, self.redis
        actions: list[tuple[float, str, Callable[[], None]]] = [
            (db_stop, "stopping PostgreSQL (pg_ctl -m immediate stop)", lambda: self._db_stop(tl, pg, load)),
            (db_start, "starting PostgreSQL again", lambda: self._db_start(tl, pg, load)),
            (redis_kill, "killing Redis (SIGKILL)", lambda: self._redis_kill(tl, redis, load)),
            (redis_kill + a.redis_down_seconds, "starting Redis again", lambda: self._redis_start(tl, redis, load)),
        ]
        self.log(
            f"load: {a.clients} clients for {duration:.0f} s (at most {a.max_requests} requests); database down "
            f"{db_stop:.0f}-{db_start:.0f} s, Redis killed at {redis_kill:.0f} s for {a.redis_down_seconds:.0f} s"
        )
        for th in load.threads:
            th.start()
        last = 0.0
        while load.now() < duration and any(th.is_alive() for th in load.threads):
            while actions and load.now() >= actions[0][0]:
                _, what, act = actions.pop(0)
                self.log(f"[{load.now():6.1f}s] {what}")
                act()
                if tl.redis_start_done is not None and tl.redis_window_end is None:
                    tl.redis_window_end = max(tl.redis_start_done, (tl.redis_kill or 0) + redis_window)
            if load.now() - last >= a.progress_every:
                last = load.now()
                self._progress(load)
            time.sleep(0.2)
        load.stop.set()
        for th in load.threads:
            th.join(timeout=a.client_timeout + 10)
        tl.load_end = load.now()
        if tl.redis_start_done is not None and tl.redis_window_end is not None:
            tl.redis_window_end = min(tl.redis_window_end, tl.load_end)
        self.log(f"[{tl.load_end:6.1f}s] load stopped after {len(load.records)} requests")
        if not pg.running:  # stopped early (request budget): bring the database back before draining
            self._db_start(tl, pg, load)
        if redis.proc is None:
            self._redis_start(tl, redis, load)
        drained = self._drain()
        report = self._report(load, drained)
        return 0 if all(c["passed"] for c in report["checks"]) else 1

    def _db_stop(self, tl: Timeline, pg: LocalPostgres, load: Load) -> None:
        tl.db_stop_begin = load.now()
        pg.kill()
        tl.db_stop_done = load.now()

    def _db_start(self, tl: Timeline, pg: LocalPostgres, load: Load) -> None:
        tl.db_start_begin = load.now()
        pg.start()
        tl.db_start_done = load.now()

    def _redis_kill(self, tl: Timeline, redis: LocalRedis, load: Load) -> None:
        tl.redis_kill = load.now()
        redis.kill()

    def _redis_start(self, tl: Timeline, redis: LocalRedis, load: Load) -> None:
        redis.start()
        tl.redis_start_done = load.now()

    def _progress(self, load: Load) -> None:
        recs = list(load.records)
        t = load.now()
        recent = [r.latency_ms for r in recs if r.end >= t - self.args.progress_every]
        st = Counter(r.status for r in recs)
        n4 = sum(v for k, v in st.items() if 400 <= k < 500 and k != 429)
        n5 = sum(v for k, v in st.items() if k >= 500)
        spool = "/".join("?" if r is None else str(r.get("spooled")) for r in self.readyz())
        alive = "".join("+" if api.alive() else "x" for api in self.apis)
        self.log(
            f"[{t:6.1f}s] {load.timeline.phase(t):<13} sent {len(recs):>6} | 200 {st.get(200, 0):>6} | "
            f"429 {st.get(429, 0):>4} | 4xx {n4:>5} | 5xx {n5:>3} | timeout/conn {st.get(0, 0) + st.get(-1, 0):>3} | "
            f"last {self.args.progress_every:.0f}s: {len(recent)} req, p50 {percentile(recent, 50)} "
            f"p99 {percentile(recent, 99)} ms | spooled {spool} | apis {alive}"
        )

    def _drain(self) -> bool:
        deadline = time.monotonic() + self.args.drain_timeout
        self.log(f"waiting for both spools to drain (at most {self.args.drain_timeout:.0f} s)...")
        while time.monotonic() < deadline:
            states = self.readyz()
            if all(s is not None and s.get("spooled") == 0 and s.get("database") == "ok" for s in states):
                self.log("spools drained, database reachable from both processes")
                return True
            time.sleep(1)
        self.log(f"spools did not drain within {self.args.drain_timeout:.0f} s: {self.readyz()}")
        return False

    def _stored(self) -> tuple[int, int, Counter[str | None]]:
        """Rows of flagged_items, distinct item keys, and how many rows carry each URL."""
        from sqlalchemy import func, select

        from serving.db import flagged_items, make_engine

        assert self.pg is not None
        engine = make_engine(self.pg.url)
        try:
            with engine.connect() as conn:
                rows, distinct = conn.execute(
                    select(func.count(), func.count(func.distinct(flagged_items.c.item_key))).select_from(flagged_items)
                ).one()
                # by the soak's item id in the URL: the service may store URLs in a canonical form of its own
                urls = Counter(tag_id(u) for u in conn.execute(select(flagged_items.c.url)).scalars())
        finally:
            engine.dispose()
        return int(rows), int(distinct), urls

    def _report(self, load: Load, drained: bool) -> dict[str, Any]:
        a, tl, recs = self.args, load.timeline, list(load.records)
        rows, distinct, stored = self._stored()
        expected = Counter(t for r in recs for u in r.flagged if (t := tag_id(u)))
        stored_urls = {u for u in stored if u is not None}
        lost = sorted(set(expected) - stored_urls)
        twice = sorted(u for u in stored_urls if stored[u] > 1)
        sent = {t for r in recs for u in r.tags if (t := tag_id(u))}
        untagged = sum(c for u, c in stored.items() if u is None or u not in sent)
        extra = stored_urls - set(expected)
        unanswered_tags = {t for r in recs if r.status in (0, -1) for u in r.tags if (t := tag_id(u))}
        stored_unanswered = extra & unanswered_tags  # timed out on the client, stored by the server: fine
        # stored although the answer says the item does not meet the flag rule (or the item was refused)
        not_flagged_but_stored = sorted(extra - unanswered_tags)
        statuses = Counter(r.status for r in recs)
        five = [r for r in recs if r.status >= 500]
        bad5 = [r for r in five if not (r.status == 503 and r.retry_after and tl.in_outage(r.start, r.end))]
        unexpected = [r for r in recs if not r.expected(tl)]
        resets_after_5xx = [r for r in recs if r.status == -1 and r.after is not None and r.after >= 500]
        alive = [api.alive() for api in self.apis]
        duration = tl.load_end or 0.0
        rate_limits = {
            p.name: {
                "per_minute": p.rate_limit,
                "items_accepted": sum(len(r.tags) for r in recs if r.partner == p.name and r.status == 200),
                # upper bound: a full bucket and its refill over the run, plus a fresh bucket after Redis lost its
                # state and one per process while Redis was down (each limits on its own then)
                "budget_items": round(p.rate_limit * (1 + duration / 60) + p.rate_limit * (1 + len(self.apis))),
                "answered_429": sum(1 for r in recs if r.partner == p.name and r.status == 429),
            }
            for p in load.partners
        }
        checks = [
            {
                "name": "nothing lost, nothing twice",
                "passed": drained
                and not lost
                and not twice
                and rows == distinct
                and not not_flagged_but_stored
                and not untagged,
                "detail": f"{sum(expected.values())} flagged in answers, {rows} rows, {distinct} distinct item keys; "
                f"{len(lost)} lost, {len(twice)} stored twice, {len(not_flagged_but_stored)} stored though not "
                f"flagged in the answer, {untagged} rows not sent by the soak, {len(stored_unanswered)} stored for "
                f"requests whose answer never came; spools drained: {drained}",
            },
            {
                "name": "no 5xx but 503 with Retry-After during the database outage",
                "passed": not bad5,
                "detail": f"{len(five)} 5xx in all ("
                + (", ".join(f"{k}: {v}" for k, v in sorted(Counter(label(r) for r in five).items())) or "none")
                + f"), {len(bad5)} outside the rule",
            },
            {
                "name": "every answer right for its request (hostile inputs refused, no timeouts or resets)",
                "passed": not unexpected,
                "detail": f"{len(unexpected)} unexpected of {len(recs)}"
                + (
                    f" ({len(resets_after_5xx)} connection resets on the request right after a 5xx on the same "
                    "keep-alive connection)"
                    if resets_after_5xx
                    else ""
                ),
            },
            {
                "name": "both API processes alive at the end",
                "passed": all(alive),
                "detail": ", ".join(
                    f"{api.name}: {'up' if ok else 'exited'}" for api, ok in zip(self.apis, alive, strict=True)
                ),
            },
        ]
        by_kind: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            by_kind[r.kind].append(r)
        lat = [r.latency_ms for r in recs]
        report: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
            "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
            "timeline_s": {k: (None if v is None else round(v, 2)) for k, v in asdict(tl).items()},
            "totals": {
                "duration_s": round(tl.load_end or 0, 1),
                "requests": len(recs),
                "ok_200": statuses.get(200, 0),
                "errors_by_status": errors_by_status(recs),
                "unexpected": len(unexpected),
                "p50_ms": percentile(lat, 50),
                "p99_ms": percentile(lat, 99),
                "items_classified": sum(r.items for r in recs),
                "batch_items_refused": sum(r.item_errors for r in recs),
                "requests_per_s": round(len(recs) / max(tl.load_end or 1, 1e-9), 2),
            },
            "phases": summarise(recs, tl),
            "by_kind": {
                k: {
                    "requests": len(v),
                    "statuses": dict(sorted(Counter(label(r) for r in v).items())),
                    "p50_ms": percentile([r.latency_ms for r in v], 50),
                    "p99_ms": percentile([r.latency_ms for r in v], 99),
                }
                for k, v in sorted(by_kind.items())
            },
            "by_partner": {
                p: dict(sorted(Counter(label(r) for r in recs if r.partner == p).items()))
                for p in sorted({r.partner for r in recs})
            },
            "flagged": {
                "flag_band": a.flag_band,
                "expected": sum(expected.values()),
                "rows": rows,
                "distinct": distinct,
                "lost": len(lost),
                "lost_items": lost[:50],
                "twice": len(twice),
                "twice_items": twice[:50],
                "not_flagged_but_stored": len(not_flagged_but_stored),
                "not_flagged_but_stored_items": not_flagged_but_stored[:50],
                "untagged_rows": untagged,
                "stored_unanswered": len(stored_unanswered),
            },
            "rate_limits": rate_limits,
            "checks": checks,
            "unexpected_samples": [
                {**{k: v for k, v in asdict(r).items() if k not in ("tags", "flagged")}, "phase": tl.phase(r.start)}
                for r in unexpected[:40]
            ],
        }
        failed = not all(c["passed"] for c in checks)
        groups = {api.name: traceback_groups(api.log) for api in self.apis}
        report["server_tracebacks"] = {
            name: [{k: g[k] for k in ("count", "announced_by", "last_line", "first")} for g in gs]
            for name, gs in groups.items()
        }
        print("\n" + markdown(report) + "\n", flush=True)
        for name, rl in rate_limits.items():
            self.log(
                f"rate limit {name}: {rl['per_minute']}/min, {rl['items_accepted']} items accepted "
                f"(budget about {rl['budget_items']}), {rl['answered_429']} answered 429"
            )
        for name, gs in groups.items():
            for g in gs:
                self.log(
                    f"{name}.log: {g['count']} x traceback after {g['announced_by'][:80]!r}, "
                    f"ending {g['last_line'][:140]!r}"
                )
        if failed or a.keep_logs:
            logs = Path(str(a.out).removesuffix(".json") + "-logs")
            logs.mkdir(parents=True, exist_ok=True)
            for src in [api.log for api in self.apis] + [self.redis.log if self.redis else None]:
                if src is not None and src.exists():
                    shutil.copy(src, logs / src.name)
            if self.pg is not None and self.pg.log.exists():
                shutil.copy(self.pg.log, logs / "postgres.log")
            report["logs"] = str(logs)
            self.log(f"server logs kept in {logs}")
        if failed:
            for r in unexpected[:20]:
                self.log(
                    f"  unexpected: t={r.start:.1f}s phase={tl.phase(r.start)} api-{r.replica} {r.kind} "
                    f"partner={r.partner} -> {r.status} retry-after={r.retry_after} {r.error or ''}"
                )
            for name, gs in groups.items():
                for g in gs[:4]:
                    self.log(f"--- {name}.log, first of {g['count']} (project frames; in full in the JSON) ---")
                    self.log(project_frames(g["first"]) + "\n")
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        self.log(f"report written to {out}")
        return report

    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        if self.load is not None:
            self.load.stop.set()
        for api in self.apis:
            with contextlib.suppress(Exception):
                api.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.remove()
        shutil.rmtree(self.work, ignore_errors=True)
        if self.tiny_root is not None:
            shutil.rmtree(self.tiny_root, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    g = p.add_argument_group("model")
    g.add_argument("--model-dir", default="models/text", help="exported text model folder (default: %(default)s)")
    g.add_argument(
        "--tiny",
        action="store_true",
        help="build a tiny model first (tests/tiny_model.py: invented data, needs the 'train' extra) and serve it "
        "instead of --model-dir; it rates most items C, so most items are flagged",
    )
    g.add_argument(
        "--image-model-dir",
        default=None,
        help="exported image model folder (VICAS_IMAGE_MODEL_DIR; default: the service's, models/image, "
        "images are read by OCR only when it is absent)",
    )
    g = p.add_argument_group("timeline (every time scales with --minutes unless given)")
    g.add_argument("--minutes", type=float, default=10, help="length of the load (default: %(default)s)")
    g.add_argument("--db-stop-min", type=float, default=None, help="when PostgreSQL is stopped (default: 0.3 x M)")
    g.add_argument("--db-start-min", type=float, default=None, help="when it is started again (default: 0.4 x M)")
    g.add_argument("--redis-restart-min", type=float, default=None, help="when Redis is killed (default: 0.6 x M)")
    g.add_argument(
        "--redis-down-seconds", type=float, default=3, help="how long Redis stays dead (default: %(default)s)"
    )
    g.add_argument(
        "--redis-window",
        type=float,
        default=None,
        help="seconds after the kill counted as the redis_restart phase (default: 0.05 x M x 60: 30 s in 10 min)",
    )
    g = p.add_argument_group("load")
    g.add_argument("--clients", type=int, default=5, help="concurrent client threads (default: %(default)s)")
    g.add_argument(
        "--max-requests", type=int, default=60_000, help="stop after this many requests (default: %(default)s)"
    )
    g.add_argument("--think-ms", type=float, default=0, help="pause of each client between requests (default: 0)")
    g.add_argument("--client-timeout", type=float, default=60, help="per-request timeout, s (default: %(default)s)")
    g.add_argument("--seed", type=int, default=13, help="random seed of the mix (default: %(default)s)")
    g.add_argument(
        "--low-rate-limit",
        type=int,
        default=20,
        help="items per minute of the third partner, low enough to be answered 429 (default: %(default)s; the "
        "others have 100,000 and 20,000)",
    )
    g = p.add_argument_group("service settings (VICAS_* of both API processes)")
    g.add_argument(
        "--flag-band",
        default="T13",
        choices=BANDS,
        help="VICAS_FLAG_BAND: items at this band or above are stored for review (default: %(default)s)",
    )
    g.add_argument("--max-text-chars", type=int, default=50_000, help="VICAS_MAX_TEXT_CHARS (default: %(default)s)")
    g.add_argument("--max-body-bytes", type=int, default=3_000_000, help="VICAS_MAX_BODY_BYTES (default: %(default)s)")
    g.add_argument("--max-batch", type=int, default=64, help="VICAS_MAX_BATCH_ITEMS (default: %(default)s)")
    g.add_argument(
        "--ort-threads",
        type=int,
        default=1,
        help="VICAS_ORT_THREADS of each process (default: %(default)s: two processes on a small machine)",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--out",
        default=f"/tmp/vicas-soak-{datetime.now():%Y%m%d-%H%M%S}.json",
        help="JSON report (default: /tmp/vicas-soak-DATE-TIME.json); server logs go to OUT-logs/ on failure",
    )
    g.add_argument("--keep-logs", action="store_true", help="keep the server logs (OUT-logs/) even when all pass")
    g.add_argument("--progress-every", type=float, default=5, help="seconds between status lines (default: 5)")
    g.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to wait for the spools at the end (default: 120)"
    )
    args = p.parse_args(argv)
    if args.clients < 1 or args.minutes <= 0 or args.max_requests < 1:
        p.error("--clients, --minutes and --max-requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soak = Soak(args)
    atexit.register(soak.cleanup)

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        return soak.run()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr, flush=True)
        return 130
    except ServiceError as e:
        print(f"could not run the soak: {e}", file=sys.stderr, flush=True)
        for api in soak.apis:
            if api.log.exists():
                tail = api.log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
                print(f"--- last lines of {api.log.name} ---\n" + "\n".join(tail), file=sys.stderr)
        return 2
    finally:
        soak.cleanup()


if __name__ == "__main__":
    sys.exit(main())
