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


def test_listed_pictures_are_blocked_in_classify_and_bulk(fp32_model, tmp_path, local_ray, tesseract, capsys):
    """Issue 16 item 3: `vicas classify` and bulk scoring match images against the imported hash lists
    (a re-encoded copy by PDQ, an exact copy by MD5, a page's data URI), like the API: child_sexual 3, band C,
    the list named, and nothing read from the matched image; an unrelated picture is not matched."""
    import base64
    import hashlib
    import io

    from serving.db import make_engine, migrate
    from serving.hashes import import_list
    from tests.benign_images import photo_like
    from vicas.hashes import parse_hash_list, pdq_hash

    url = f"sqlite:///{tmp_path / 'lists.db'}"
    migrate(url)
    listed, other = photo_like(1), photo_like(2)
    exact = tmp_path / "exact.png"
    listed.save(exact)
    copy = tmp_path / "copy.jpg"
    listed.save(copy, quality=60)  # another file: only PDQ can match it
    other.save(tmp_path / "other.png")
    csv = f"hash,type\n{pdq_hash(listed)[0]},pdq\n{hashlib.md5(exact.read_bytes()).hexdigest()},md5\n"
    import_list(make_engine(url), parse_hash_list(csv), "stand-in-list", "7", "test")
    buf = io.BytesIO()
    listed.save(buf, format="PNG")
    page = f'<p>xem ảnh</p><img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    rows = [
        {"id": "exact", "image": str(exact)},
        {"id": "copy", "image": str(copy)},
        {"id": "page", "html": page},
        {"id": "other", "image": str(tmp_path / "other.png")},
    ]
    inp = tmp_path / "items.jsonl"
    inp.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")

    def check(results: dict[str, dict]) -> None:
        for key, how in (("exact", "md5"), ("copy", "pdq"), ("page", None)):
            r = results[key]
            assert r["band"] == "C" and r["categories"]["child_sexual"]["severity"] == 3, key
            (m,) = r["hash_matches"]
            assert (m["list_name"], m["list_version"]) == ("stand-in-list", "7")
            assert how is None or m["hash_type"] == how
            image = r["images"][0]
            assert not image.get("ocr_text") and str(tmp_path) not in json.dumps(image), "a matched image is not read"
        other = results["other"]  # (the tiny model's own reading of it is arbitrary: not checked)
        assert other["hash_matches"] == [] and not any(e["source"].endswith(":hash") for e in other["evidence"])

    out = tmp_path / "classified.jsonl"
    argv = ["classify", "--input", str(inp), "--output", str(out), "--model", str(fp32_model), "--hash-db", url]
    assert cli.main(argv) == 0
    assert "hash lists: 1 lists, 2 hashes" in capsys.readouterr().err
    check({r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())})

    scored = tmp_path / "scored"
    run(BulkJob(inp, scored, fp32_model, block_size=2, workers=1, hash_db=url))
    check({r["id"]: r for r in merged_rows(scored)})

    assert cli.main([*argv[:-2], "--no-hash-lists"]) == 0  # switched off: the copies are read like any image
    assert all(not r["hash_matches"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines()))
