"""Vietnamese text normalisation, shared by training and serving.

`normalize(text)` returns the model's view of a text together with, for every
character of that view, the span of the original text it came from. Evidence
spans found on the normalised text are reported on the original through
`Normalized.to_original`, so what a reviewer sees highlighted is what the user
actually wrote.

Steps, in order (each keeps the offset map):
1. Unicode NFKC per grapheme cluster (precomposed Vietnamese, fullwidth and
   "mathematical" look-alike letters folded), zero-width characters dropped.
2. Lower case; Cyrillic and Greek look-alike letters mapped to Latin.
3. Tone marks placed one way (`hòa` -> `hoà`, `thúy` -> `thuý`, `khỏe` -> `khoẻ`).
4. Whitespace collapsed; letters repeated 3+ times kept once (`quáaaa`),
   other symbols repeated 4+ times kept three times.
5. Obfuscation folded: dotted letters (`đ.m`, `t.à.i`), spaced letters
   (`n g u`), digits and symbols standing for letters (`l0z`, `c4sino`, `đ!t`).
6. Teencode and abbreviations expanded from `resources/teencode.tsv`.

`Normalized.folded` is a diacritics-free view of the same length, for matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TEENCODE_PATH = Path(__file__).parent / "resources" / "teencode.tsv"
# The rules above, by number: raise it when a change alters the model's view of some text, so the version
# stamped in each exported model says which rules it learned with (vicas.manifest.normalizer_fingerprint()
# catches every edit, this names them).
NORMALIZATION_VERSION = "1"

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ո": "n", "ν": "v", "ο": "o",
        "α": "a", "ι": "i", "κ": "k", "τ": "t", "ρ": "p", "ε": "e", "υ": "u", "η": "n",
    }
)  # fmt: skip
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i"}

# Tone marks: combining code points and the base vowels they sit on.
_TONES = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook, dot below


@dataclass(frozen=True)
class Normalized:
    """A normalised text and the original span of each of its characters."""

    original: str
    text: str
    spans: tuple[tuple[int, int], ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the half-open span [start, end) of `text` onto `original`."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span ({start}, {end}) is outside the normalised text of length {len(self.text)}")
        return self.spans[start][0], self.spans[end - 1][1]

    @property
    def folded(self) -> str:
        """Diacritics-free, same length as `text`: `đéo` -> `deo`."""
        return fold_diacritics(self.text)


class _Buffer:
    """Characters with their original spans; regex substitutions keep the map."""

    def __init__(self, chars: list[str], spans: list[tuple[int, int]]) -> None:
        self.chars = chars
        self.spans = spans

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def sub(self, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> None:
        text = self.text
        out_chars: list[str] = []
        out_spans: list[tuple[int, int]] = []
        pos = 0
        for m in pattern.finditer(text):
            s, e = m.span()
            new = repl(m)
            if new == m.group(0):
                continue
            out_chars.extend(self.chars[pos:s])
            out_spans.extend(self.spans[pos:s])
            if len(new) == e - s:  # same length: keep per-character spans
                out_chars.extend(new)
                out_spans.extend(self.spans[s:e])
            elif new and e > s:
                whole = (self.spans[s][0], self.spans[e - 1][1])
                out_chars.extend(new)
                out_spans.extend([whole] * len(new))
            pos = e
        out_chars.extend(self.chars[pos:])
        out_spans.extend(self.spans[pos:])
        self.chars, self.spans = out_chars, out_spans


def fold_diacritics(text: str) -> str:
    """Remove Vietnamese diacritics character by character (length preserved)."""
    out = []
    for ch in text:
        if ch in "đĐ":
            out.append("d" if ch == "đ" else "D")
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        out.append(base)
    return "".join(out)


@cache
def teencode_table(path: Path = TEENCODE_PATH) -> dict[str, str]:
    """The reviewed teencode table: token -> expansion (lower case)."""
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("\t")
        if key and value:
            table[unicodedata.normalize("NFC", key.lower())] = unicodedata.normalize("NFC", value.lower())
    return table


def _clusters(text: str) -> _Buffer:
    """NFKC per grapheme cluster (base + combining marks) with original spans."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        cluster = text[i:j]
        if cluster not in _ZERO_WIDTH:
            for ch in unicodedata.normalize("NFKC", cluster):
                chars.append(ch)
                spans.append((i, j))
        i = j
    return _Buffer(chars, spans)


def _lower(buf: _Buffer) -> None:
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    for ch, sp in zip(buf.chars, buf.spans, strict=True):
        low = ch.lower().translate(_HOMOGLYPHS)
        low = unicodedata.normalize("NFC", low)
        chars.extend(low)
        spans.extend([sp] * len(low))
    buf.chars, buf.spans = chars, spans


def _split_tone(ch: str) -> tuple[str, str]:
    """'ò' -> ('o', '\u0300'); characters without a tone -> (ch, '')."""
    decomposed = unicodedata.normalize("NFD", ch)
    tone = "".join(c for c in decomposed if c in _TONES)
    rest = "".join(c for c in decomposed if c not in _TONES)
    return unicodedata.normalize("NFC", rest), tone


# o/u carrying the tone, then a/e/y, then no further letter: old-style placement.
_OLD_TONE = re.compile(r"([òóõỏọùúũủụ])([aey])(?![^\W\d_])")


def _move_tone(m: re.Match[str]) -> str:
    first, second = m.group(1), m.group(2)
    base, tone = _split_tone(first)
    if (base == "o" and second in "ae") or (base == "u" and second == "y"):
        # "qu" + y keeps the tone where it is: the u belongs to the consonant.
        start = m.start(1)
        text = m.string
        if base == "u" and start > 0 and text[start - 1] == "q":
            return m.group(0)
        return base + unicodedata.normalize("NFC", second + tone)
    return m.group(0)


_SPACES = re.compile(r"\s+")
_LETTER_RUN = re.compile(r"([^\W\d_])\1{2,}")
# an accented letter followed by its plain base letter twice or more: quáaaa
_ACCENT_RUN = re.compile(r"([^\W\d_])([a-z])\2+")
_SYMBOL_RUN = re.compile(r"([^\w\s])\1{3,}")
# letters of 1-2 characters joined by dots, dashes, stars...: đ.m, t.à.i, c-ờ
_DOTTED = re.compile(r"(?<![\w.])[^\W\d_]{1,2}(?:[.\-*_'’][^\W\d_]{1,2})+(?![\w])")
_DOT_SEPARATORS = re.compile(r"[.\-*_'’]")
# three or more single letters separated by single spaces: n g u
_SPACED = re.compile(r"(?<!\S)[^\W\d_](?: [^\W\d_]){2,}(?!\S)")
# a word that starts and ends with a letter and hides letters as digits/symbols
_LEET_WORD = re.compile(r"(?<![\w@$!])[^\W\d_][\w@$!]*[^\W\d_](?![\w@$!])")
_WORD = re.compile(r"\w+")


def _drop_elongation(m: re.Match[str]) -> str:
    return m.group(1) if fold_diacritics(m.group(1)) == m.group(2) else m.group(0)


def _unleet(m: re.Match[str]) -> str:
    word = m.group(0)
    inner = [c for c in word if not (c.isalpha())]
    if not inner or any(c not in _LEET for c in inner) or "_" in word:
        return word
    return "".join(_LEET.get(c, c) for c in word)


def normalize(text: str, *, expand_teencode: bool = True) -> Normalized:
    """Normalise a text for the models; see the module docstring for the steps."""
    if not isinstance(text, str):
        raise TypeError(f"normalize() needs a str, got {type(text).__name__}")
    buf = _clusters(text)
    _lower(buf)
    buf.sub(_OLD_TONE, _move_tone)
    buf.sub(_SPACES, lambda m: " ")
    buf.sub(_ACCENT_RUN, _drop_elongation)
    buf.sub(_LETTER_RUN, lambda m: m.group(1))
    buf.sub(_SYMBOL_RUN, lambda m: m.group(1) * 3)
    buf.sub(_DOTTED, lambda m: _DOT_SEPARATORS.sub("", m.group(0)))
    buf.sub(_SPACED, lambda m: m.group(0).replace(" ", ""))
    buf.sub(_LEET_WORD, _unleet)
    if expand_teencode:
        table = teencode_table()
        buf.sub(_WORD, lambda m: table.get(m.group(0), m.group(0)))
    # trim the ends after every rule has run
    while buf.chars and buf.chars[0] == " ":
        buf.chars.pop(0)
        buf.spans.pop(0)
    while buf.chars and buf.chars[-1] == " ":
        buf.chars.pop()
        buf.spans.pop()
    return Normalized(original=text, text=buf.text, spans=tuple(buf.spans))


def normalize_text(text: str) -> str:
    """Only the normalised string (training's view of a text)."""
    return normalize(text).text
