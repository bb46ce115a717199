"""Blocklists for DNS and proxy filters, built from reviewed verdicts only (a model verdict never blocks).

Three formats: a hosts file, a DNS Response Policy Zone (RPZ) and a CSV list. Each starts with a comment
header ('#' lines for hosts and CSV, ';' lines for RPZ) giving the format, the minimum band, a version (UTC
timestamp YYYYMMDDHHMMSS) and `checksum: sha256:<hex>`, the SHA-256 of every line below the header (UTF-8,
each line ended by '\\n'). `verify_checksum` checks a downloaded list against it. The checksum catches a
truncated or corrupted download; against deliberate tampering, fetch the list over HTTPS.

Hosts files and RPZ block whole host names: one reviewed URL at or above the minimum band blocks its whole
domain there (the CSV keeps the URL for filters that can block per URL).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from serving.db import as_utc, verdicts
from serving.urls import UrlError, normalize_host
from vicas.taxonomy import BAND_ORDER, Band

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHECKSUM = re.compile(r"^[#;]\s*checksum:\s*sha256:([0-9a-f]{64})\s*$")
PRODUCER = "vicas review console"


@dataclass(frozen=True, order=True)
class Entry:
    """One reviewed verdict: the host to block ("" when the URL has no usable DNS name), its URL, band, time."""

    host: str
    url: str
    band: Band
    updated_at: datetime


def normalise_host(domain: str | None) -> str:
    """A DNS host name fit for hosts files and RPZ (lower case, IDNA, no 'www.'), or "" when there is none.

    IP addresses and malformed names give "": they cannot be blocked by name, and a name with spaces or line
    breaks must never reach a zone file.
    """
    try:
        host = normalize_host(domain or "")
    except UrlError:
        return ""
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return ""
    if labels[-1].isdigit():  # an IPv4 address, or a name no resolver would answer
        return ""
    return host


def blocklist_entries(engine: Engine, min_band: Band) -> list[Entry]:
    """Reviewed verdicts at or above min_band, one entry per URL, sorted by host then URL."""
    bands = [b.value for b in BAND_ORDER if b >= min_band]
    q = select(verdicts.c.url, verdicts.c.domain, verdicts.c.band, verdicts.c.updated_at).where(
        verdicts.c.source == "reviewed", verdicts.c.band.in_(bands)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    entries = {Entry(normalise_host(r.domain), r.url, Band(r.band), as_utc(r.updated_at)) for r in rows}
    return sorted(entries)


def latest_change(engine: Engine) -> datetime | None:
    """When a reviewed verdict last changed (any band: a lowered one leaves the lists), or None."""
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(verdicts.c.updated_at)).where(verdicts.c.source == "reviewed")).scalar()
    return as_utc(latest) if latest is not None else None


def changes_since(engine: Engine, since: datetime, min_band: Band) -> tuple[list[Entry], list[Entry]]:
    """Reviewed verdicts changed after `since`: (now at or above min_band: block, now below it: unblock)."""
    q = select(verdicts.c.url, verdicts.c.domain, verdicts.c.band, verdicts.c.updated_at).where(
        verdicts.c.source == "reviewed", verdicts.c.updated_at > since
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    changed = sorted({Entry(normalise_host(r.domain), r.url, Band(r.band), as_utc(r.updated_at)) for r in rows})
    return [e for e in changed if e.band >= min_band], [e for e in changed if e.band < min_band]


def _one_line(url: str) -> str:
    """Percent-encode control characters, so every CSV record is one line and no line can pass for a comment."""
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", url)


def _selected(entries: Iterable[Entry], min_band: Band) -> list[Entry]:
    return sorted({e for e in entries if e.band >= min_band})


def _hosts(entries: Iterable[Entry], min_band: Band) -> list[str]:
    """Distinct blockable hosts, sorted."""
    return sorted({e.host for e in _selected(entries, min_band) if e.host})


def version_of(now: datetime | None = None) -> str:
    """List version: the UTC timestamp YYYYMMDDHHMMSS."""
    return as_utc(now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


def soa_serial(version: str) -> int:
    """RPZ SOA serial from a version: seconds since the Unix epoch (fits 32 bits until 2106, always increases)."""
    serial = int(datetime.strptime(version, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp())
    if not 0 < serial < 2**32:
        raise ValueError(f"version {version} does not give a 32-bit SOA serial")
    return serial


def _sha256(body_lines: list[str]) -> str:
    return hashlib.sha256("".join(f"{line}\n" for line in body_lines).encode()).hexdigest()


def _document(mark: str, fields: list[tuple[str, str]], body_lines: list[str]) -> str:
    header = [f"{mark} {name}: {value}" for name, value in fields]
    header.append(f"{mark} checksum: sha256:{_sha256(body_lines)}")
    return "".join(f"{line}\n" for line in [*header, *body_lines])


def _fields(fmt: str, min_band: Band, version: str, count_name: str, count: int) -> list[tuple[str, str]]:
    return [
        ("blocklist", f"{PRODUCER} ({fmt}), reviewed verdicts only"),
        ("min-band", min_band.value),
        ("version", version),
        (count_name, str(count)),
    ]


def hosts_file(entries: Iterable[Entry], min_band: Band, now: datetime | None = None) -> str:
    """A hosts file: '0.0.0.0 host' and ':: host' (and the same for 'www.host') for each blocked host.

    The '::' lines block IPv6 clients too: with '0.0.0.0' alone, dnsmasq (for one) passes an AAAA query for
    the name on to its upstream server, and the client gets the real address.
    """
    hosts = _hosts(entries, min_band)
    lines = [f"{addr} {name}" for host in hosts for name in (host, f"www.{host}") for addr in ("0.0.0.0", "::")]
    return _document("#", _fields("hosts", min_band, version_of(now), "hosts", len(hosts)), lines)


def rpz_zone(
    entries: Iterable[Entry],
    min_band: Band,
    now: datetime | None = None,
    nameserver: str = "localhost.",
    hostmaster: str = "hostmaster.localhost.",
    ttl: int = 300,
) -> str:
    """A DNS Response Policy Zone: $TTL, SOA and NS, then 'host CNAME .' and '*.host CNAME .' (NXDOMAIN).

    Owner names are relative: the server's zone statement names the zone (e.g. rpz.vicas.).
    """
    version = version_of(now)
    hosts = _hosts(entries, min_band)
    lines = [
        f"$TTL {ttl}",
        f"@ IN SOA {nameserver} {hostmaster} {soa_serial(version)} 3600 600 604800 {ttl}",
        f"@ IN NS {nameserver}",
    ]
    lines += [f"{name} CNAME ." for host in hosts for name in (host, f"*.{host}")]
    fields = _fields("rpz", min_band, version, "hosts", len(hosts))
    fields.append(("serial", str(soa_serial(version))))
    return _document(";", fields, lines)


def csv_list(entries: Iterable[Entry], min_band: Band, now: datetime | None = None) -> str:
    """CSV (host,url,band,updated_at) below '#' header lines: skip lines starting with '#', then parse."""
    selected = _selected(entries, min_band)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["host", "url", "band", "updated_at"])
    for e in selected:
        writer.writerow([e.host, _one_line(e.url), e.band.value, e.updated_at.isoformat(timespec="seconds")])
    lines = buf.getvalue().split("\n")[:-1]
    return _document("#", _fields("csv", min_band, version_of(now), "entries", len(selected)), lines)


def verify_checksum(text: str) -> bool:
    """True when the list's header checksum matches the SHA-256 of the lines below its header."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0][:1] not in ("#", ";"):
        return False
    mark = lines[0][0]
    split = next((i for i, line in enumerate(lines) if not line.startswith(mark)), len(lines))
    header, body = lines[:split], lines[split:]
    found = [m.group(1) for line in header if (m := _CHECKSUM.match(line))]
    if len(found) != 1:
        return False
    return hmac.compare_digest(found[0], _sha256(body))
