"""Robustness copies of a text: no diacritics, and teencode with obfuscation (seeded, deterministic)."""

from __future__ import annotations

import random
import re
import zlib

from vicas.normalize import fold_diacritics

# standard word -> how people type it (the reverse direction of the normaliser's table)
TEENCODE = {
    "không": "ko", "được": "đc", "với": "vs", "gì": "j", "rồi": "r", "biết": "bít", "người": "ng",
    "mình": "mk", "vậy": "z", "quá": "wá", "thôi": "thui", "muốn": "mún", "buồn": "bùn", "yêu": "iu",
    "chồng": "ck", "vợ": "vk", "anh em": "ae", "bạn": "bn", "cũng": "cx", "nói": "ns", "trước": "trc",
    "luôn": "lun", "thích": "thik", "đi": "đii", "em": "e", "chị": "c", "đẹp": "đẹpp",
}  # fmt: skip
_LEET = {"o": "0", "a": "4", "i": "1", "e": "3", "s": "5"}
_WORD = re.compile(r"\w+")


def strip_diacritics(text: str) -> str:
    return fold_diacritics(text)


def obfuscate(text: str, rate: float = 0.35) -> str:
    """Teencode substitutions, then digits for letters, dotted and spaced letters in some words."""
    rng = random.Random(zlib.crc32(text.encode("utf-8")))
    out = text
    for word, code in TEENCODE.items():

        def swap(m: re.Match[str], code: str = code) -> str:
            return code if rng.random() < 0.8 else m.group(0)

        out = re.sub(rf"\b{re.escape(word)}\b", swap, out, flags=re.IGNORECASE)

    def twist(m: re.Match[str]) -> str:
        w = m.group(0)
        if len(w) < 3 or rng.random() > rate:
            return w
        roll = rng.random()
        if roll < 0.5:
            return "".join(_LEET.get(ch, ch) if rng.random() < 0.5 else ch for ch in w)
        if roll < 0.8:
            return ".".join(w)
        return " ".join(w)

    return _WORD.sub(twist, out)
