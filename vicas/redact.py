"""Redaction of children's personal data before anything is stored or shown."""

from __future__ import annotations

import re

from vicas.inference import Evidence

MASK = "[ẩn]"
# Vietnamese phone numbers (also spaced or dotted: 09 1 2. 3 4 5...), e-mails, 9-12 digit ID numbers.
_PATTERNS = [
    re.compile(r"(?<!\w)(?:\+?84|0)(?:[\s.\-]*\d){8,10}(?!\w)"),
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    re.compile(r"(?<!\d)\d{9,12}(?!\d)"),
]


def redact_text(text: str, evidence: list[Evidence], categories: set[str]) -> str:
    """Mask evidence spans of `categories` and, always, phone numbers, e-mails and ID numbers."""
    spans = sorted((e.start, e.end) for e in evidence if e.category in categories)
    out, pos = [], 0
    for s, e in spans:
        if s < pos:
            s = pos
        if s >= e:
            continue
        out.append(text[pos:s])
        out.append(MASK)
        pos = e
    out.append(text[pos:])
    masked = "".join(out)
    for pattern in _PATTERNS:
        masked = pattern.sub(MASK, masked)
    return masked
