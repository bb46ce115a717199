"""The n-grams' share of the stacked mix is fitted per output on dev, toward the better-informed model."""

from __future__ import annotations

import numpy as np

from training.text.export import fit_share


def _labels_and_signal(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    informative = (2 * y - 1) * 2.0 + rng.normal(0, 1.0, n)
    noise = rng.normal(0, 1.0, n)
    return y, informative, noise


def test_share_goes_to_the_model_that_knows():
    y, informative, noise = _labels_and_signal()
    assert fit_share(model=noise, ngram=informative, y=y, default=0.5) >= 0.8
    assert fit_share(model=informative, ngram=noise, y=y, default=0.5) <= 0.2


def test_two_equally_informed_models_are_mixed():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.4).astype(float)
    a = (2 * y - 1) + rng.normal(0, 1.0, len(y))
    b = (2 * y - 1) + rng.normal(0, 1.0, len(y))  # independent errors: the average beats either
    assert 0.3 <= fit_share(a, b, y, default=0.0) <= 0.7


def test_too_few_labels_keep_the_default_share():
    y, informative, noise = _labels_and_signal(n=200)
    y[:] = 0.0
    y[:9] = 1.0  # 9 positives: too few to choose
    assert fit_share(noise, informative, y, default=0.37) == 0.37
