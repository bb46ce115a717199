"""The durable local spool for flagged items while the database is unreachable.

Several API worker processes share one spool folder, and any of them may crash at any moment. So:

- each process appends to its own `pending-<pid>.jsonl`, under an exclusive `flock` on that file, and
  fsyncs the file (and the folder when it creates the file);
- a line torn by a crash mid-append is closed with a newline before the next append, so it can only
  spoil itself; the flush sets unreadable lines aside in `rejected-*.jsonl` and counts them;
- one flusher at a time (a `flock` on `.flush.lock`, across processes) renames each pending file to
  `flushing-*.jsonl` while holding that file's lock. An appender re-checks, once it holds the lock, that
  the path it opened still names the file it holds; if the flusher renamed it meanwhile it appends to a
  fresh file, so no append can land in a file the flusher has already read;
- a `flushing-*` file is deleted only after every item in it is in the database (inserts are idempotent on
  the item key), so a flusher killed halfway leaves it for the next flush: each item is stored exactly once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("vicas.spool")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(f: IO[Any]) -> Iterator[None]:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def pending_path(self) -> Path:
        """This process's pending file (a forked worker gets its own)."""
        return self.folder / f"pending-{os.getpid()}.jsonl"

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records durably; returns once they are on disk."""
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        while True:
            path = self.pending_path
            created = not path.exists()
            with path.open("a+", encoding="utf-8") as f, locked(f):
                try:
                    same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    same = False
                if not same:  # a flusher renamed it after we opened it: start a fresh file
                    continue
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(f.tell() - 1)
                    if f.read(1) != "\n":  # a torn line from a crash: close it so it spoils only itself
                        f.write("\n")
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            if created:
                fsync_dir(self.folder)
            return

    def count(self) -> int:
        n = 0
        for pattern in ("pending-*.jsonl", "flushing-*.jsonl"):
            for p in self.folder.glob(pattern):
                try:
                    with p.open(encoding="utf-8", errors="replace") as f:
                        n += sum(1 for line in f if line.strip())
                except FileNotFoundError:
                    continue  # renamed or flushed meanwhile
        return n

    def rejected(self) -> int:
        """Unreadable lines set aside so far (kept for an operator to look at)."""
        n = 0
        for p in self.folder.glob("rejected-*.jsonl"):
            with p.open(encoding="utf-8", errors="replace") as f:
                n += sum(1 for line in f if line.strip())
        return n

    def _claim_pending(self) -> None:
        for path in sorted(self.folder.glob("pending-*.jsonl")):
            try:
                f = path.open("r+", encoding="utf-8")
            except FileNotFoundError:
                continue
            with f, locked(f):
                if not path.exists() or os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                    continue
                path.rename(self.folder / f"flushing-{time.time_ns()}-{os.getpid()}.jsonl")
        fsync_dir(self.folder)

    def flush(self, parse: Callable[[dict[str, Any]], T], insert: Callable[[list[T]], int], batch: int = 500) -> int:
        """Hand spooled records, each through `parse` (raises TypeError or ValueError for a bad one, which is
        set aside), to `insert` (idempotent; raises while the database is down); returns what it reported
        as new. One flusher at a time across processes; another one's turn returns 0."""
        with (self.folder / ".flush.lock").open("a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            try:
                self._claim_pending()
                stored = 0
                for path in sorted(self.folder.glob("flushing-*.jsonl")):
                    good: list[T] = []
                    bad: list[str] = []
                    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                        if not line.strip():
                            continue
                        try:
                            record = json.loads(line)
                            if not isinstance(record, dict):
                                raise ValueError("not an object")
                            good.append(parse(record))
                        except (TypeError, ValueError):
                            bad.append(line)
                    for start in range(0, len(good), batch):
                        stored += insert(good[start : start + batch])  # raises: the file stays
                    if bad:
                        self._reject(bad, path.name)
                    path.unlink()
                    fsync_dir(self.folder)
                return stored
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _reject(self, lines: list[str], origin: str) -> None:
        path = self.folder / f"rejected-{time.time_ns()}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        log.error("%d unreadable spooled lines from %s set aside in %s", len(lines), origin, path.name)
