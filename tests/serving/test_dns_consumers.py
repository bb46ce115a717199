"""The exported blocklists in the programs that consume them: the RPZ zone in BIND's named-checkzone and in
a running unbound (answering dig on loopback with the policy action), the hosts file in a running dnsmasq
(0.0.0.0 for A and :: for AAAA). Issue #18, item 5.

The programs come from Debian (bind9-utils, unbound, dnsmasq-base, bind9-dnsutils; .ci/run installs them).
Without them these tests skip, unless VICAS_REQUIRE_DNS=1 (then they fail). Each server runs in the
foreground on a free port on 127.0.0.1 with its own configuration in the test's temp dir, reaches no
upstream server, and is stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.db import make_engine, migrate
from serving.review.blocklists import blocklist_entries, hosts_file, rpz_zone
from serving.store import record_verdict
from vicas.taxonomy import Band

pytestmark = pytest.mark.slow

PACKAGES = {"named-checkzone": "bind9-utils", "unbound": "unbound", "dnsmasq": "dnsmasq-base", "dig": "bind9-dnsutils"}
ZONE = "rpz.vicas."
IDN_HOST = "xn--v-d-rma6749a.vn"  # ví-dụ.vn
BLOCKED = ("cado-vui.vn", IDN_HOST, "m.bet-lau.vn")  # reviewed at T18 or above (m.: a subdomain verdict)
# names the lists must not block: the parent of a blocked subdomain, a name that merely ends like a blocked
# one, a model-only verdict and a reviewed verdict below the minimum band
NOT_BLOCKED = ("bet-lau.vn", "notcado-vui.vn", "model-only.vn", "tre-em.vn")
START_TIMEOUT_S = 20.0


def _program(name: str) -> str:
    """The program's path (also in /usr/sbin and /sbin, which a non-root PATH may lack); skips or fails."""
    found = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := f"{d}/{name}", os.X_OK)), None
    )
    if found:
        return found
    reason = f"{name} is not installed (Debian package {PACKAGES[name]}; .ci/run installs it)"
    if os.environ.get("VICAS_REQUIRE_DNS") == "1":
        pytest.fail(f"{reason}, and VICAS_REQUIRE_DNS=1 requires it")
    pytest.skip(f"{reason}: set VICAS_REQUIRE_DNS=1 to make this a failure")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (DNS servers listen on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port on 127.0.0.1")


@dataclass(frozen=True)
class Answer:
    status: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED..., or NO-REPLY when the server did not answer
    records: list[str]  # the answer section's data for the asked type


def _dig(port: int, name: str, rtype: str = "A") -> Answer:
    """Ask the server on 127.0.0.1:port once (2 s timeout, no retry)."""
    argv = [_program("dig"), "@127.0.0.1", "-p", str(port), name, rtype, "+time=2", "+tries=1"]
    out = subprocess.run(
        [*argv, "+noall", "+comments", "+answer"], capture_output=True, text=True, timeout=15, check=False
    ).stdout
    status = re.search(r"status: ([A-Z]+)", out)
    records = [f[4] for line in out.splitlines() if len(f := line.split()) >= 5 and f[3] == rtype]
    return Answer(status.group(1) if status else "NO-REPLY", records)


@contextlib.contextmanager
def _server(argv: list[str], log: Path, ready: Callable[[], bool]) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in the foreground (output to log) until ready() is true, and always stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"{argv[0]} did not answer within {START_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class Exported:
    rpz: Path
    hosts: Path
    serial: int


@pytest.fixture
def exported(tmp_path) -> Exported:
    """Reviewed verdicts in a SQLite database, exported at T18 as an RPZ zone file and a hosts file."""
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    migrate(url)
    db = make_engine(url)
    try:
        for page, band, source in [
            ("https://cado-vui.vn/ban", "T18", "reviewed"),
            ("https://www.cado-vui.vn/keo", "C", "reviewed"),  # 'www.' is the same host
            ("https://ví-dụ.vn/x", "C", "reviewed"),
            ("https://m.bet-lau.vn/keo", "T18", "reviewed"),
            ("https://model-only.vn/x", "C", "model"),  # a model verdict never blocks
            ("https://tre-em.vn/y", "T13", "reviewed"),  # below the minimum band
        ]:
            record_verdict(db, page, band, source, None, None, None)
        entries = blocklist_entries(db, Band.T18)
    finally:
        db.dispose()
    rpz = rpz_zone(entries, Band.T18)
    hosts = hosts_file(entries, Band.T18)
    serial = re.search(r"^; serial: (\d+)$", rpz, re.M)
    assert serial is not None
    (tmp_path / "rpz.vicas.zone").write_text(rpz, encoding="utf-8")
    (tmp_path / "blocked.hosts").write_text(hosts, encoding="utf-8")
    return Exported(tmp_path / "rpz.vicas.zone", tmp_path / "blocked.hosts", int(serial.group(1)))


def test_bind_named_checkzone_loads_the_rpz_zone(exported):
    checkzone = _program("named-checkzone")
    done = subprocess.run(
        [checkzone, "-k", "fail", ZONE, str(exported.rpz)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"zone {ZONE.rstrip('.')}/IN: loaded serial {exported.serial}" in done.stdout
    assert done.stdout.rstrip().endswith("OK")


# Stands in for the internet: the same names with real-looking addresses, so a name the RPZ does not block
# resolves (NOERROR with its address) and a blocked one would too, were the policy not applied.
UPSTREAM_ZONE = """$TTL 60
@ IN SOA localhost. hostmaster.localhost. 1 3600 600 604800 60
@ IN NS localhost.
{records}
"""


def _unbound_conf(tmp: Path, port: int, exported: Exported) -> str:
    upstream = tmp / "vn.upstream.zone"
    names = [*BLOCKED, *(f"www.{h}" for h in BLOCKED), *(f"a.b.{h}" for h in BLOCKED), *NOT_BLOCKED]
    records = "\n".join(f"{n}. IN A 192.0.2.{i}\n{n}. IN AAAA 2001:db8::{i}" for i, n in enumerate(names, 1))
    upstream.write_text(UPSTREAM_ZONE.format(records=records), encoding="utf-8")
    # respip is the module that applies RPZ policies; no validator: nothing here is signed. The root is a stub
    # at localhost, which unbound refuses to query (do-not-query-localhost): no query leaves this machine.
    return f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{tmp}"
    pidfile: "{tmp / "unbound.pid"}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    module-config: "respip iterator"
stub-zone:
    name: "."
    stub-addr: 127.0.0.1
auth-zone:
    name: "vn."
    zonefile: "{upstream}"
    for-downstream: no
    for-upstream: yes
    fallback-enabled: no
remote-control:
    control-enable: no
rpz:
    name: {ZONE}
    zonefile: "{exported.rpz}"
    rpz-log: yes
    rpz-log-name: vicas
"""


def test_unbound_answers_nxdomain_from_the_rpz_zone(exported, tmp_path):
    unbound = _program("unbound")
    _program("dig")
    conf_dir = tmp_path / "unbound"
    conf_dir.mkdir()
    port = free_port()
    conf = conf_dir / "unbound.conf"
    conf.write_text(_unbound_conf(conf_dir, port, exported), encoding="utf-8")
    log = conf_dir / "unbound.log"
    with _server([unbound, "-d", "-c", str(conf)], log, lambda: _dig(port, "bet-lau.vn").status != "NO-REPLY"):
        for host in BLOCKED:
            for name in (host, f"www.{host}", f"a.b.{host}"):  # the name itself, and *.host
                for rtype in ("A", "AAAA"):
                    answer = _dig(port, name, rtype)
                    assert answer == Answer("NXDOMAIN", []), (name, rtype, answer)
        for name in NOT_BLOCKED:  # resolved from the stand-in upstream, untouched by the policy
            answer = _dig(port, name, "A")
            assert answer.status == "NOERROR" and len(answer.records) == 1, (name, answer)
            assert answer.records[0].startswith("192.0.2."), (name, answer)
        text = log.read_text(errors="replace")
    assert f"rpz: applied [vicas] {IDN_HOST}. rpz-nxdomain" in text
    assert "rpz: applied [vicas] *.cado-vui.vn. rpz-nxdomain" in text
    assert not any(f"applied [vicas] {name}." in text for name in NOT_BLOCKED)


def test_dnsmasq_answers_the_hosts_file_for_ipv4_and_ipv6(exported, tmp_path):
    dnsmasq = _program("dnsmasq")
    _program("dig")
    port = free_port()
    log = tmp_path / "dnsmasq.log"
    argv = [
        dnsmasq,
        "--no-daemon",  # foreground, logs to stderr, keeps the user it runs as, writes no pid file
        "--conf-file=/dev/null",  # not /etc/dnsmasq.conf
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",  # no upstream server: every answer comes from the hosts file
        "--no-hosts",  # not /etc/hosts
        f"--addn-hosts={exported.hosts}",
        "--log-queries",
        "--log-facility=-",
    ]
    with _server(argv, log, lambda: _dig(port, "bet-lau.vn").status != "NO-REPLY"):
        for host in BLOCKED:
            for name in (host, f"www.{host}"):
                assert _dig(port, name, "A") == Answer("NOERROR", ["0.0.0.0"]), name
                assert _dig(port, name, "AAAA") == Answer("NOERROR", ["::"]), name
        for name in (*NOT_BLOCKED, "a.b.cado-vui.vn"):  # a hosts file has no wildcards: only the RPZ has *.host
            assert _dig(port, name, "A").records == [], name
        text = log.read_text(errors="replace")
    assert f"{exported.hosts} {IDN_HOST} is ::" in text and f"{exported.hosts} www.cado-vui.vn is 0.0.0.0" in text
