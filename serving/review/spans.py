"""Evidence spans on whole words of the text a reviewer reads.

The text model reads subword tokens of a normalised copy (accents restored when the text was typed without
them, teencode expanded); its evidence comes back as character spans of the original text, but a token can
start or end inside a word (`t` of `thang`, `mấy,` with its comma). A highlight cut mid-word reads as a
different word, so spans are widened to the whole words they touch, with surrounding spaces and punctuation
left out, on the very text shown (the stored, masked text), both when an item is stored and when a page
shows an item stored earlier.
"""

from __future__ import annotations

import unicodedata

from vicas.redact import MASK


def is_word_char(ch: str) -> bool:
    """A letter, digit or combining mark (a text typed in decomposed form keeps its accents inside words)."""
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) trimmed of spaces and punctuation at its ends and widened to the words it touches; a
    personal-data mask it touches is taken whole. A span with no word character is returned as given
    (an emoji, a symbol), clipped to the text."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    s, t = start, end
    while s < t and not is_word_char(text[s]):
        s += 1
    while t > s and not is_word_char(text[t - 1]):
        t -= 1
    if s >= t:
        return start, end
    while s > 0 and is_word_char(text[s - 1]):
        s -= 1
    while t < len(text) and is_word_char(text[t]):
        t += 1
    # a mask is one token for a reader: never half of "[ẩn]"
    m = text.find(MASK, max(0, s - len(MASK) + 1), t + len(MASK) - 1)
    while 0 <= m < t:
        s, t = min(s, m), max(t, m + len(MASK))
        m = text.find(MASK, m + len(MASK), t + len(MASK) - 1)
    return s, t
