"""One verdict per item: the combination of text, OCR text, visual model and nudity detector."""

from __future__ import annotations

import numpy as np
import pytest

from vicas.combine import ImageReading, ItemPrediction, combine, combine_predictions, texts_for
from vicas.engine import TextPrediction
from vicas.inference import Evidence
from vicas.normalize import normalize
from vicas.policy import load_policy
from vicas.result import build_result
from vicas.taxonomy import CATEGORIES, Band


def text_pred(text: str, severities: dict[str, int], evidence: list[Evidence] | None = None) -> TextPrediction:
    sev = {c: severities.get(c, 0) for c in CATEGORIES}
    scores = {c: 0.9 if sev[c] else 0.05 for c in CATEGORIES}
    return TextPrediction(normalize(text), sev, scores, np.zeros((len(CATEGORIES), 3)), evidence or [])


def reading(ocr_text: str = "", visual: dict[str, int] | None = None, nudity=None) -> ImageReading:
    words, pos = [], 0
    for i, w in enumerate(ocr_text.split(" ")):
        words.append((pos, pos + len(w), (10 * i, 5, 9, 12)))
        pos += len(w) + 1
    return ImageReading(
        "meme.png",
        200,
        100,
        ocr_text=ocr_text,
        ocr_words=words,
        visual_severities=visual or {},
        visual_scores={c: 0.8 for c in (visual or {})},
        nudity=nudity or [],
    )


def test_the_page_takes_the_highest_severity_of_any_part():
    text = text_pred("bài viết về bóng đá", {"violence": 1})
    r = reading("nạp 50k tài xỉu", visual={"gambling": 2, "violence": 0})
    ocr = text_pred("nạp 50k tài xỉu", {"gambling": 3}, [Evidence("gambling", 8, 15, "tài xỉu", 0.95)])
    item = combine(text, [r], [ocr])
    assert item.severities["gambling"] == 3 and item.severities["violence"] == 1
    assert item.images[0].sources == {"gambling": ["ocr", "visual"]}
    assert item.images[0].severities["gambling"] == 3
    sources = {e.source for e in item.evidence}
    assert sources == {"image:0:ocr", "image:0:visual"}  # the text had no evidence spans


def test_ocr_evidence_carries_the_boxes_of_its_words():
    r = reading("nạp 50k tài xỉu")
    ocr = text_pred("nạp 50k tài xỉu", {"gambling": 3}, [Evidence("gambling", 8, 15, "tài xỉu", 0.95)])
    ev = combine(None, [r], [ocr]).evidence
    assert len(ev) == 1 and ev[0].source == "image:0:ocr"
    assert ev[0].boxes == ((20, 5, 9, 12), (30, 5, 9, 12))  # the words "tài" and "xỉu"
    assert (ev[0].start, ev[0].end, ev[0].text) == (8, 15, "tài xỉu")


def test_visual_and_nudity_evidence_have_boxes_but_no_offsets():
    r = reading("", visual={"violence": 2}, nudity=[("FEMALE_BREAST_EXPOSED", 2, 0.81, (5, 6, 7, 8))])
    item = combine(None, [r], [None])
    assert item.severities["violence"] == 2 and item.severities["sexual"] == 2
    assert item.scores["sexual"] == pytest.approx(0.81)
    vis = next(e for e in item.evidence if e.source == "image:0:visual")
    assert vis.start is None and vis.boxes == ((0, 0, 200, 100),)
    nud = next(e for e in item.evidence if e.source == "image:0:nudity")
    assert nud.category == "sexual" and nud.text == "FEMALE_BREAST_EXPOSED" and nud.boxes == ((5, 6, 7, 8),)


def test_a_harmless_image_does_not_lower_a_harmful_text():
    text = text_pred("mày chết đi", {"harassment": 3})
    item = combine(text, [reading("chúc mừng sinh nhật")], [text_pred("chúc mừng sinh nhật", {})])
    assert item.severities["harassment"] == 3
    assert item.images[0].severities == dict.fromkeys(CATEGORIES, 0)


def test_texts_for_and_combine_predictions_keep_the_order():
    readings = [reading("chữ một"), reading(""), reading("chữ hai")]
    assert texts_for("trang", readings) == ["trang", "chữ một", "chữ hai"]
    assert texts_for(None, readings) == ["chữ một", "chữ hai"]
    preds = [text_pred("trang", {}), text_pred("chữ một", {"profanity": 1}), text_pred("chữ hai", {"scam": 2})]
    item = combine_predictions("trang", readings, preds)
    assert [p.severities["profanity"] for p in item.images] == [1, 0, 0]
    assert [p.severities["scam"] for p in item.images] == [0, 0, 2]
    with pytest.raises(ValueError):
        combine_predictions(None, readings, preds)  # one prediction too many


def test_build_result_reports_each_image_and_masks_personal_data_in_ocr_text():
    policy = load_policy()
    ocr_text = "bé Lan lớp 3A sđt 0912345678"
    ocr = text_pred(ocr_text, {"personal_data": 3}, [Evidence("personal_data", 3, 6, "Lan", 0.9)])
    item = combine(text_pred("ảnh lớp học", {}), [reading(ocr_text)], [ocr])
    res = build_result(item, policy, "m@1")
    assert res.band is Band.C
    assert res.images[0].band is Band.C and res.images[0].severities == {"personal_data": 3}
    assert "0912345678" not in res.images[0].ocr_text and "Lan" not in res.images[0].ocr_text
    ev = [e for e in res.evidence if e.category == "personal_data"]
    assert ev and all(e.text == "[redacted]" for e in ev)


def test_text_only_results_are_unchanged_by_the_image_path():
    pred = text_pred("đm vãi", {"profanity": 2}, [Evidence("profanity", 0, 2, "đm", 0.9)])
    res = build_result(pred, load_policy(), "m@1")
    again = build_result(ItemPrediction.from_text(pred), load_policy(), "m@1")
    assert res == again and res.images == []
    assert res.evidence[0].source == "text" and res.evidence[0].boxes == []


def test_real_photo_readers_join_the_image_verdict_with_named_evidence():
    """open_nsfw and the ImageNet cues raise their categories like the other readers, each named as a source."""
    r = reading("", visual={"violence": 2})
    r.open_nsfw, r.open_nsfw_severity = 0.93, 2
    r.cues = [("violence", 1, "revolver", 0.83), ("substances", 1, "beer bottle", 0.61)]
    item = combine(None, [r], [None])
    assert item.severities["sexual"] == 2 and item.severities["violence"] == 2 and item.severities["substances"] == 1
    assert item.images[0].sources == {"violence": ["visual", "imagenet"], "sexual": ["open_nsfw"],
                                      "substances": ["imagenet"]}  # fmt: skip
    by_source = {(e.source, e.category): e for e in item.evidence}
    nsfw = by_source["image:0:open_nsfw", "sexual"]
    assert nsfw.text == "nsfw 0.93" and nsfw.score == 0.93 and nsfw.boxes == ((0, 0, 200, 100),)
    assert by_source["image:0:imagenet", "violence"].text == "revolver 0.83"
    assert by_source["image:0:imagenet", "substances"].text == "beer bottle 0.61"
    # a firing reader's probability counts as the category's score when above the others' (visual: 0.8)
    assert item.scores["sexual"] == 0.93 and item.scores["violence"] == 0.83 and item.scores["substances"] == 0.61
    res = build_result(item, load_policy(), "m@1")
    assert res.band is Band.T16 and {e.source for e in res.evidence} == {
        "image:0:visual", "image:0:open_nsfw", "image:0:imagenet"}  # fmt: skip


def test_a_quiet_real_photo_reading_adds_no_evidence_and_no_score():
    r = reading("")
    r.open_nsfw, r.open_nsfw_severity = 0.31, 0  # read, below the first threshold
    item = combine(None, [r], [None])
    assert item.evidence == [] and item.scores["sexual"] == 0.0 and item.severities["sexual"] == 0
    assert item.images[0].sources == {}
