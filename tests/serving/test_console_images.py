"""What the reviewer sees is what was decided (issue #18 item 2) and what a reviewer can bear (item 4).

- Evidence highlights fall on whole words of the text shown, in the right place, also on a text typed
  without accents that the model read with its accents restored (the real tiny model's normalisation,
  restorer, tokenizer and windows; only its outputs are steered onto a chosen subword).
- An item's images are kept as sealed thumbnails with the OCR word boxes scaled to them, shown blurred,
  unblurred with one click that the audit log records; never for an image found in a hash list.
- The supervisor's report counts the severe items each reviewer opened per day.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import select, update

from serving.api import create_app
from serving.config import Settings
from serving.db import audit_log, flagged_items, item_images, make_engine, migrate
from serving.hashes import import_list
from serving.review.accounts import create_user
from serving.review.images import THUMBNAIL_SIDE, item_thumbnails, scaled_boxes
from serving.review.service import unseal_bytes
from serving.review.spans import whole_words
from serving.review.web import highlight
from serving.store import FlaggedItem, FlagStore
from tests.serving.helpers import PASSWORD, csrf_token, login
from vicas.combine import ImageReading
from vicas.engine import TextEngine
from vicas.hashes import parse_hash_list
from vicas.taxonomy import CATEGORIES

pytestmark = pytest.mark.slow
SECRET = "test-secret-key-0123456789"
TYPED = "may thang ngu nhu bo"  # typed without accents: the model reads "mấy thằng ngu nhu bo"
OCR_TEXT = "may thang ngu"
OCR_WORDS = [(0, 3, (20, 20, 120, 60)), (4, 9, (160, 20, 200, 60)), (10, 13, (380, 20, 110, 60))]
LISTED = "benign-stand-in-list"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _picture() -> Image.Image:
    img = Image.new("RGB", (640, 160), (240, 240, 240))
    draw = ImageDraw.Draw(img)
    for k, (_, _, (x, y, w, h)) in enumerate(OCR_WORDS):
        draw.rectangle((x, y, x + w, y + h), fill=(40 * k, 90, 160))
    return img


FLAT = _png(Image.new("RGB", (200, 150), (90, 90, 90)))  # its MD5 is in the hash list


class _Reader:
    """Stand-in image reader: every picture reads OCR_TEXT with OCR_WORDS' boxes (fails on a listed one)."""

    version = "stand-in-reader"

    def read(self, images):
        out = []
        for n in images:
            assert n.image.size != (200, 150), "the listed picture was handed to a reader"
            out.append(ImageReading(n.name, n.image.width, n.image.height, OCR_TEXT, list(OCR_WORDS), 90.0))
        return out


def _mid_word_restored_token(engine: TextEngine, text: str) -> tuple[int, tuple[int, int]]:
    """A subword token strictly inside a word whose accent the restorer put back: its id and its word's span
    in `text` (what a highlight of it must cover)."""
    norm = engine.normalize(text)
    assert norm.text != text and len(norm.text) == len(text), "the tiny model restores this text's accents"
    enc = engine.tokenizer.encode(norm.text, add_special_tokens=False)
    for tid, (s, t) in zip(enc.ids, enc.offsets, strict=True):
        word = [m.span() for m in re.finditer(r"\w+", text) if m.start() <= s and t <= m.end()]
        if word and (s, t) != word[0] and norm.text[s:t] != text[s:t]:
            return tid, word[0]
    raise AssertionError(f"no token inside a restored word of {norm.text!r}")


@pytest.fixture
def steered(monkeypatch):
    """The text model's outputs steered: `category` at severity 2, its evidence on the tokens `ids` (what a
    trained model does on a word it knows); everything else is the real tiny model's path."""
    state = SimpleNamespace(ids=set(), category="violence")
    real_run = TextEngine.run

    def run(self, batch_ids):
        sev, tok, nat = real_run(self, batch_ids)
        sev, tok = np.array(sev), np.array(tok)
        ci = CATEGORIES.index(state.category)
        for i, ids in enumerate(batch_ids):
            hits = [j for j, t in enumerate(ids) if t in state.ids]
            if hits:
                sev[i, ci] = [12.0, 12.0, -12.0]
                tok[i, :, ci] = -12.0
                tok[i, hits, ci] = 12.0
        return sev, tok, nat

    monkeypatch.setattr(TextEngine, "run", run)
    return state


@pytest.fixture
def api(tiny_pipeline, database_url, tmp_path, steered):
    migrate(database_url)
    db = make_engine(database_url)
    create_user(db, "rev1", PASSWORD, "reviewer")
    create_user(db, "sup", PASSWORD, "supervisor")
    create_user(db, "adm", PASSWORD, "admin")
    import_list(db, parse_hash_list(f"hash,type\n{hashlib.md5(FLAT).hexdigest()},md5\n"), LISTED, "v1", "tests")
    settings = Settings(
        model_dir=tiny_pipeline["model"],
        database_url=database_url,
        spool_dir=tmp_path / "spool",
        secret_key=SECRET,
        require_api_key=False,
        flag_band="P",
    )
    with TestClient(create_app(settings, image_reader=_Reader()), base_url="https://testserver") as client:  # type: ignore[arg-type]
        engine = client.app.state.batcher.engine  # type: ignore[attr-defined]
        tid, word = _mid_word_restored_token(engine, TYPED)
        steered.ids = {tid}
        yield SimpleNamespace(client=client, db=db, word=word, engine=engine, spool=tmp_path / "spool")
    db.dispose()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_highlights_fall_on_whole_words_of_a_text_typed_without_accents(api):
    r = api.client.post("/v1/classify", json={"text": TYPED})
    assert r.status_code == 200, r.text
    s, t = api.word
    with api.db.connect() as conn:
        row = conn.execute(select(flagged_items)).mappings().one()
    assert row["text"] == TYPED  # what was typed is what is stored and shown, not the restored copy
    evidence = [e for e in json.loads(row["evidence"]) if e["category"] == "violence"]
    assert [(e["start"], e["end"], e["text"]) for e in evidence] == [(s, t, TYPED[s:t])]  # the whole word
    login(api.client, "rev1")
    page = api.client.get(f"/console/items/{row['id']}").text
    marks = re.findall(r'<mark class="ev ev-violence"[^>]*>([^<]*)</mark>', page)
    assert marks == [TYPED[s:t]], marks  # on the shown text's word, not a letter of it, not the accented form


def test_highlight_widens_spans_stored_mid_word():
    text = "Bé Na lớp 3A nhà ở [ẩn], mày ngu quá"
    cut = [  # as a model token leaves them: a letter, a word with the space before it, half a mask
        {"category": "harassment", "start": 30, "end": 31, "score": 0.8},
        {"category": "profanity", "start": 24, "end": 28, "score": 0.7},
        {"category": "personal_data", "start": 20, "end": 22, "score": 0.9},
        {"category": "violence", "source": "image:0:visual", "score": 0.5},  # no characters: not marked
    ]
    page = highlight(text, cut)
    assert re.findall(r"<mark[^>]*>([^<]*)</mark>", page) == ["[ẩn]", "mày", "ngu"]
    assert whole_words("thằng, kia", 1, 6) == (0, 5)  # punctuation stays out
    assert whole_words("🔥🔥 lửa", 0, 1) == (0, 1)  # no word character: as given


def test_images_are_sealed_thumbnails_shown_blurred_and_unblurred_by_one_logged_click(api):
    picture = _picture()
    r = api.client.post(
        "/v1/classify",
        json={"text": "xem nè", "images": [{"name": "a.png", "data": _b64(_png(picture))}, {"data": _b64(FLAT)}]},
    )
    assert r.status_code == 200, r.text
    assert [m["image"] for m in r.json()["hash_matches"]] == [1]
    with api.db.connect() as conn:
        item = conn.execute(select(flagged_items)).mappings().one()
        thumbs = conn.execute(select(item_images)).mappings().all()
    # one thumbnail: the listed picture is never kept in any form
    assert [(t["item_key"], t["image"]) for t in thumbs] == [(item["item_key"], 0)]
    (thumb,) = thumbs
    assert not thumb["thumbnail"].startswith("/9j/") and b"JFIF" not in thumb["thumbnail"].encode()  # sealed
    jpeg = unseal_bytes(thumb["thumbnail"], SECRET)
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG" and img.size == (THUMBNAIL_SIDE, 80) == (thumb["width"], thumb["height"])
    boxes = json.loads(thumb["boxes"])
    # the OCR words the evidence fell on, on the thumbnail (half size): "may" at (20, 20, 120, 60)
    assert {"category": "violence", "source": "ocr", "box": [10, 10, 60, 30]} in boxes
    assert thumb["sensitive"] is True  # violence: blurred harder and labelled

    login(api.client, "rev1")
    page = api.client.get(f"/console/items/{item['id']}").text
    assert 'id="image-0"' in page and 'id="image-1"' not in page and 'data-sensitive="true"' in page
    assert 'class="box ev-violence" style="left:10px;top:10px;width:60px;height:30px"' in page
    assert LISTED in page  # a listed image shows the list's name only
    blurred = api.client.get(f"/console/items/{item['id']}/images/0.jpg")
    assert blurred.status_code == 200 and blurred.headers["content-type"] == "image/jpeg"
    assert blurred.headers["cache-control"] == "no-store" and blurred.content != jpeg
    with Image.open(io.BytesIO(blurred.content)) as soft, Image.open(io.BytesIO(jpeg)) as clear:
        assert np.asarray(soft).std(axis=(0, 1)).mean() < np.asarray(clear).std(axis=(0, 1)).mean()  # smoothed
    assert api.client.get(f"/console/items/{item['id']}/images/1.jpg").status_code == 404

    token = csrf_token(api.client, f"/console/items/{item['id']}")
    forged = api.client.post(f"/console/items/{item['id']}/images/0/unblur", data={"csrf": "forged"})
    assert forged.status_code == 403
    clear = api.client.post(f"/console/items/{item['id']}/images/0/unblur", data={"csrf": token})
    assert clear.status_code == 200 and clear.content == jpeg and clear.headers["cache-control"] == "no-store"
    with api.db.connect() as conn:
        logged = conn.execute(select(audit_log).where(audit_log.c.action == "image:unblur")).mappings().all()
    assert [(e["actor"], e["target"], json.loads(e["after"])) for e in logged] == [
        ("rev1", f"item:{item['id']}", {"image": 1})
    ]
    login(api.client, "adm")
    assert "Xem ảnh không làm mờ" in api.client.get("/console/audit").text

    # purge takes the thumbnails with their item
    old = datetime.now(UTC) - timedelta(days=400)
    with api.db.begin() as conn:
        conn.execute(update(flagged_items).values(created_at=old))
        conn.execute(update(item_images).values(created_at=old))
    counts = FlagStore(api.db, api.spool).purge(180)
    assert counts["flagged items"] == 1 and counts["image thumbnails"] == 1
    with api.db.connect() as conn:
        assert conn.execute(select(item_images)).first() is None


def test_no_thumbnail_without_a_secret_and_boxes_scale_with_the_picture():
    picture = _picture()
    ev = [SimpleNamespace(category="sexual", source="image:0:ocr", boxes=[(20, 20, 120, 60)])]
    assert item_thumbnails([picture], [picture.size], ev, [], [{}], {}, None) == []
    (made,) = item_thumbnails([picture], [(1280, 320)], ev, [], [{}], {"sexual": 2}, SECRET)
    assert made["sensitive"] and made["boxes"] == [{"category": "sexual", "source": "ocr", "box": [5, 5, 30, 15]}]
    small = Image.new("RGB", (100, 40))
    (kept,) = item_thumbnails([small], [small.size], [], [], [{}], {"gambling": 2}, SECRET)
    assert (kept["width"], kept["height"]) == (100, 40) and not kept["sensitive"]  # never enlarged
    assert item_thumbnails([picture, small], [picture.size, small.size], [], [0], [{}, {}], {}, SECRET)[0]["image"] == 1
    assert scaled_boxes(ev, 1, (640, 160), (320, 80)) == []  # another image's boxes


def test_thumbnails_are_made_off_the_event_loop_and_survive_a_database_outage(database_url, tmp_path):
    """`_flagged_item` hands the store a maker, not thumbnails (tens of milliseconds an image, which the event
    loop must not wait for); FlagStore.save makes them in its worker thread, and a spooled item keeps them."""
    migrate(database_url)
    db = make_engine(database_url)
    picture = _picture()
    made: list[int] = []

    def make() -> list[dict]:
        made.append(1)
        return item_thumbnails([picture], [picture.size], [], [], [{}], {}, SECRET)

    item = FlaggedItem(
        "spooled:0", "0" * 64, "telco-a", None, None, "T16", {"violence": {"score": 0.8, "severity": 2}}, [],
        "ảnh", "v", "p", datetime.now(UTC).isoformat(), make_images=make,
    )  # fmt: skip
    assert item.images == [] and made == []  # nothing made yet
    down = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    assert FlagStore(down, tmp_path / "spool").save([item]) == "spooled" and made == [1]
    assert FlagStore(db, tmp_path / "spool").flush_spool() == 1
    with db.connect() as conn:
        (row,) = conn.execute(select(item_images)).mappings().all()
    assert row["item_key"] == "spooled:0" and unseal_bytes(row["thumbnail"], SECRET).startswith(b"\xff\xd8")
    assert made == [1]  # made once
    db.dispose()
