"""The numpy n-gram model serves the scikit-learn baseline's scores exactly, without scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from training.config import BaselineConfig
from training.text.baseline import Baseline, to_ngram_model
from training.text.model import NATIVE_HEADS, native_slices
from vicas.ngrams import NgramModel, char_wb_ngrams
from vicas.taxonomy import CATEGORIES

RUDE = ["đồ ngu vãi", "mày im đi thằng ngu", "cút đi đồ khốn", "ngu như bò", "đm thằng này láo", "im mồm đi"]
KIND = ["cảm ơn bạn nhiều", "bài viết hay quá", "chúc cả nhà vui vẻ", "trời đẹp", "món này ngon ghê", "hẹn gặp lại"]


def rows() -> list[dict]:
    out = []
    for i in range(60):
        rude = i % 2 == 0
        text = (RUDE if rude else KIND)[i % 6] + f" {i}"
        labels = {"profanity": [1, 1] if rude else [0, 0], "harassment": [2, 2] if rude and i % 4 == 0 else [0, 0]}
        native = {"vihsd": (2 if i % 4 == 0 else 1) if rude else 0, "victsd_toxic": int(rude)}
        if i % 3 == 0:
            native["vithsd_individual"] = i % 2  # two classes of a four-class head
        out.append({"norm": text, "labels": labels, "native": native})
    return out


def test_char_wb_ngrams_match_scikit_learn():
    text = "Mày  im đi\tthằng NGU!! a"
    ours = char_wb_ngrams(text, 2, 5)
    theirs = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()(text)
    assert ours == theirs


def test_converted_baseline_gives_the_same_scores(tmp_path):
    model = Baseline(BaselineConfig(max_features=5000))
    data = rows()
    model.fit(data)
    ngram = to_ngram_model(model)
    ngram.save(tmp_path / "ngram.npz")
    loaded = NgramModel.load(tmp_path / "ngram.npz")
    texts = ["thằng ngu này cút đi", "cảm ơn cả nhà", "xyz", "", *[r["norm"] for r in data[:10]]]
    sev, nat = model.logits(texts, normalized=True)
    scores = loaded.scores(texts)
    n_sev = len(CATEGORIES) * 3
    np.testing.assert_allclose(scores[:, :n_sev], sev.reshape(len(texts), -1), atol=1e-4)
    for name, sl in native_slices().items():
        ours = scores[:, n_sev:][:, sl]
        if NATIVE_HEADS[name] == 1:
            np.testing.assert_allclose(ours, nat[:, sl], atol=1e-4)
        elif model.native_models.get(name) is not None:
            probs = np.exp(ours - ours.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            np.testing.assert_allclose(probs, np.exp(nat[:, sl]), atol=1e-4)
    assert np.isfinite(scores).all()
