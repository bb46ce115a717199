"""The API with images: JSON base64 and multipart uploads, pages with embedded images, limits, bad input.

Real Tesseract reads the images (skipped without it unless VICAS_REQUIRE_TESSERACT=1), the tiny text
model reads the OCR text, and the tiny image model (EfficientNet-Lite0, one epoch) looks at the picture.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from serving.api import create_app
from serving.config import Settings
from serving.db import flagged_items, make_engine, migrate

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tesseract")]


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MEME = "Nạp 50k nhận 100k tài xỉu uy tín"


def text_image(text: str, fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", (760, 90), "white")
    ImageDraw.Draw(img).text((15, 22), text, fill="black", font=ImageFont.truetype(FONT, 36))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 80_000, 80_000, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 200)) + chunk(b"IEND", b"")
    )


@pytest.fixture
def client(tiny_pipeline, tiny_image_pipeline, tmp_path):
    """The tiny text model's personal-data flags are noise: a policy without redaction keeps OCR text readable."""
    import yaml

    from vicas.policy import DEFAULT_POLICY_PATH

    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    policy["redact"] = {}
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    db_url = f"sqlite:///{tmp_path / 'img.db'}"
    settings = Settings(
        policy_path=policy_path,
        model_dir=tiny_pipeline["model"],
        image_model_dir=tiny_image_pipeline["model"],
        database_url=db_url,
        spool_dir=tmp_path / "spool",
        require_api_key=False,
        flag_band="P",
        max_image_pixels=2_000_000,
        max_images_per_item=3,
        max_request_pixels=5_000_000,
    )
    migrate(db_url)
    with TestClient(create_app(settings)) as c:
        yield c, make_engine(db_url)


def test_an_image_in_base64_is_read_and_classified(client):
    c, db = client
    r = c.post("/v1/classify", json={"images": [{"name": "meme.png", "data": b64(text_image(MEME))}]})
    assert r.status_code == 200, r.text
    body = r.json()
    (img,) = body["images"]
    assert img["name"] == "meme.png" and (img["width"], img["height"]) == (760, 90)
    assert "tài xỉu" in img["ocr_text"].lower() and img["ocr_confidence"] > 50
    assert "+vicas-image@" in body["model_version"] and "tesseract" in body["model_version"]
    for e in body["evidence"]:
        assert e["source"] in ("image:0:ocr", "image:0:visual")
        assert e["boxes"] and all(x >= 0 and y >= 0 and x + w <= 760 and y + h <= 90 for x, y, w, h in e["boxes"])
        if e["source"] == "image:0:ocr":
            assert img["ocr_text"][e["start"] : e["end"]] == e["text"]
    # the item's band is the highest band of its parts
    order = ["P", "K", "T13", "T16", "T18", "C"]
    assert order.index(body["band"]) >= order.index(img["band"])
    with db.connect() as conn:
        stored = conn.execute(select(flagged_items)).mappings().all()
    # the review store keeps the OCR text under a header naming the image and what was found in it
    assert len(stored) == 1 and stored[0]["text"].startswith("[ảnh 1: meme.png") and "xỉu" in stored[0]["text"]
    # the console highlights OCR evidence on that text and skips evidence without offsets (visual, nudity)
    from serving.review.web import highlight

    evidence = json.loads(stored[0]["evidence"])
    page = highlight(stored[0]["text"], evidence)
    assert "meme.png" in page
    for e in evidence:
        if e["source"] == "image:0:ocr":
            assert stored[0]["text"][e["start"] : e["end"]] == e["text"] and "<mark" in page


def test_multipart_upload_with_a_caption(client):
    c, _ = client
    files = {"image": ("meme.jpg", text_image(MEME, "JPEG"), "image/jpeg")}
    r = c.post("/v1/classify", data={"text": "xem cái này nè", "audience_age": "12"}, files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["audience"]["age"] == 12 and len(body["images"]) == 1
    assert "tài xỉu" in body["images"][0]["ocr_text"].lower()


def test_a_page_with_an_embedded_image_is_one_verdict(client):
    c, _ = client
    page = (
        "<html><body><p>Trang tin giải trí</p>"
        f'<img alt="banner" src="data:image/png;base64,{b64(text_image(MEME))}">'
        '<img src="https://cdn.example.org/not-fetched.png"></body></html>'
    )
    r = c.post("/v1/classify", json={"html": page})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == 1 and body["images"][0]["name"] == "embedded image 0 (banner)"
    assert "tài xỉu" in body["images"][0]["ocr_text"].lower()


def test_the_batch_endpoint_takes_images(client):
    c, _ = client
    items = [{"text": "hôm nay trời đẹp"}, {"images": [{"data": b64(text_image("chúc mừng sinh nhật"))}]}]
    r = c.post("/v1/classify/batch", json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["images"] == [] and len(results[1]["images"]) == 1
    bad = [{"text": "ok"}, {"images": [{"data": b64(b"not an image")}]}, {"text": "chào"}]
    r = c.post("/v1/classify/batch", json={"items": bad})
    assert r.status_code == 200, r.text  # one bad item gets its own error; the others are classified
    first, broken, last = r.json()["results"]
    assert "band" in first and "band" in last
    assert broken["index"] == 1 and broken["error"]["status"] == 422
    assert broken["error"]["code"] == "invalid_input" and "not an image" in broken["error"]["detail"]


def test_bad_images_get_clear_4xx_answers(client):
    c, _ = client
    r = c.post("/v1/classify", json={"images": [{"data": b64(b"%PDF-1.7 this is a pdf")}]})
    assert r.status_code == 422 and "not an image" in r.json()["detail"]
    r = c.post("/v1/classify", json={"images": [{"data": "@@not base64@@"}]})
    assert r.status_code == 422 and "base64" in r.json()["detail"]
    r = c.post("/v1/classify", json={"images": [{"data": b64(png_bomb())}]})
    assert r.status_code == 413, r.text
    big = Image.new("RGB", (2000, 1500), "white")  # 3 megapixels, limit 2
    buf = io.BytesIO()
    big.save(buf, "PNG")
    r = c.post("/v1/classify", files={"f": ("big.png", buf.getvalue(), "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    r = c.post("/v1/classify", files={"f": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 422 and "not an image" in r.json()["detail"]
    four = [{"data": b64(text_image("a"))}] * 4
    r = c.post("/v1/classify", json={"images": four})
    assert r.status_code == 413, r.text
    assert c.post("/v1/classify", json={}).status_code == 422
    r = c.post("/v1/classify", data={"colour": "red"})
    assert r.status_code == 422


def test_without_an_image_reader_images_are_refused(tiny_pipeline, tmp_path):
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        image_model_dir=None,
        ocr=False,
        open_nsfw=False,  # every reader off: the default open_nsfw would read photos
        database_url=f"sqlite:///{tmp_path / 'n.db'}",
        spool_dir=tmp_path / "spool",
        require_api_key=False,
    )
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/classify", json={"images": [{"data": b64(text_image("xin chào"))}]})
        assert r.status_code == 422 and "no image reader" in r.json()["detail"]
        assert c.post("/v1/classify", json={"text": "xin chào"}).status_code == 200


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, "PNG", optimize=True)  # a few KB that decode to megabytes
    return buf.getvalue()


def test_images_are_counted_and_budgeted_before_any_is_decoded(client, monkeypatch):
    """Issue: a partner API that stays up, item 6: six 4 KB PNGs that decode to 100 MB each were decoded
    before the 422. Now the count and the request's pixel budget are checked from the headers first."""
    import serving.classification as classification_module
    from vicas import images as images_module

    c, _ = client
    decoded: list[str] = []
    real_open = images_module.open_image

    def counting_open(data, limits=None, name="image"):
        decoded.append(name)
        return real_open(data, limits, name)

    monkeypatch.setattr(classification_module, "open_image", counting_open)
    page = "<p>x</p>" + "".join(f'<img src="data:image/png;base64,{b64(_png(64, 64))}">' for _ in range(4))
    r = c.post("/v1/classify", json={"html": page})
    assert r.status_code == 413 and "4 images" in r.json()["detail"] and decoded == []
    big = b64(_png(1400, 1400))  # 1.96 Mpx each: under the 2 Mpx per-image limit
    r = c.post("/v1/classify", json={"images": [{"data": big}] * 3})  # 5.9 Mpx in all
    assert r.status_code == 413 and "at most 5,000,000" in r.json()["detail"]
    assert decoded == []  # refused from the headers: nothing was decoded
    items = [{"images": [{"data": big}]}, {"images": [{"data": big}]}, {"images": [{"data": big}]}]
    r = c.post("/v1/classify/batch", json={"items": items})  # the budget spans the whole batch
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert "band" in results[0] and "band" in results[1]
    assert results[2]["error"]["status"] == 413 and "at most 5,000,000" in results[2]["error"]["detail"]
    assert len(decoded) == 2  # the third was refused from its header, not decoded
