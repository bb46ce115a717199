"""Hash matching of known material (issue #16 item 3) through the CLI, the database and the API.

Only benign stand-ins: made-up pictures (tests/benign_images.py) and lists of their hashes. The image
readers are stand-ins that fail the test if they are handed a listed picture: a matched image must never
be read, stored, shown or logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from serving.api import create_app
from serving.config import Settings
from serving.db import flagged_items, hash_matches, make_engine, migrate
from serving.hashes import HashLists, MatchLog, MatchRecord, import_list, match_counts
from serving.keys import create_key
from tests.benign_images import crop_border, encode, photo_like
from vicas import cli
from vicas.hashes import HashMatch, ImageHashes, parse_hash_list, pdq_distance, pdq_hash
from vicas.image_reader import ImageReader
from vicas.ocr import OcrConfig, OcrResult

pytest.importorskip("pdqhash")

LIST_NAME, LIST_VERSION = "benign-stand-in-list", "2026-12-09"
READ_TEXT = "CHỮ ĐỌC TRONG ẢNH"  # what the stand-in OCR "reads" in every image it is given


# ------------------------------------------------------------------------------------------------- CLI and DB


def _csv(tmp_path, body: str, name: str = "list.csv"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return str(path)


def test_hashes_import_list_replace_remove_on_both_databases(database_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("VICAS_DATABASE_URL", database_url)
    pdq = pdq_hash(photo_like(1))[0]
    md5, sha = hashlib.md5(b"one").hexdigest(), hashlib.sha256(b"two").hexdigest()
    good = _csv(tmp_path, f"hash,type,quality\n{pdq},pdq,100\n{md5},md5,\n{sha},sha256,\n")
    args = ["hashes", "import", "--file", good, "--name", "iwf-test", "--version", "1", "--source", "IWF (test)"]
    assert cli.main(args) == 0
    assert "imported 3 hashes as iwf-test version 1" in capsys.readouterr().out
    db = make_engine(database_url)
    lists = HashLists(db)
    assert lists.refresh() and len(lists.index) == 3 and lists.loaded
    assert not lists.refresh(), "unchanged lists are not reloaded"

    assert cli.main(["hashes", "list"]) == 0
    out = capsys.readouterr().out
    row = json.loads(out.strip())
    assert (row["name"], row["version"], row["source"], row["count"]) == ("iwf-test", "1", "IWF (test)", 3)
    assert row["types"] == {"pdq": 1, "md5": 1, "sha256": 1}
    assert pdq not in out and md5 not in out and sha not in out, "a listing never shows a hash"

    bad = _csv(tmp_path, f"hash,type\n{md5},md5\n{md5[:-2]},md5\n", "bad.csv")
    assert cli.main(["hashes", "import", "--file", bad, "--name", "iwf-test", "--version", "2", "--source", "x"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "nothing imported" in err
    assert not lists.refresh(), "a malformed file changes nothing"

    plain = _csv(tmp_path, f"{md5}\n{hashlib.md5(b'three').hexdigest()}\n", "plain.txt")
    args = ["hashes", "import", "--file", plain, "--name", "iwf-test", "--version", "2", "--source", "IWF", "--type"]
    assert cli.main([*args, "md5"]) == 0
    assert "replacing version 1" in capsys.readouterr().out
    assert lists.refresh() and len(lists.index) == 2 and not lists.index.has_pdq
    assert lists.index.lists[next(iter(lists.index.lists))].version == "2"

    assert cli.main(["hashes", "remove", "--name", "iwf-test"]) == 0
    assert cli.main(["hashes", "remove", "--name", "iwf-test"]) == 1
    capsys.readouterr()
    assert cli.main(["hashes", "list"]) == 0 and capsys.readouterr().out == ""
    assert lists.refresh() and len(lists.index) == 0
    db.dispose()


def test_match_records_survive_a_database_outage(database_url, tmp_path):
    migrate(database_url)
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    hashes = ImageHashes("1" * 32, "2" * 64, "3" * 64, 100)
    record = MatchRecord.of("req:0", HashMatch(0, "l", "v1", "pdq", 7), hashes, "telco-a")
    assert MatchLog(down, tmp_path / "spool").save([record]) == "spooled"
    log = MatchLog(make_engine(database_url), tmp_path / "spool")
    assert log.spooled_count() == 1
    assert log.flush_spool() == 1 and log.spooled_count() == 0
    assert log.save([record]) == "stored", "a record already there is not stored twice"
    with log.engine.connect() as conn:
        rows = conn.execute(select(hash_matches)).mappings().all()
    assert len(rows) == 1 and rows[0]["distance"] == 7 and rows[0]["partner"] == "telco-a"
    counts = match_counts(log.engine)
    assert [(c["partner"], c["list"], c["version"], c["matches"]) for c in counts] == [("telco-a", "l", "v1", 1)]
    log.engine.dispose()


# ------------------------------------------------------------------------------------------------------ API


def _is_listed_file(img: Image.Image) -> bool:
    """The flat grey picture whose file is in the list (decoded: every pixel (90, 90, 90))."""
    return img.convert("RGB").getextrema() == ((90, 90), (90, 90), (90, 90))


class _Readers:
    """Stand-in OCR and visual model that refuse any listed picture (and record what they were given)."""

    def __init__(self, listed_pdq: str) -> None:
        self.listed_pdq = listed_pdq
        self.read: list[tuple[int, int]] = []

    def check(self, image: Image.Image) -> None:
        h = pdq_hash(image)[0]
        if _is_listed_file(image) or (h is not None and pdq_distance(h, self.listed_pdq) <= 80):
            raise AssertionError("an image reader was handed a listed picture")
        self.read.append(image.size)

    def ocr(self, image: Image.Image, config: object = None) -> OcrResult:
        self.check(image)
        return OcrResult(text=READ_TEXT, words=[], mean_confidence=90.0, seconds=0.0)

    # the visual model's interface (vicas.visual.VisualEngine)
    version = "stand-in-visual"
    head_categories = ("sexual",)

    def classify(self, images: list[Image.Image]) -> list[SimpleNamespace]:
        for img in images:
            self.check(img)
        return [SimpleNamespace(severities={"sexual": 0}, scores={"sexual": 0.01}) for _ in images]


@pytest.fixture
def listed(tiny_pipeline, database_url, tmp_path, monkeypatch):
    """An API with a list holding the PDQ of one made-up picture and the MD5 of a flat grey file."""
    known = photo_like(101, (640, 480))
    flat_png = encode(Image.new("RGB", (200, 150), (90, 90, 90)))
    pdq = pdq_hash(known)[0]
    assert pdq is not None
    migrate(database_url)
    db = make_engine(database_url)
    entries = parse_hash_list(f"hash,type\n{pdq},pdq\n{hashlib.md5(flat_png).hexdigest()},md5\n")
    import_list(db, entries, LIST_NAME, LIST_VERSION, "tests")
    key = create_key(db, "telco-h", {"classify"}, rate_limit_per_minute=1000)
    readers = _Readers(pdq)
    monkeypatch.setattr("vicas.image_reader.read_text", readers.ocr)
    reader = ImageReader(visual=readers, ocr=OcrConfig())  # type: ignore[arg-type]
    settings = Settings(
        model_dir=tiny_pipeline["model"], database_url=database_url, spool_dir=tmp_path / "spool", flag_band="P"
    )
    with TestClient(create_app(settings, image_reader=reader)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield SimpleNamespace(client=client, db=db, known=known, flat_png=flat_png, pdq=pdq, readers=readers)
    db.dispose()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _assert_matched(body: dict, image: int = 0) -> None:
    assert body["band"] == "C" and {"block", "report"} <= set(body["actions"]), body
    assert body["categories"]["child_sexual"]["severity"] == 3
    match = [m for m in body["hash_matches"] if m["image"] == image]
    assert len(match) == 1 and match[0]["list_name"] == LIST_NAME and match[0]["list_version"] == LIST_VERSION
    ev = [e for e in body["evidence"] if e["source"] == f"image:{image}:hash"]
    assert len(ev) == 1 and LIST_NAME in ev[0]["text"] and ev[0]["category"] == "child_sexual"
    part = body["images"][image]
    assert part["ocr_text"] == "" and part["name"] == f"image {image + 1}"
    assert part["sources"] == {"child_sexual": ["hash"]}


def test_a_listed_picture_and_its_copies_are_blocked_and_reported_without_being_read(listed, caplog):
    caplog.set_level(logging.DEBUG)
    client, known = listed.client, listed.known
    jpeg = encode(known, "JPEG", quality=50)
    r = client.post("/v1/classify", json={"text": "ảnh đây", "images": [{"name": "x.jpg", "data": _b64(jpeg)}]})
    assert r.status_code == 200, r.text
    body = r.json()
    _assert_matched(body)
    assert body["hash_matches"][0]["hash_type"] == "pdq" and body["hash_matches"][0]["distance"] <= 31
    assert listed.pdq not in r.text, "the list's hash is not given back"
    assert listed.readers.read == [], "no image reader saw the listed picture"

    half = encode(known.resize((320, 240)), "PNG")  # a resized copy, uploaded as a file
    r = client.post("/v1/classify", files={"file": ("half.png", half, "image/png")}, data={"url": "https://a.vn/p"})
    assert r.status_code == 200, r.text
    _assert_matched(r.json())

    # exact copy of a flat file: PDQ cannot rate it (quality below the floor), its MD5 is in the list
    r = client.post("/v1/classify", json={"images": [{"data": _b64(listed.flat_png)}]})
    assert r.status_code == 200, r.text
    _assert_matched(r.json())
    assert r.json()["hash_matches"][0] == {
        "image": 0,
        "list_name": LIST_NAME,
        "list_version": LIST_VERSION,
        "hash_type": "md5",
        "distance": 0,
    }
    assert listed.readers.read == []

    # nothing of the pictures reached the logs
    for data in (jpeg, half, listed.flat_png):
        encoded = _b64(data)
        for start in range(0, len(encoded) - 64, max(1, len(encoded) // 8)):
            assert encoded[start : start + 64] not in caplog.text
        assert data[40:80].decode("latin-1") not in caplog.text
    assert LIST_NAME in caplog.text  # a match is logged: which list, never the image

    with listed.db.connect() as conn:
        stored = conn.execute(select(flagged_items)).mappings().all()
        matches = conn.execute(select(hash_matches).order_by(hash_matches.c.id)).mappings().all()
    assert len(stored) == 3 and all(s["band"] == "C" for s in stored)
    for row in stored:
        whole = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
        assert READ_TEXT not in whole and "x.jpg" not in whole and "half.png" not in whole
        assert _b64(jpeg)[:64] not in whole and _b64(half)[:64] not in whole
        evidence = json.loads(row["evidence"])
        assert any(e["source"] == "image:0:hash" and LIST_NAME in e["text"] for e in evidence)
    assert [m["partner"] for m in matches] == ["telco-h"] * 3
    assert [m["hash_type"] for m in matches] == ["pdq", "pdq", "md5"]
    assert (
        matches[0]["md5"] == hashlib.md5(jpeg).hexdigest() and matches[0]["sha256"] == hashlib.sha256(jpeg).hexdigest()
    )
    assert matches[1]["md5"] == hashlib.md5(half).hexdigest() and matches[1]["pdq"] is not None
    assert {m["item_key"] for m in matches} == {s["item_key"] for s in stored}
    assert set(matches[0]) == {
        "id", "item_key", "image", "list_name", "list_version", "hash_type", "distance", "md5", "sha256", "pdq",
        "pdq_quality", "partner", "created_at",
    }  # fmt: skip


def test_a_page_with_a_listed_picture_and_a_benign_one_reads_only_the_benign_one(listed):
    client, known = listed.client, listed.known
    cropped = encode(crop_border(known, 0.02), "JPEG", quality=85)
    other = encode(photo_like(202, (300, 200)), "PNG")
    html = (
        "<html><body><p>Trang ảnh</p>"
        f'<img alt="ALT-OF-LISTED" src="data:image/jpeg;base64,{_b64(cropped)}">'
        f'<img alt="second" src="data:image/png;base64,{_b64(other)}"></body></html>'
    )
    r = client.post("/v1/classify", json={"html": html})
    assert r.status_code == 200, r.text
    body = r.json()
    _assert_matched(body, image=0)
    assert [m["image"] for m in body["hash_matches"]] == [0]
    assert body["images"][1]["ocr_text"] == READ_TEXT, "the benign picture is read as usual"
    assert listed.readers.read == [(300, 200), (300, 200)], "OCR and the visual model saw the benign picture only"
    assert "ALT-OF-LISTED" not in r.text
    with listed.db.connect() as conn:
        row = conn.execute(select(flagged_items)).mappings().one()
    assert "ALT-OF-LISTED" not in row["text"] and row["text"].count(READ_TEXT) == 1


def test_an_unrelated_picture_is_not_matched(listed):
    client = listed.client
    r = client.post("/v1/classify/batch", json={"items": [
        {"images": [{"data": _b64(encode(photo_like(303), "JPEG", quality=70))}]},
        {"images": [{"data": _b64(encode(Image.new("RGB", (200, 150), (91, 90, 90))))}]},  # flat, not the file
        {"images": [{"data": _b64(encode(listed.known, "JPEG", quality=30))}]},
    ]})  # fmt: skip
    assert r.status_code == 200, r.text
    first, flat, third = r.json()["results"]
    assert first["hash_matches"] == [] and first["images"][0]["ocr_text"] == READ_TEXT
    assert not any(e["source"].endswith(":hash") for e in first["evidence"])
    assert flat["hash_matches"] == [], "a flat picture is not matched by PDQ (its quality is below the floor)"
    assert third["hash_matches"][0]["hash_type"] == "pdq"
