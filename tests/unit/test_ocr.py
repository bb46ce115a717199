"""vicas.ocr against the real Tesseract (skipped when it is not installed, unless VICAS_REQUIRE_TESSERACT=1)."""

from __future__ import annotations

import importlib.util
import math
import threading
import unicodedata

import numpy as np
import pytest
from PIL import Image, ImageDraw

from training.images.ocr_eval import cer
from training.images.text_images import FontNotFound, RenderCondition, load_font, photo_background, render_text
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
HAS_TESSEROCR = importlib.util.find_spec("tesserocr") is not None
needs_tesserocr = pytest.mark.skipif(not HAS_TESSEROCR, reason="tesserocr is not installed (pip install tesserocr)")
ENGINES = [pytest.param("tesserocr", marks=needs_tesserocr), "pytesseract"]


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


def test_by_default_only_small_text_is_read_again_upscaled(tesseract, font_name):
    """Words 20-32 px high gained nothing from an upscaled pass (evaluate_ocr: CER 0.0426 -> 0.0402 with the
    threshold at 20 px, and 19% less time); 10-px words still need it."""
    small = read_text(_draw(SENTENCE, 13)[0])
    assert small.scale > 1.5 and small.passes == 2
    assert cer(small.text, SENTENCE) < 0.15, small.text
    medium = read_text(_draw(SENTENCE, 32)[0])
    assert medium.scale == 1.0 and medium.passes == 1


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


def test_skew_is_estimated_by_projecting_ink_points_not_rotating_images(font_name, monkeypatch):
    """Rotating the ink mask 50 times per pass was a tenth of the OCR time; projecting the ink points finds
    the same angles (within 0.1 degree of the rotating search on the 300 evaluation images)."""
    text = "Nạp 50k nhận 100k tài xỉu uy tín, ib mình ngay\nhôm nay cả nhà đi công viên chơi vui lắm\nmai nghỉ học"
    page = render_text(text, RenderCondition(font=font_name, size=22, width=520)).image.convert("L")
    tilted = {
        a: page.rotate(a, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255) for a in (-8, -5, -2, 0, 3, 6)
    }
    rng = np.random.default_rng(2)
    noise = Image.fromarray(rng.integers(0, 256, size=(200, 300), dtype=np.uint8), "L")

    def no_rotation(*a, **k):
        raise AssertionError("estimate_skew rotated an image")

    monkeypatch.setattr(Image.Image, "rotate", no_rotation)
    for angle, img in tilted.items():
        assert abs(ocr.estimate_skew(img) + angle) <= 0.3, angle
    assert ocr.estimate_skew(page) == 0.0
    assert ocr.estimate_skew(noise) == 0.0


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
    assert not ocr_available(engine="pytesseract")
    with pytest.raises(OcrUnavailable, match=r"apt-get install tesseract-ocr tesseract-ocr-vie"):
        read_text(Image.new("RGB", (50, 50), (255, 255, 255)), OcrConfig(engine="pytesseract"))


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_language_data_names_the_package(tesseract, engine):
    with pytest.raises(OcrUnavailable, match=r"apt-get install tesseract-ocr-klingon"):
        read_text(Image.new("RGB", (50, 50)), OcrConfig(languages="vie+klingon", engine=engine))


@pytest.mark.parametrize("engine", ENGINES)
def test_timeout_is_an_ocr_error(tesseract, font_name, engine):
    r = render_text(SENTENCE * 20, RenderCondition(font=font_name, size=24, width=900))
    with pytest.raises(OcrError, match="timed out"):
        read_text(r.image, OcrConfig(timeout_s=0.01, engine=engine))
    # the engine still reads afterwards (a tesserocr instance cut short goes back into the pool usable)
    img, _, _ = _draw(SENTENCE, 32)
    assert cer(read_text(img, OcrConfig(engine=engine)).text, SENTENCE) < 0.1


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
    monkeypatch.setattr(ocr, "check_ocr", lambda *a, **k: None)
    monkeypatch.setattr(pytesseract, "image_to_data", lambda *a, **k: fake)
    cfg = OcrConfig(deskew=False, min_text_height_px=0, engine="pytesseract")
    res = read_text(Image.new("RGB", (200, 40), (255, 255, 255)), cfg)
    assert res.text == "nhận tiền" == unicodedata.normalize("NFC", res.text)
    assert [(w.start, w.end) for w in res.words] == [(0, 4), (5, 9)]


def _tsv_dict(words: list[str], conf: float) -> dict[str, list]:
    n = len(words)
    return {
        "text": words,
        "conf": [conf] * n,
        "block_num": [1] * n,
        "par_num": [1] * n,
        "line_num": [1] * n,
        "left": [60 * i for i in range(n)],
        "top": [0] * n,
        "width": [50] * n,
        "height": [20] * n,
    }


@pytest.mark.parametrize(("stop", "languages_read"), [(True, [None, None]), (False, [None, None, "vie+eng"])])
def test_retries_stop_once_one_reads_surely(monkeypatch, stop, languages_read):
    """A meme caption read unsurely, then surely from its near-white lettering: the vie+eng retry is
    skipped (it never beat the lettering pass there and cost a third of a meme's time)."""
    replies = iter([_tsv_dict(["n?p", "5Ok"], 55.0), _tsv_dict(["nạp", "50k"], 92.0), _tsv_dict(["nap"], 70.0)])
    calls: list[str | None] = []

    def fake(image, config, deadline, languages=None):
        calls.append(languages)
        return next(replies)

    monkeypatch.setattr(ocr, "check_ocr", lambda *a, **k: None)
    monkeypatch.setattr(ocr, "_fallback_usable", lambda cfg: True)
    monkeypatch.setattr(ocr, "_run_tesseract", fake)
    meme = Image.new("RGB", (300, 100), (90, 120, 60))
    ImageDraw.Draw(meme).rectangle((40, 40, 200, 60), fill=(255, 255, 255))  # near-white lettering
    cfg = OcrConfig(deskew=False, min_text_height_px=0, stop_retries_when_sure=stop)
    res = read_text(meme, cfg)
    assert calls == languages_read
    assert res.text == "nạp 50k" and res.inverted and res.passes == len(languages_read)


def test_large_images_are_read_scaled_down_with_boxes_in_original_pixels(tesseract, font_name, monkeypatch):
    img, font, origin = _draw(SENTENCE, 60, canvas=(2600, 900))
    real, sizes = ocr._run_tesseract, []

    def spy(image, *a, **k):
        sizes.append(image.size)
        return real(image, *a, **k)

    monkeypatch.setattr(ocr, "_run_tesseract", spy)
    res = read_text(img, OcrConfig(max_read_pixels=600_000))
    assert sizes[0][0] * sizes[0][1] <= 610_000 and res.scale < 1
    assert cer(res.text, SENTENCE) < 0.1, res.text
    drawn, got = _word_box(SENTENCE, "nhận", font, origin), _word(res, "nhận").box
    assert _covers(got, drawn, slack=6), (got, drawn)
    sizes.clear()
    read_text(img, OcrConfig())  # by default: the full size
    assert sizes[0] == img.size


def test_small_text_read_scaled_down_is_read_again_larger(tesseract, font_name, monkeypatch):
    img, _, _ = _draw(SENTENCE, 22, canvas=(2400, 1200))
    real, sizes = ocr._run_tesseract, []

    def spy(image, *a, **k):
        sizes.append(image.size)
        return real(image, *a, **k)

    monkeypatch.setattr(ocr, "_run_tesseract", spy)
    res = read_text(img, OcrConfig(max_read_pixels=700_000, min_text_height_px=24))
    assert len(sizes) == 2 and sizes[1][0] > 1.3 * sizes[0][0]  # the text height, not the first read, sets it
    assert cer(res.text, SENTENCE) < 0.15, res.text


def test_config_is_validated():
    with pytest.raises(ValueError, match="psm"):
        OcrConfig(psm=0)
    with pytest.raises(ValueError):
        OcrConfig(languages="vie; rm -rf /")
    with pytest.raises(ValueError):
        OcrConfig(min_confidence=150)


# ---------------------------------------------------------------------------------------------- engines


@pytest.fixture
def fresh_engines():
    """Engines are built once per process; tests that change what is installed need new ones."""
    ocr._engine_named.cache_clear()
    yield
    ocr._engine_named.cache_clear()


def test_tsv_is_parsed_as_pytesseract_does():
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "1\t1\t0\t0\t0\t0\t0\t0\t503\t88\t-1\t",
        "5\t1\t1\t1\t1\t1\t18\t20\t37\t19\t96.632561\tNạp",
        "5\t1\t1\t1\t2\t1\t18\t47\t41\t16\t9.5\tngay",
    ]
    for tsv in ("\n".join(rows) + "\n", "\n".join([header, *rows])):  # tesserocr's has no header row
        d = ocr.parse_tsv(tsv)
        assert d["text"] == ["", "Nạp", "ngay"]
        assert d["conf"] == [-1, 96, 9]  # truncated to integers, as pytesseract's Output.DICT
        assert d["left"] == [0, 18, 18] and d["line_num"] == [0, 1, 2] and d["height"] == [88, 19, 16]


def test_engine_is_chosen_by_config_then_environment_then_what_is_installed(monkeypatch):
    monkeypatch.delenv("VICAS_OCR_ENGINE", raising=False)
    monkeypatch.setattr(ocr, "_tesserocr", lambda: None)
    assert ocr.engine_name() == "pytesseract"  # tesserocr not installed: the fallback
    monkeypatch.setattr(ocr, "_tesserocr", lambda: object())
    monkeypatch.setattr(ocr, "tessdata_dir", lambda: "/usr/share/tesseract-ocr/5/tessdata/")
    assert ocr.engine_name() == "tesserocr"
    monkeypatch.setenv("VICAS_OCR_ENGINE", "pytesseract")
    assert ocr.engine_name() == ocr.engine_name("auto") == "pytesseract"
    assert ocr.engine_name("tesserocr") == "tesserocr"  # an explicit setting wins over the environment
    monkeypatch.setenv("VICAS_OCR_ENGINE", "easyocr")
    with pytest.raises(ValueError, match="VICAS_OCR_ENGINE"):
        ocr.engine_name()
    with pytest.raises(ValueError):
        OcrConfig(engine="easyocr")


def test_tesserocr_requested_but_not_installed_says_what_to_install(monkeypatch, fresh_engines):
    monkeypatch.setattr(ocr, "_tesserocr", lambda: None)
    assert not ocr_available(engine="tesserocr")
    with pytest.raises(OcrUnavailable, match=r"pip install tesserocr"):
        read_text(Image.new("RGB", (50, 50)), OcrConfig(engine="tesserocr"))


def test_tessdata_dir_honours_tessdata_prefix(monkeypatch, tmp_path):
    (tmp_path / "vie.traineddata").write_bytes(b"")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert ocr.tessdata_dir() == f"{tmp_path}/"
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path / "empty"))
    assert ocr.tessdata_dir() != f"{tmp_path / 'empty'}/"  # a folder without traineddata is passed over


@needs_tesserocr
def test_engines_read_the_same_words_boxes_and_confidences(tesseract, font_name):
    """tesserocr must be a drop-in: same text, boxes and integer confidences as the `tesseract` program
    (up to the version difference between the wheel's Tesseract and the system's)."""
    img, _, _ = _draw(SENTENCE, 24)
    a = read_text(img, OcrConfig(engine="tesserocr"))
    b = read_text(img, OcrConfig(engine="pytesseract"))
    assert a.text == b.text, (a.text, b.text)
    assert [(w.start, w.end) for w in a.words] == [(w.start, w.end) for w in b.words]
    for wa, wb in zip(a.words, b.words, strict=True):
        assert all(abs(x - y) <= 2 for x, y in zip(wa.box, wb.box, strict=True)), (wa, wb)
        assert abs(wa.confidence - wb.confidence) <= 5 and wa.confidence == int(wa.confidence)
    assert (a.scale, a.skew_deg, a.passes) == (b.scale, b.skew_deg, b.passes)


@needs_tesserocr
def test_tesserocr_serves_threads_from_a_pool_of_loaded_instances(tesseract, font_name, fresh_engines):
    texts = ["Nạp 50k nhận 100k", "hôm nay cả nhà đi chơi", "mai được nghỉ học rồi", "tài xỉu uy tín"]
    images = [_draw(t, 28)[0] for t in texts]
    cfg = OcrConfig(engine="tesserocr", fallback_languages=None)
    alone = [read_text(im, cfg).text for im in images]
    got: dict[int, str] = {}

    def work(i: int) -> None:
        for _ in range(3):
            got[i] = read_text(images[i], cfg).text

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(images))] == alone  # no instance was shared between two threads
    engine = ocr.get_engine("tesserocr")
    assert 1 <= len(engine._idle["vie"]) <= len(images)  # loaded once per concurrent reader, then reused
    read_text(images[0], cfg)
    assert len(engine._idle["vie"]) <= len(images)
