"""URLs and host names as the verdict store keys them: one spelling per page and per host.

Partners and blocklists write the same place many ways (`HTTP://Ví-dụ.vn.:80/a?x=1#top`,
`http://xn--v-dng.vn/a`); verdicts are stored and looked up under one normal form so that each finds the
other. The query string and fragment are dropped before anything is stored: they are where a child's phone
number or e-mail travels (`?sdt=09...`), and a verdict on a page is a verdict on its path. Long digit runs
and e-mail addresses in the path are masked for the same reason.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote, urlsplit, urlunsplit

import tldextract
from w3lib.url import canonicalize_url

DEFAULT_PORTS = {"http": 80, "https": 443}
_PERSONAL_IN_PATH = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+|\+?\d[\d.\-]{7,18}\d")


class UrlError(ValueError):
    """Not a URL with a host."""


def normalize_host(host: str) -> str:
    """Lower case, IDNA (punycode), no trailing dot, no `www.`: `WWW.Ví-dụ.VN.` -> `xn--v-d-rma6749a.vn`."""
    host = host.strip().rstrip(".").lower()
    if not host:
        raise UrlError("empty host name")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise UrlError(f"not a valid host name: {host!r}") from e
    return host.removeprefix("www.")


def normalize_url(url: str) -> str:
    """The stored form of a page's URL: scheme and host normalised, default port, query, fragment and
    personal data in the path removed. Raises UrlError when there is no host."""
    raw = url.strip()
    if "//" not in raw:
        raw = "http://" + raw
    try:
        first = urlsplit(raw)  # mask the path as written, before percent-encoding hides what it holds
        masked = _PERSONAL_IN_PATH.sub("redacted", unquote(first.path))
        parts = urlsplit(canonicalize_url(urlunsplit((first.scheme, first.netloc, masked, "", ""))))
    except ValueError as e:  # a port out of range, brackets around something not an IP address
        raise UrlError(f"not a URL: {url[:100]!r} ({e})") from e
    if not parts.hostname:
        raise UrlError(f"no host in {url[:100]!r}")
    try:
        port = parts.port
    except ValueError as e:
        raise UrlError(f"bad port in {url[:100]!r}") from e
    host = normalize_host(parts.hostname)
    netloc = host if port in (None, DEFAULT_PORTS.get(parts.scheme)) else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def host_of(url: str) -> str:
    """The normalised host of a URL (the `domain` verdicts are grouped by)."""
    return urlsplit(normalize_url(url)).hostname or ""


@functools.cache
def _extract() -> tldextract.TLDExtract:
    # the public-suffix list shipped with the package: no download at run time
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def is_public_suffix(host: str) -> bool:
    """`com.vn`, `blogspot.com`: names under which unrelated sites live, never one site's domain."""
    parts = _extract()(host)
    return not parts.domain and bool(parts.suffix)
