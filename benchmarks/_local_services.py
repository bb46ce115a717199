"""Private, throwaway services on 127.0.0.1 for the benchmarks: PostgreSQL, Redis and `vicas serve` processes.

Everything runs on free loopback ports, in temporary folders, and in its own session (process group), so
Ctrl-C in the terminal reaches only the benchmark, which then stops what it started. Nothing here touches
the machine's own PostgreSQL (5432) or Redis (6379).

The PostgreSQL part follows tests/serving/test_fault.py (`LocalPostgres`): the machine's server binaries,
run as the `postgres` user through `runuser` when the benchmark runs as root (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A local service could not be started or stopped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    ctl = shutil.which("pg_ctl")
    return Path(ctl).parent if ctl else None


class LocalPostgres:
    """A PostgreSQL server of its own in a temporary folder, on a free loopback port (trust auth, fsync off)."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise ServiceError("no PostgreSQL server binaries (pg_ctl, initdb): apt-get install postgresql")
        self.bindir = bindir
        # a folder of its own under /tmp: the server user must be able to enter it
        self.root = Path(tempfile.mkdtemp(prefix="vicas-soak-pg-"))
        self.data = self.root / "pgdata"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            if shutil.which("runuser") is None:
                raise ServiceError("running as root without runuser: cannot start a private PostgreSQL")
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.running = False
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # the postmaster inherits it: Ctrl-C does not reach the server
        )
        if proc.returncode != 0:
            raise ServiceError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.data} -c listen_addresses={HOST} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-t", "60", "-l", str(self.log), "start")
        self.running = True

    def kill(self) -> None:
        """Immediate shutdown (no checkpoint, connections cut): what a crash looks like to the clients."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.running = False

    def stop(self) -> None:
        """Stop if running; never raises (cleanup)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        self.running = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/postgres"


class LocalRedis:
    """A redis-server of its own (no persistence) on a free loopback port; `kill` + `start` is a restart."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServiceError("no redis-server on PATH: apt-get install redis-server")
        self.exe = exe
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = folder / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        args = [self.exe, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.folder), "--logfile", str(self.log), "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"redis-server exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)
        raise ServiceError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL: its data (rate-limit buckets, shared cache) is gone, as after a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.kill()


class ApiProcess:
    """`python -m vicas.cli serve` on a free port, its output written to a log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vicas.cli", "serve", "--host", HOST, "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode} while starting; see {self.log}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise ServiceError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log_file.close()
