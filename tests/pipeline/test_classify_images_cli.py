"""`vicas classify` with images and pages: same output schema, per-image verdicts, errors per line."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageDraw, ImageFont

from vicas import cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tesseract")]


def write_text_image(path, text: str) -> None:
    img = Image.new("RGB", (700, 90), "white")
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 34)
    ImageDraw.Draw(img).text((15, 22), text, fill="black", font=font)
    img.save(path)


def test_classify_reads_images_and_pages(tiny_pipeline, tiny_image_pipeline, tmp_path):
    meme = tmp_path / "meme.png"
    write_text_image(meme, "Nạp 50k nhận 100k tài xỉu")
    buf = io.BytesIO()
    Image.open(meme).save(buf, "PNG")
    page = f'<p>Tin hay</p><img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    (tmp_path / "notes.txt").write_text("not an image", encoding="utf-8")
    lines = [
        {"id": "img", "image": str(meme)},
        {"id": "post", "text": "xem ảnh này", "images": [str(meme)]},
        {"id": "page", "html": page},
        {"id": "plain", "text": "hôm nay đi học"},
        {"id": "missing", "image": str(tmp_path / "nope.png")},
        {"id": "txt", "image": str(tmp_path / "notes.txt")},
        {"id": "both", "text": "a", "html": "<p>b</p>"},
    ]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    code = cli.main(
        [
            "classify", "--input", str(inp), "--output", str(out), "--model", str(tiny_pipeline["model"]),
            "--image-model", str(tiny_image_pipeline["model"]),
        ]
    )  # fmt: skip
    assert code == 1  # three bad lines
    rows = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert list(rows) == [x["id"] for x in lines]  # one output line per input line, in order
    for key in ("img", "post", "page"):
        row = rows[key]
        assert len(row["images"]) == 1 and "xỉu" in row["images"][0]["ocr_text"]
        assert "+vicas-image@" in row["model_version"]
        assert {"band", "categories", "evidence", "actions", "policy_version"} <= set(row)
    assert rows["img"]["images"][0]["name"] == str(meme)
    assert rows["plain"]["images"] == [] and rows["plain"]["model_version"].startswith("vicas-text@")
    assert "cannot read image file" in rows["missing"]["error"]
    assert "not an image" in rows["txt"]["error"]
    assert "not both" in rows["both"]["error"]
    # without the image model the OCR path alone reads the image
    out2 = tmp_path / "out2.jsonl"
    inp.write_text(json.dumps(lines[0]) + "\n", encoding="utf-8")
    no_model = tmp_path / "no-image-model"
    args = ["classify", "--input", str(inp), "--output", str(out2), "--model", str(tiny_pipeline["model"])]
    # an explicit folder that holds no model is an error, not a silent fallback
    assert cli.main([*args, "--image-model", str(no_model)]) == 2
