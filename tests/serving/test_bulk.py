"""`vicas bulk` on a local Ray: same results as `vicas classify`, and an interrupted run resumes."""

from __future__ import annotations

import json

import pytest

from serving.bulk import PART, BulkJob, merged_rows, run
from vicas import cli

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

TEXTS = [
    "nạp 50k nhận 100k tài xỉu",
    "hôm nay đi học vui",
    "đm thằng kia ngu",
    "chị gái xinh ship tận nơi",
    "tặng kim cương free fire nhập mật khẩu",
    "bài hát hay quá",
    "mình không muốn sống nữa",
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture
def fp32_model(tiny_pipeline, tmp_path):
    """The tiny model served in fp32: dynamic int8 scores depend slightly on a text's batch-mates."""
    import shutil

    folder = tmp_path / "model_fp32"
    shutil.copytree(tiny_pipeline["model"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["default_onnx"] = "model.onnx"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_bulk_matches_classify_and_resumes(fp32_model, tmp_path, local_ray):
    inp = tmp_path / "crawl.jsonl"
    lines = [json.dumps({"id": f"u{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(TEXTS * 3)]
    lines.insert(5, "{broken")
    lines.append(json.dumps({"id": "page", "html": "<p>tài xỉu uy tín</p><script>x</script>"}, ensure_ascii=False))
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "scored"
    out.mkdir()
    # an earlier, interrupted run finished block 1 only
    marker = {"id": "already-done", "band": "P"}
    (out / PART.format(1)).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    job = BulkJob(inp, out, fp32_model, block_size=5, workers=2)
    stats = run(job)
    assert stats == {"items": 23, "blocks": 5, "scored_now": 4, "skipped": 1}
    assert json.loads((out / PART.format(1)).read_text()) == marker  # not rescored
    (out / PART.format(1)).unlink()
    assert run(job)["scored_now"] == 1 and run(job)["scored_now"] == 0
    rows = merged_rows(out)
    assert len(rows) == 23
    errors = [r for r in rows if "error" in r]
    assert len(errors) == 1 and "not valid JSON" in errors[0]["error"]
    # identical to `vicas classify` on the same texts
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        "\n".join(json.dumps({"id": f"u{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(TEXTS * 3)) + "\n",
        encoding="utf-8",
    )
    classified = tmp_path / "classified.jsonl"
    assert cli.main(["classify", "--input", str(plain), "--output", str(classified), "--model", str(fp32_model)]) == 0
    expected = {r["id"]: r for r in map(json.loads, classified.read_text(encoding="utf-8").splitlines())}
    bulk = {r["id"]: r for r in rows if "error" not in r and r["id"] != "page"}
    assert bulk.keys() == expected.keys()
    for key, row in bulk.items():
        assert row["band"] == expected[key]["band"]
        for cat, v in row["categories"].items():
            assert v["severity"] == expected[key]["categories"][cat]["severity"]
            assert v["score"] == pytest.approx(expected[key]["categories"][cat]["score"], abs=1e-3)
        assert [(e["category"], e["start"], e["end"]) for e in row["evidence"]] == [
            (e["category"], e["start"], e["end"]) for e in expected[key]["evidence"]
        ]
    page = next(r for r in rows if r["id"] == "page")
    assert page["band"] in ("P", "K", "T13", "T16", "T18", "C")


def test_bulk_reads_image_rows(fp32_model, tiny_image_pipeline, tmp_path, local_ray, tesseract):
    """Image rows (a path) are read by OCR and the image model, like `vicas classify`; a bad path is an error row."""
    from PIL import Image, ImageDraw, ImageFont

    meme = tmp_path / "meme.png"
    img = Image.new("RGB", (640, 80), "white")
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 32)
    ImageDraw.Draw(img).text((10, 20), "tài xỉu uy tín nạp 50k", fill="black", font=font)
    img.save(meme)
    inp = tmp_path / "crawl.jsonl"
    rows = [{"id": "img", "image": str(meme)}, {"id": "gone", "image": str(tmp_path / "gone.png")}]
    inp.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "scored"
    job = BulkJob(inp, out, fp32_model, block_size=10, workers=1, image_model=tiny_image_pipeline["model"])
    assert run(job)["scored_now"] == 1
    scored = {r["id"]: r for r in merged_rows(out)}
    assert "xỉu" in scored["img"]["images"][0]["ocr_text"] and "+vicas-image@" in scored["img"]["model_version"]
    assert "cannot read image file" in scored["gone"]["error"]


def test_conversations_in_bulk_and_classify_agree(fp32_model, tiny_conversations, tmp_path, local_ray, monkeypatch):
    """Issue: conversations, item 1: the conversation input in `vicas classify` and bulk scoring."""
    from tests.tiny_model import CLASSROOM_SCRIPT, GROOMING_SCRIPT

    def conv(script):
        return [{"sender": s, "text": t} for s, t, _ in script]

    people = {"a": {"age": 12}, "b": {}, "t": {"role": "teacher"}}
    rows = [
        {"id": "groom", "conversation": conv(GROOMING_SCRIPT), "participants": people},
        {"id": "class", "conversation": conv(CLASSROOM_SCRIPT), "participants": people},
        {"id": "bad", "conversation": [{"sender": "zz", "text": "hi"}], "participants": people},
        {"id": "text", "text": "hôm nay đi học vui"},
    ]
    inp = tmp_path / "convs.jsonl"
    inp.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "scored"
    run(BulkJob(inp, out, fp32_model, block_size=2, workers=1, conversation_model=tiny_conversations["model"]))
    bulk = {r["id"]: r for r in merged_rows(out)}
    assert bulk["groom"]["conversation"]["flagged"] and bulk["groom"]["band"] == "C"
    assert not bulk["class"]["conversation"]["flagged"]
    assert "participants" in bulk["bad"]["error"] and bulk["text"]["conversation"] is None
    classified = tmp_path / "classified.jsonl"
    argv = ["classify", "--input", str(inp), "--output", str(classified), "--model", str(fp32_model)]
    assert cli.main([*argv, "--conversation-model", str(tiny_conversations["model"])]) == 1  # the bad line
    lines = {r["id"]: r for r in map(json.loads, classified.read_text(encoding="utf-8").splitlines())}
    for key in ("groom", "class"):
        assert lines[key]["conversation"] == bulk[key]["conversation"]
        assert lines[key]["band"] == bulk[key]["band"]
    without = tmp_path / "without.jsonl"
    monkeypatch.setenv("VICAS_CONVERSATION_MODEL_DIR", str(tmp_path / "no-model"))
    argv = ["classify", "--input", str(inp), "--output", str(without), "--model", str(fp32_model)]
    assert cli.main(argv) == 1
    lines = {r["id"]: r for r in map(json.loads, without.read_text(encoding="utf-8").splitlines())}
    assert "train_conversations" in lines["groom"]["error"] and "band" in lines["text"]
