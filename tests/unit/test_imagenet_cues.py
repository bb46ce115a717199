"""ImageNet cues: the committed table, its checks, and the reading of a tiny ImageNet-like network made here.

The tiny network averages each colour channel and maps it onto 1000 logits: a red picture reads as
"revolver", a blue one as "slot, one-armed bandit", a grey one as nothing in particular; its features are
the three channel means. It has the exported network's interface (images (B, 3, 224, 224) -> logits
(B, 1000), features (B, D)), so the reader, the heads' domain, the combination and the result are exercised
without the 18 MB real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vicas.combine import combine
from vicas.image_reader import ImageReader, NamedImage
from vicas.imagenet_cues import (
    CUES_TSV,
    DOMAIN_FILE,
    Cue,
    CueTableError,
    HeadsDomain,
    ImageNetCues,
    cue_hits,
    load_cues,
    softmax,
    table_digest,
)
from vicas.manifest import Manifest, ManifestError
from vicas.policy import load_policy
from vicas.result import build_result

REVOLVER, SLOT, BEER_GLASS = 763, 800, 441


def tiny_imagenet(path: Path, features: bool = True) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((3, 1000), dtype=np.float32)
    w[0, REVOLVER] = 20.0  # red
    w[2, SLOT] = 20.0  # blue
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
            helper.make_node("Identity", ["flat"], ["features"]),
        ],
        "tiny_imagenet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])]
        + ([helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3])] if features else []),
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(1000, dtype=np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def cues(tmp_path_factory) -> ImageNetCues:
    folder = tmp_path_factory.mktemp("imagenet")
    tiny_imagenet(folder / "imagenet.onnx")
    manifest = Manifest.model_construct(imagenet_onnx="imagenet.onnx", files={"imagenet.onnx": "checked elsewhere"})
    return ImageNetCues(folder, manifest, threads=1)


def test_the_committed_table_maps_weapons_substances_and_gambling_at_the_mild_level():
    table = {c.index: c for c in load_cues()}
    assert {c.category for c in table.values()} == {"violence", "substances", "gambling"}
    assert table[413].label == "assault rifle" and table[REVOLVER].label == "revolver" and table[764].label == "rifle"
    assert table[SLOT].label == "slot" and table[SLOT].category == "gambling"
    assert {440, 907, 845} <= set(table) and table[845].threshold == 0.7  # syringes: medical look-alikes
    assert all(c.severity == 1 and 0.5 <= c.threshold < 1 and c.why for c in table.values())
    text = CUES_TSV.read_text(encoding="utf-8")
    assert "720 pill bottle" in text and "657 missile" in text  # the classes left out are written down too


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("763\trevolver\tviolence\t1\t0.5", "6 tab-separated"),
        ("1000\tnothing\tviolence\t1\t0.5\twhy", "outside 0-999"),
        ("763\trevolver\thate\t1\t0.5\twhy", "not a visual category"),
        ("763\trevolver\tviolence\t4\t0.5\twhy", "severity 4"),
        ("763\trevolver\tviolence\t1\t1.5\twhy", "not a probability"),
        ("763\trevolver\tviolence\tone\t0.5\twhy", "invalid literal"),
        ("763\trevolver\tviolence\t1\t0.5\twhy\n763\trevolver\tviolence\t1\t0.5\twhy", "listed twice"),
    ],
)
def test_a_malformed_table_is_refused_with_its_line(tmp_path, row, message):
    path = tmp_path / "cues.tsv"
    path.write_text(f"# comment\n{row}\n", encoding="utf-8")
    with pytest.raises(CueTableError, match=message):
        load_cues(path)
    path.write_text("# only comments\n", encoding="utf-8")
    with pytest.raises(CueTableError, match="no cues"):
        load_cues(path)


def test_a_cue_fires_at_its_threshold_and_names_its_class():
    table = [
        Cue(REVOLVER, "revolver, six-gun", "violence", 1, 0.5, "w"),
        Cue(BEER_GLASS, "beer glass", "substances", 1, 0.7, "w"),
    ]
    probs = np.zeros(1000, dtype=np.float32)
    probs[REVOLVER], probs[BEER_GLASS] = 0.5, 0.69
    (hit,) = cue_hits(probs, table)
    assert (hit.category, hit.severity, hit.label, hit.text) == ("violence", 1, "revolver", "revolver 0.50")
    probs[BEER_GLASS] = 0.7
    assert [h.label for h in cue_hits(probs, table)] == ["beer glass", "revolver"]  # strongest first
    assert softmax(np.array([[0.0, 0.0]]))[0].tolist() == [0.5, 0.5]


def test_the_network_is_read_through_the_table(cues):
    red, blue, grey = (Image.new("RGB", (300, 200), c) for c in ((255, 0, 0), (0, 0, 255), (127, 127, 127)))
    probs = cues.probabilities([red, blue, grey])
    assert probs.shape == (3, 1000) and np.allclose(probs.sum(1), 1, atol=1e-5)
    hits = cues.read([red, blue, grey])
    assert [[(h.category, h.label) for h in row] for row in hits] == [
        [("violence", "revolver")],
        [("gambling", "slot")],
        [],
    ]
    assert cues.size == 224 and cues.version == f"imagenet-cues@{table_digest()}"


def test_a_model_without_an_imagenet_network_has_no_cues(tmp_path):
    with pytest.raises(ManifestError, match="no ImageNet network"):
        ImageNetCues(tmp_path, Manifest.model_construct(imagenet_onnx=None, files={}))


def test_cues_are_evidence_in_the_verdict_beside_the_other_readers(cues):
    reader = ImageReader(cues=cues)
    assert reader.version == cues.version
    red = Image.new("RGB", (120, 80), (255, 0, 0))
    (r,) = reader.read([NamedImage("gun.jpg", red)])
    assert r.cues and r.cues[0][:3] == ("violence", 1, "revolver")
    res = build_result(combine(None, [r], [None]), load_policy(), "v")
    (ev,) = res.evidence
    assert ev.source == "image:0:imagenet" and ev.category == "violence" and ev.text.startswith("revolver 1.0")
    assert ev.boxes == [(0, 0, 120, 80)] and res.images[0].sources == {"violence": ["imagenet"]}
    assert res.categories["violence"].severity == 1 and res.band.value == "K"


def test_the_heads_domain_keeps_its_dev_share_and_survives_storage(tmp_path):
    rng = np.random.default_rng(3)
    centre = np.array([1.0, 0.2, 0.1])
    refs = centre + 0.05 * rng.standard_normal((200, 3))
    dev = centre + 0.05 * rng.standard_normal((100, 3))
    domain = HeadsDomain.fit(refs, dev, keep=0.9, k=5)
    assert np.mean(domain.similarity(dev) >= domain.threshold) == pytest.approx(0.9, abs=0.011)
    far = np.array([[-0.1, 0.2, 1.0]])  # another direction: another kind of picture
    assert domain.similarity(far)[0] < domain.threshold
    domain.save(tmp_path / DOMAIN_FILE)
    back = HeadsDomain.load(tmp_path / DOMAIN_FILE)
    assert back.k == 5 and back.threshold == pytest.approx(domain.threshold, abs=1e-6)
    assert np.allclose(back.similarity(dev), domain.similarity(dev), atol=1e-6)


class StubHeads:
    """Stands in for VisualEngine: says violence 2 on every picture it is shown, and counts them."""

    version = "stub-heads@1"

    def __init__(self) -> None:
        self.head_categories = ["violence"]
        self.seen = 0

    def classify(self, images):
        from types import SimpleNamespace

        self.seen += len(images)
        return [SimpleNamespace(severities={"violence": 2}, scores={"violence": 0.99}) for _ in images]


def test_the_heads_are_read_only_on_pictures_like_their_own(tmp_path):
    """Issue 16: the heads learned from drawings fired on photographs; outside their domain they are not read."""
    tiny_imagenet(tmp_path / "imagenet.onnx")
    rng = np.random.default_rng(0)
    red_ish = [np.tile([1.0, -0.99, -0.99], (40, 1)) + 0.1 * rng.standard_normal((40, 3)) for _ in range(2)]
    HeadsDomain.fit(*red_ish, keep=0.99).save(tmp_path / DOMAIN_FILE)  # the channel means of reddish drawings
    manifest = Manifest.model_construct(
        imagenet_onnx="imagenet.onnx", files={"imagenet.onnx": "x"}, heads_domain=DOMAIN_FILE
    )
    network = ImageNetCues(tmp_path, manifest, threads=1, cues=False)
    assert network.domain is not None and network.cues == [] and network.version == "imagenet-domain"
    heads = StubHeads()
    reader = ImageReader(visual=heads, cues=network)  # type: ignore[arg-type]
    red, blue = Image.new("RGB", (50, 50), (255, 0, 0)), Image.new("RGB", (50, 50), (0, 0, 255))
    inside, outside = reader.read([NamedImage("drawing", red), NamedImage("photo", blue)])
    assert heads.seen == 1  # the heads never looked at the picture outside their domain
    assert inside.heads_read and inside.visual_severities == {"violence": 2} and inside.cues == []
    assert not outside.heads_read and outside.visual_severities == {} and outside.visual_scores == {}
    assert outside.heads_similarity is not None and outside.heads_similarity < network.domain.threshold
    item = combine(None, [inside, outside], [None, None])
    assert item.images[0].severities["violence"] == 2 and item.images[1].severities["violence"] == 0
    # an ImageNet file without features (an older export) has no domain: the heads read everything
    tiny_imagenet(tmp_path / "old.onnx", features=False)
    old = Manifest.model_construct(imagenet_onnx="old.onnx", files={"old.onnx": "x"}, heads_domain=DOMAIN_FILE)
    assert ImageNetCues(tmp_path, old).domain is None
