"""The multi-task text model: a shared encoder with contract and auxiliary heads.

Outputs, for a batch of token ids:
- `severity`: (B, C, 3) cumulative logits, logit[c, k-1] scores "severity of c >= k";
- `tokens`: (B, T, C) per-token, per-category evidence logits. They are trained
  by multiple-instance learning (a category is present when one of its tokens
  is) and, on ViHOS, directly on the annotated offensive spans;
- `native`: (B, N) logits of the public datasets' own labels (auxiliary tasks,
  and the benchmarks in their native label spaces).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from vicas.taxonomy import CATEGORIES

# Native label heads: name -> number of logits (1 = binary).
NATIVE_HEADS: dict[str, int] = {
    "vihsd": 3,
    "victsd_toxic": 1,
    "vispam": 1,
    "vispam_type": 4,
    "smishing": 1,
    "vithsd_individual": 4,
    "vithsd_groups": 4,
    "vithsd_religion": 4,
    "vithsd_race": 4,
    "vithsd_politics": 4,
}
# Categories whose token evidence ViHOS's "hate or offensive" spans supervise.
VIHOS_CATEGORIES = ("hate", "harassment", "profanity")


def native_slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, n in NATIVE_HEADS.items():
        out[name] = slice(start, start + n)
        start += n
    return out


@dataclass
class ModelOutput:
    severity: torch.Tensor
    tokens: torch.Tensor
    native: torch.Tensor


class HarmClassifier(nn.Module):
    def __init__(self, encoder: PreTrainedModel, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        n_cat = len(CATEGORIES)
        self.severity_head = nn.Linear(hidden, n_cat * 3)
        self.token_head = nn.Linear(hidden, n_cat)
        self.native_head = nn.Linear(hidden, sum(NATIVE_HEADS.values()))

    @classmethod
    def from_base(cls, base_dir: str, num_layers: int | None = None, dropout: float = 0.1) -> HarmClassifier:
        config = AutoConfig.from_pretrained(base_dir)
        if num_layers is not None and num_layers < config.num_hidden_layers:
            config.num_hidden_layers = num_layers  # keep the first layers: faster, most of the quality
        encoder = AutoModel.from_pretrained(base_dir, config=config, add_pooling_layer=False)
        return cls(encoder, config.hidden_size, dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.dropout(hidden)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        severity = self.severity_head(pooled).view(-1, len(CATEGORIES), 3)
        tokens = self.token_head(hidden)
        tokens = tokens.masked_fill(attention_mask.unsqueeze(-1) == 0, -1e4)
        return ModelOutput(severity=severity, tokens=tokens, native=self.native_head(pooled))


class ExportWrapper(nn.Module):
    """Tuple outputs with probabilities, for ONNX export (serving needs no torch)."""

    def __init__(self, model: HarmClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids, attention_mask)
        return out.severity, out.tokens, out.native
