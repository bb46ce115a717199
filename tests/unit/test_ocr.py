"""vicas.ocr against the real Tesseract (skipped when it is not installed, unless VICAS_REQUIRE_TESSERACT=1)."""

from __future__ import annotations

import math
import unicodedata

import pytest
from PIL import Image, ImageDraw

from training.ocr_eval import cer
from training.text_images import FontNotFound, RenderCondition, load_font, photo_background, render_text
from vicas import ocr
from vicas.ocr import (
    OcrConfig,
    OcrError,
    OcrResult,
    OcrUnavailable,
    OcrWord,
    boxes_for_span,
    ocr_available,
    read_text,
)

SENTENCE = "Nạp 50k nhận 100k tài xỉu uy tín, ib mình ngay"


@pytest.fixture(scope="module")
def font_name() -> str:
    try:
        load_font("dejavu_sans", 20)
    except FontNotFound as e:
        pytest.skip(str(e))
    return "dejavu_sans"


def _draw(text: str, size: int, fg: int = 0, bg: int = 255, canvas: tuple[int, int] | None = None):
    """Text drawn at a known place; returns the image, the font and the drawing origin."""
    font = load_font("dejavu_sans", size)
    w = int(font.getlength(text)) + 2 * size
    h = size * 3
    img = Image.new("RGB", canvas or (w, h), (bg, bg, bg))
    origin = (size, size)
    ImageDraw.Draw(img).text(origin, text, font=font, fill=(fg, fg, fg))
    return img, font, origin


def _word_box(text: str, word: str, font, origin) -> tuple[int, int, int, int]:
    i = text.index(word)
    x = origin[0] + font.getlength(text[:i])
    left, top, right, bottom = font.getbbox(word)
    return (int(x + left), int(origin[1] + top), int(right - left), int(bottom - top))


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2] / 2, box[1] + box[3] / 2)


def _covers(outer, inner, slack: int = 4) -> bool:
    return bool(
        outer[0] - slack <= inner[0]
        and outer[1] - slack <= inner[1]
        and outer[0] + outer[2] + slack >= inner[0] + inner[2]
        and outer[1] + outer[3] + slack >= inner[1] + inner[3]
    )


def _word(result: OcrResult, text: str) -> OcrWord:
    return next(w for w in result.words if w.text.strip(",.") == text)


def test_clear_sentence_is_read_with_low_cer(tesseract, font_name):
    img, _, _ = _draw(SENTENCE, 32)
    res = read_text(img)
    assert cer(res.text, SENTENCE) < 0.1, res.text
    assert res.mean_confidence > 50
    assert res.seconds > 0
    for w in res.words:
        assert res.text[w.start : w.end] == w.text
        left, top, width, height = w.box
        assert left >= 0 and top >= 0 and width > 0 and height > 0
        assert left + width <= img.width and top + height <= img.height
    assert res.text == unicodedata.normalize("NFC", res.text)


def test_small_text_is_upscaled_and_boxes_come_back_in_original_pixels(tesseract, font_name):
    img, font, origin = _draw(SENTENCE, 13)
    res = read_text(img, OcrConfig(min_text_height_px=32))
    assert res.scale > 1.5  # read at a larger scale ...
    assert cer(res.text, SENTENCE) < 0.15, res.text
    drawn = _word_box(SENTENCE, "nhận", font, origin)
    got = _word(res, "nhận").box
    assert _covers(got, drawn), (got, drawn)  # ... yet the box is in the original image's pixels
    assert got[2] < 3 * drawn[2] and got[3] < 3 * drawn[3]


def test_rotated_text_is_deskewed_and_boxes_rotate_back(tesseract, font_name):
    size = 30
    img, font, origin = _draw(SENTENCE, size)
    angle = 6.0
    rotated = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    res = read_text(rotated)
    assert abs(res.skew_deg + angle) < 1.0
    assert cer(res.text, SENTENCE) < 0.1, res.text
    # where the centre of "tài" went when the image was rotated
    cx, cy = _centre(_word_box(SENTENCE, "tài", font, origin))
    a = math.radians(angle)
    dx, dy = cx - img.width / 2, cy - img.height / 2
    ex = rotated.width / 2 + dx * math.cos(a) + dy * math.sin(a)
    ey = rotated.height / 2 - dx * math.sin(a) + dy * math.cos(a)
    gx, gy = _centre(_word(res, "tài").box)
    assert abs(gx - ex) < size and abs(gy - ey) < size, ((gx, gy), (ex, ey))


def test_boxes_for_span(tesseract, font_name):
    img, _, _ = _draw(SENTENCE, 32)
    res = read_text(img)
    start = res.text.index("tài xỉu")
    boxes = boxes_for_span(res, start, start + len("tài xỉu"))
    assert boxes == [_word(res, "tài").box, _word(res, "xỉu").box]
    # a span inside one word gives that word; a span over a space alone gives nothing
    assert boxes_for_span(res, start + 1, start + 2) == [_word(res, "tài").box]
    assert boxes_for_span(res, start + 3, start + 4) == []
    assert boxes_for_span(res, 0, len(res.text)) == [w.box for w in res.words]


def test_blank_image_gives_empty_text(tesseract):
    res = read_text(Image.new("RGB", (400, 200), (255, 255, 255)))
    assert res.text == "" and res.words == [] and res.mean_confidence == 0.0


def test_noise_read_as_text_is_not_upscaled(tesseract):
    """A noisy photo without text is read as hundreds of unsure 'words'; upscaling it took 15-30 s.

    Asserted on what the reader did (no upscaled pass), not on seconds: timings vary with machine load.
    """
    import random

    import numpy as np

    rng = random.Random(1)
    photo_background((480, 360), rng)
    photo = np.asarray(photo_background((480, 360), rng), dtype=np.float64)
    noisy = photo + np.random.default_rng(1).normal(0, 20, size=photo.shape)
    res = read_text(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    assert res.scale == 1.0 and res.passes <= 3


def test_light_text_on_dark_background(tesseract, font_name):
    img, _, _ = _draw(SENTENCE, 28, fg=245, bg=25)
    res = read_text(img)
    assert res.inverted
    assert cer(res.text, SENTENCE) < 0.1, res.text


def test_meme_and_chat_styles_are_read(tesseract, font_name):
    for style in ("meme", "chat"):
        r = render_text(SENTENCE, RenderCondition(font=font_name, size=32, style=style, width=520, seed=3))
        res = read_text(r.image)
        assert cer(res.text, r.text) < 0.15, (style, res.text)


def test_lines_are_separated_by_newlines(tesseract, font_name):
    r = render_text("Dòng thứ nhất ở đây\nDòng thứ hai ở đây", RenderCondition(font=font_name, size=30))
    res = read_text(r.image)
    assert res.text.count("\n") == 1, res.text


def test_missing_tesseract_binary_names_the_packages(monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not ocr_available()
    with pytest.raises(OcrUnavailable, match=r"apt-get install tesseract-ocr tesseract-ocr-vie"):
        read_text(Image.new("RGB", (50, 50), (255, 255, 255)))


def test_missing_language_data_names_the_package(tesseract):
    with pytest.raises(OcrUnavailable, match=r"apt-get install tesseract-ocr-klingon"):
        read_text(Image.new("RGB", (50, 50)), OcrConfig(languages="vie+klingon"))


def test_timeout_is_an_ocr_error(tesseract, font_name):
    r = render_text(SENTENCE * 20, RenderCondition(font=font_name, size=24, width=900))
    with pytest.raises(OcrError, match="timed out"):
        read_text(r.image, OcrConfig(timeout_s=0.01))


def test_a_later_pass_running_out_of_time_keeps_what_was_read(tesseract, font_name, monkeypatch):
    img, _, _ = _draw(SENTENCE, 13)  # small: an upscaled second pass is due
    real, calls = ocr._run_tesseract, []

    def first_only(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise ocr.OcrTimeout("OCR timed out after 30 s")
        return real(*args, **kwargs)

    monkeypatch.setattr(ocr, "_run_tesseract", first_only)
    res = read_text(img, OcrConfig(min_text_height_px=32))
    assert len(calls) == 2 and res.passes == 1 and res.scale == 1.0
    assert cer(res.text, SENTENCE) < 0.3, res.text


def test_decomposed_diacritics_are_nfc_normalised(monkeypatch):
    import pytesseract

    decomposed = unicodedata.normalize("NFD", "nhận tiền")
    fake = {
        "text": decomposed.split(),
        "conf": [90.0, 80.0],
        "block_num": [1, 1],
        "par_num": [1, 1],
        "line_num": [1, 1],
        "left": [0, 60],
        "top": [0, 0],
        "width": [50, 50],
        "height": [20, 20],
    }
    monkeypatch.setattr(ocr, "check_ocr", lambda languages: None)
    monkeypatch.setattr(pytesseract, "image_to_data", lambda *a, **k: fake)
    res = read_text(Image.new("RGB", (200, 40), (255, 255, 255)), OcrConfig(deskew=False, min_text_height_px=0))
    assert res.text == "nhận tiền" == unicodedata.normalize("NFC", res.text)
    assert [(w.start, w.end) for w in res.words] == [(0, 4), (5, 9)]


def test_config_is_validated():
    with pytest.raises(ValueError, match="psm"):
        OcrConfig(psm=0)
    with pytest.raises(ValueError):
        OcrConfig(languages="vie; rm -rf /")
    with pytest.raises(ValueError):
        OcrConfig(min_confidence=150)
