"""Trim a Unigram (SentencePiece-style) vocabulary to the pieces a corpus uses.

Most of multilingual-e5-small's 118M parameters are its 250k-row word
embedding; Vietnamese text uses a small fraction of it. Keeping the pieces the
corpus tokenises into (plus every one-character piece of the characters it
contains, so unseen words still spell out) shrinks the model several times
without changing how the corpus is tokenised.
"""

from __future__ import annotations

import json

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerFast


def trim_vocabulary(
    encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, texts: list[str]
) -> PreTrainedTokenizerFast:
    """Shrink the encoder's word embedding and the tokenizer in place; returns the new tokenizer."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"vocabulary trimming supports Unigram tokenizers, got {model.get('type')}")
    vocab: list[list[object]] = model["vocab"]
    used: set[int] = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 2048):
        for ids in tokenizer(texts[start : start + 2048], add_special_tokens=False)["input_ids"]:
            used.update(ids)
    chars = {ch for t in texts for ch in t}
    for i, (piece, _) in enumerate(vocab):
        p = str(piece).lstrip("▁")
        if len(p) == 1 and p in chars:
            used.add(i)
    keep = sorted(used)
    remap = {old: new for new, old in enumerate(keep)}
    model["vocab"] = [vocab[i] for i in keep]
    model["unk_id"] = remap[model["unk_id"]]
    post = spec.get("post_processor") or {}
    for tok in (post.get("special_tokens") or {}).values():
        tok["ids"] = [remap[i] for i in tok["ids"]]
    for added in spec.get("added_tokens", []):
        added["id"] = remap[added["id"]]
    new_backend = Tokenizer.from_str(json.dumps(spec))
    new_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=new_backend,
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
        pad_token=tokenizer.pad_token,
        unk_token=tokenizer.unk_token,
        cls_token=tokenizer.cls_token,
        sep_token=tokenizer.sep_token,
        model_max_length=tokenizer.model_max_length,
    )
    emb = encoder.get_input_embeddings()
    new_emb = torch.nn.Embedding(
        len(keep), int(emb.weight.shape[1]), padding_idx=remap.get(int(tokenizer.pad_token_id))
    )
    with torch.no_grad():
        new_emb.weight.copy_(emb.weight[torch.tensor(keep)])
    encoder.set_input_embeddings(new_emb)
    encoder.config.vocab_size = len(keep)
    encoder.config.pad_token_id = remap[int(tokenizer.pad_token_id)]
    return new_tokenizer
