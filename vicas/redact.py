"""Redaction of children's personal data before anything is stored or shown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vicas.inference import Evidence

MASK = "[ẩn]"
# Vietnamese phone numbers (also spaced or dotted: 09 1 2. 3 4 5...), e-mails, 9-12 digit ID numbers.
# Every pattern runs on request text of up to 100k characters, so each is linear: a match may only start
# where a run of its characters starts (look-behinds), and every repeat is bounded. (An unanchored
# `[\w.+-]+@` rescanned a long run of letters from each of its positions: 4 s for 30k characters.)
_PATTERNS = [
    re.compile(r"(?<!\w)(?:\+?84|0)(?:[\s.\-]{0,3}\d){8,10}(?!\w)"),
    re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"),
    re.compile(r"(?<!\d)\d{9,12}(?!\d)"),
]


@dataclass(frozen=True)
class Redacted:
    text: str
    replaced: list[tuple[int, int, int, int]]  # (original start, original end, new start, new end)

    def map_span(self, start: int, end: int) -> tuple[int, int]:
        """Where an original-text span lies in the redacted text (a span inside a mask becomes the mask)."""

        def point(p: int, is_end: bool) -> int:
            shift = 0
            for os_, oe, ns, ne in self.replaced:
                if p >= oe:
                    shift = ne - oe
                elif p > os_ or (is_end and p == oe):
                    return ne if is_end else ns
                elif p == os_:
                    return ns
                else:
                    break
            return p + shift

        return point(start, False), point(end, True)


def redact(text: str, evidence: list[Evidence], categories: set[str]) -> Redacted:
    """Mask evidence spans of `categories` and, always, phone numbers, e-mails and ID numbers."""
    spans = [(e.start, e.end) for e in evidence if e.category in categories]
    for pattern in _PATTERNS:
        spans += [m.span() for m in pattern.finditer(text)]
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        elif e > s:
            merged.append([s, e])
    out, replaced, pos, new_len = [], [], 0, 0
    for s, e in merged:
        out.append(text[pos:s])
        new_len += s - pos
        replaced.append((s, e, new_len, new_len + len(MASK)))
        out.append(MASK)
        new_len += len(MASK)
        pos = e
    out.append(text[pos:])
    return Redacted("".join(out), replaced)


def redact_text(text: str, evidence: list[Evidence], categories: set[str]) -> str:
    return redact(text, evidence, categories).text
