"""The diacritics restorer: context decides the accents, length and untouched text are kept."""

from __future__ import annotations

import gzip
import json

import pytest

from vicas.diacritics import DiacriticsRestorer, accented_share, is_unaccented
from vicas.normalize import fold_diacritics

CORPUS = [
    "con ma đáng sợ lắm",
    "con ma đáng sợ thật",
    "nhà đó có con ma",
    "mà em ơi đừng buồn",
    "mà em ơi anh nhớ em",
    "mấy thằng ngu này",
    "mấy thằng ngu quá",
    "em đi học về muộn",
    "em đi học rồi",
    "anh nhớ em nhiều lắm",
]


@pytest.fixture(scope="module")
def restorer() -> DiacriticsRestorer:
    return DiacriticsRestorer.fit(CORPUS * 2, min_count=2)


def test_context_chooses_the_accents(restorer):
    assert restorer.restore("con ma dang so lam") == "con ma đáng sợ lắm"
    assert restorer.restore("ma em oi dung buon") == "mà em ơi đừng buồn"
    assert restorer.restore("may thang ngu nay") == "mấy thằng ngu này"


def test_length_kept_and_unknown_text_untouched(restorer):
    text = "em di hoc, xyzzy 123 ve muon!!"
    restored = restorer.restore(text)
    assert len(restored) == len(text)
    assert restored == "em đi học, xyzzy 123 về muộn!!"
    assert fold_diacritics(restored) == text


def test_punctuation_starts_a_new_context(restorer):
    # "ma" right after a full stop is read without "con" as its left context
    assert restorer.restore("nha do co con ma. ma em oi") == "nhà đó có con ma. mà em ơi"


def test_unaccented_gate():
    assert is_unaccented("may thang ngu nay qua")
    assert not is_unaccented("mấy thằng ngu này quá")
    assert not is_unaccented("ok")  # too short to tell
    assert accented_share("mấy thang ngu")[0] == 3
    assert accented_share("") == (0, 0.0)


def test_fit_ignores_unaccented_texts():
    r = DiacriticsRestorer.fit(["con ma dang so"] * 3 + ["con ma đáng sợ"] * 2, min_count=2)
    assert "dang" not in r.unigrams and "đáng" in r.unigrams


def test_save_is_deterministic_and_loads_back(restorer, tmp_path):
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    restorer.save(a)
    DiacriticsRestorer.fit(CORPUS * 2, min_count=2).save(b)
    assert a.read_bytes() == b.read_bytes()
    loaded = DiacriticsRestorer.load(a)
    assert loaded.restore("may thang ngu qua") == restorer.restore("may thang ngu qua")


def test_unknown_format_is_refused(tmp_path):
    path = tmp_path / "old.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"format": 99}, f)
    with pytest.raises(ValueError, match="format 99"):
        DiacriticsRestorer.load(path)


def test_viterbi_finds_the_best_reading(restorer):
    """The cached Viterbi search agrees with scoring every reading by log_p."""
    from itertools import product

    from vicas.diacritics import BOS

    for text in ("may thang ngu nay", "con ma dang so", "ma em oi", "em di hoc ve muon"):
        words = text.split()
        best = max(
            product(*(restorer._options(w) for w in words)),
            key=lambda seq: sum(
                restorer.log_p(u, v, w) for u, v, w in zip((BOS, BOS, *seq), (BOS, *seq), seq, strict=False)
            ),
        )
        assert restorer.restore_words(words) == list(best)
