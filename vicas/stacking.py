"""Stacking: the encoder's logits mixed with the character n-gram model's scores, per output.

Two models with different blind spots (a fine-tuned encoder reads context; n-grams read spelling,
slang and obfuscated words) do better together than either alone. Each output column is
`model_scale * encoder logit + ngram_scale * n-gram score`; the scales fold in the weight of each
model and the temperature that puts it on a calibrated scale (`training.text.export` fits them on dev).
A multi-class native head mixes log-probabilities, so its classes stay comparable.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from vicas.taxonomy import CATEGORIES


class Stacking(BaseModel):
    ngram_file: str = Field(description="the n-gram model (vicas.ngrams) in the model folder")
    ngram_weight: float = Field(ge=0, le=1, description="share of the n-gram model in the mix (the default share)")
    ngram_weights: list[float] = Field(
        default_factory=list,
        description="per output column, the n-grams' share fitted on dev (empty: ngram_weight for every column); "
        "informative only, the scales below already hold it",
    )
    model_scale: list[float] = Field(description="per output column (categories x 3, then native): encoder")
    ngram_scale: list[float] = Field(description="per output column: n-gram model")


def log_softmax_heads(native: np.ndarray, heads: dict[str, int]) -> np.ndarray:
    """(N, K) native logits -> log-probabilities for multi-class heads; one-logit heads unchanged."""
    out = native.astype(np.float64).copy()
    start = 0
    for n in heads.values():
        if n > 1:
            block = out[:, start : start + n]
            top = block.max(axis=1, keepdims=True)
            out[:, start : start + n] = block - top - np.log(np.exp(block - top).sum(axis=1, keepdims=True))
        start += n
    return out


def stack(
    severity: np.ndarray, native: np.ndarray, ngram_scores: np.ndarray, stacking: Stacking, heads: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mixed (N, C, 3) severity logits and (N, K) native logits."""
    n_sev = len(CATEGORIES) * 3
    model = np.concatenate([severity.reshape(len(severity), -1), log_softmax_heads(native, heads)], axis=1)
    ngram = np.concatenate([ngram_scores[:, :n_sev], log_softmax_heads(ngram_scores[:, n_sev:], heads)], axis=1)
    mixed = np.asarray(stacking.model_scale)[None] * model + np.asarray(stacking.ngram_scale)[None] * ngram
    mixed = mixed.astype(np.float32)
    return mixed[:, :n_sev].reshape(severity.shape), mixed[:, n_sev:]
