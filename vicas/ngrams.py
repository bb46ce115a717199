"""Character n-gram TF-IDF with linear scores, in numpy: the baseline model, served without scikit-learn.

It mirrors scikit-learn's `TfidfVectorizer(analyzer="char_wb", lowercase=True, sublinear_tf=True,
norm="l2")` followed by linear decision functions, which is what `training.text.baseline` trains;
`training.text.baseline.to_ngram_model` converts one and a test checks that the scores agree. Saved as one
`.npz` file (no pickles), so an exported model folder stays plain data.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_WHITE = re.compile(r"\s\s+")


def char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's `char_wb` analyzer: n-grams inside words, each word padded with one space."""
    text = _WHITE.sub(" ", text.lower())
    out: list[str] = []
    for word in text.split():
        w = f" {word} "
        for n in range(lo, hi + 1):
            offset = 0
            out.append(w[offset : offset + n])
            while offset + n < len(w):
                offset += 1
                out.append(w[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return out


@dataclass
class NgramModel:
    """Vocabulary, idf weights and linear outputs (one column per output score)."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (F,)
    weights: np.ndarray  # (F, O)
    bias: np.ndarray  # (O,)
    ngram_range: tuple[int, int]

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices and values of the non-zero TF-IDF features of one (normalised) text."""
        grams = char_wb_ngrams(text, *self.ngram_range)
        counts = Counter(j for g in grams if (j := self.vocabulary.get(g)) is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        val = (1.0 + np.log(tf)) * self.idf[idx]
        return idx, (val / np.linalg.norm(val)).astype(np.float32)

    def scores(self, texts: list[str]) -> np.ndarray:
        """(N, O) linear scores of normalised texts."""
        out = np.tile(self.bias.astype(np.float32), (len(texts), 1))
        for i, text in enumerate(texts):
            idx, val = self.features(text)
            if len(idx):
                out[i] += val @ self.weights[idx]
        return out

    def save(self, path: Path) -> None:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        with path.open("wb") as f:  # np.savez would append ".npz" to a name without it
            np.savez_compressed(
                f,
                terms=np.array(terms, dtype=str),
                idf=self.idf.astype(np.float32),
                weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32),
                ngram_range=np.array(self.ngram_range, dtype=np.int64),
            )

    @classmethod
    def load(cls, path: Path) -> NgramModel:
        with np.load(path, allow_pickle=False) as z:
            terms = z["terms"].tolist()
            lo, hi = (int(v) for v in z["ngram_range"])
            return cls({t: i for i, t in enumerate(terms)}, z["idf"], z["weights"], z["bias"], (lo, hi))
