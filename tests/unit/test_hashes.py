"""Hash matching of known material (issue #16 item 3): hashes, list files, the in-memory index, the verdict.

Every picture here is a made-up benign stand-in (tests/benign_images.py); the "lists" hold their hashes.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.benign_images import crop_border, encode, photo_like
from vicas import hashes as hz
from vicas.combine import ImageReading, combine
from vicas.hashes import (
    HashIndex,
    HashListError,
    HashMatch,
    ImageHashes,
    ListInfo,
    apply_matches,
    file_digests,
    hash_image,
    parse_hash_list,
    pdq_distance,
    pdq_hash,
)
from vicas.policy import load_policy
from vicas.result import build_result

pytest.importorskip("pdqhash")


@pytest.fixture(scope="module")
def pictures() -> list[Image.Image]:
    return [photo_like(seed) for seed in range(8)]


def test_pdq_is_metas_hex_form_and_rates_photos_high(pictures):
    import pdqhash

    h, quality = pdq_hash(pictures[0])
    assert h is not None and len(h) == 64 and int(h, 16) >= 0 and quality >= hz.DEFAULT_PDQ_MIN_QUALITY
    # ThreatExchange's own formatting: the bit vector as a binary number, in hex, 64 digits
    bits, _ = pdqhash.compute(np.asarray(pictures[0]))
    assert h == f"{int(''.join(str(int(b)) for b in bits), 2):064x}"
    assert pdq_hash(Image.new("RGB", (4, 40))) == (None, 0)  # too small for PDQ
    flat = pdq_hash(Image.new("RGB", (300, 200), (120, 130, 140)))
    assert flat[1] < hz.DEFAULT_PDQ_MIN_QUALITY  # nothing to hash: not matched by PDQ


def test_copies_stay_close_and_different_pictures_far(pictures):
    base = pictures[0]
    h0 = pdq_hash(base)[0]
    assert h0 is not None
    copies = {
        "jpeg 30": Image.open(io.BytesIO(encode(base, "JPEG", quality=30))),
        "half size": base.resize((base.width // 2, base.height // 2)),
        "double size": base.resize((base.width * 2, base.height * 2)),
        "grey": base.convert("L"),
    }
    for what, img in copies.items():
        h = pdq_hash(img)[0]
        assert h is not None and pdq_distance(h0, h) <= 31, what
    others = [pdq_hash(p)[0] for p in pictures[1:]]
    assert min(pdq_distance(h0, h) for h in others if h) > 64


def test_large_images_are_reduced_before_hashing_and_stay_close_to_the_full_size_hash(pictures):
    import pdqhash

    big = pictures[1].resize((3200, 2400), Image.Resampling.BICUBIC)
    bits, _ = pdqhash.compute(np.asarray(big))
    full = np.packbits(bits.astype(np.uint8)).tobytes().hex()
    reduced = pdq_hash(big)[0]
    assert reduced is not None and pdq_distance(full, reduced) <= 8


def test_border_restored_hashes_catch_small_crops(pictures):
    base = pictures[2]
    index = HashIndex.build({1: ListInfo("benign", "1")}, [(1, "pdq", pdq_hash(base)[0] or "")])
    cropped = crop_border(base, 0.03)
    plain = hash_image(cropped, uncrop=())
    assert plain.pdq_uncropped == ()
    assert len(hash_image(cropped).pdq_uncropped) == len(hz.UNCROP_FRACTIONS)
    match = index.match(0, hash_image(cropped))
    assert match is not None and match.distance <= 31


def test_file_digests():
    assert file_digests(b"abc") == (
        "900150983cd24fb0d6963f7d28e17f72",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    )


PDQ_A = "f" * 64
MD5_A = "0" * 32
SHA_A = "a" * 64


def test_a_csv_list_with_a_header_other_columns_and_upper_case():
    text = "\ufeffHash,Type,quality,note\n" + f"{PDQ_A.upper()},PDQ,100,x\n{MD5_A},md5,,\n\n{SHA_A},SHA-256,,\n"
    got = parse_hash_list(text)
    assert [(e.hash_type, e.value) for e in got] == [("pdq", PDQ_A), ("md5", MD5_A), ("sha256", SHA_A)]


def test_a_plain_list_needs_a_type_and_skips_comments_and_duplicates():
    text = f"# from the hotline\n{MD5_A}\n\n0x{'1' * 32}\n{MD5_A}\n"
    with pytest.raises(HashListError, match="--type"):
        parse_hash_list(text)
    got = parse_hash_list(text, "md5")
    assert [e.value for e in got] == [MD5_A, "1" * 32]


def test_a_csv_without_a_type_column_takes_the_type_given():
    assert parse_hash_list(f"hash\n{PDQ_A}\n", "pdq")[0].hash_type == "pdq"
    with pytest.raises(HashListError, match="no `type` column"):
        parse_hash_list(f"hash\n{PDQ_A}\n")


def test_a_malformed_line_is_named_and_nothing_is_imported():
    text = f"hash,type\n{PDQ_A},pdq\n{PDQ_A[:-1]},pdq\n{MD5_A},crc32\n{MD5_A},pdq\n{SHA_A},md5\n"
    with pytest.raises(HashListError) as e:
        parse_hash_list(text)
    message = str(e.value)
    assert "4 malformed lines, nothing imported" in message
    for line in (3, 4, 5, 6):
        assert f"line {line}:" in message
    assert "line 2:" not in message
    with pytest.raises(HashListError, match=r"line 2: a md5 hash is 32 hex digits"):
        parse_hash_list(f"{MD5_A}\nnot-a-hash\n", "md5")
    with pytest.raises(HashListError, match="no `hash` column"):
        parse_hash_list(f"value,kind\n{MD5_A},md5\n")
    with pytest.raises(HashListError, match="no hashes"):
        parse_hash_list("hash,type\n")
    with pytest.raises(HashListError, match="unknown --type"):
        parse_hash_list(MD5_A, "sha1")


def _hashes(pdq: str | None = None, md5: str | None = None, sha: str | None = None, quality: int = 100):
    return ImageHashes(md5, sha, pdq, quality)


def _flip(h: str, bits: int) -> str:
    value = int(h, 16)
    for b in range(bits):
        value ^= 1 << (b * 7 % 256)
    return f"{value:064x}"


def test_the_index_matches_exact_hashes_and_pdq_within_the_distance():
    lists = {1: ListInfo("iwf", "2026-12"), 2: ListInfo("ncmec", "v7")}
    index = HashIndex.build(
        lists, [(2, "pdq", PDQ_A), (1, "pdq", PDQ_A), (2, "md5", MD5_A), (1, "sha256", SHA_A), (9, "md5", "1" * 32)]
    )
    assert len(index) == 4  # the entry of an unknown list is skipped
    assert index.match(0, _hashes(sha=SHA_A)) == HashMatch(0, "iwf", "2026-12", "sha256", 0)
    assert index.match(1, _hashes(md5=MD5_A)) == HashMatch(1, "ncmec", "v7", "md5", 0)
    assert index.match(0, _hashes(md5="1" * 32)) is None
    near = index.match(3, _hashes(pdq=_flip(PDQ_A, 31)))
    assert near == HashMatch(3, "iwf", "2026-12", "pdq", 31)  # the same hash in two lists: the first list
    assert index.match(0, _hashes(pdq=_flip(PDQ_A, 32))) is None
    assert index.match(0, _hashes(pdq=_flip(PDQ_A, 32)), max_distance=40) is not None
    # below the quality floor PDQ is not matched; the file's exact hash still is
    assert index.match(0, _hashes(pdq=PDQ_A, quality=49)) is None
    assert index.match(0, _hashes(pdq=PDQ_A, md5=MD5_A, quality=10)) == HashMatch(0, "ncmec", "v7", "md5", 0)
    assert "PDQ distance 31" in near.describe() and "iwf" in near.describe()
    assert HashIndex().match(0, _hashes(pdq=PDQ_A, md5=MD5_A)) is None


def test_popcount_without_numpy_2_gives_the_same_distances(monkeypatch):
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**63, 50, dtype=np.uint64)
    expect = hz._popcount(words)
    assert (expect == [bin(int(w)).count("1") for w in words]).all()
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert (hz._popcount(words) == expect).all()


def test_hundreds_of_thousands_of_pdq_hashes_are_searched_in_milliseconds():
    rng = np.random.default_rng(7)
    n = 300_000
    raw = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    target = raw[123_456].tobytes().hex()
    index = HashIndex.build({1: ListInfo("big", "1")}, ((1, "pdq", r.tobytes().hex()) for r in raw))
    assert index.pdq_count == n
    query = _hashes(pdq=_flip(target, 20))
    query = ImageHashes(None, None, query.pdq, 100, tuple(_flip(target, 40 + k) for k in range(5)))
    start = time.perf_counter()
    for _ in range(5):
        match = index.match(0, query)
    per_image = (time.perf_counter() - start) / 5
    assert match is not None and match.distance == 20
    assert per_image < 0.5, f"{per_image * 1000:.0f} ms per image (6 hashes) against {n} hashes"


def test_a_match_makes_the_item_child_sexual_3_band_c_blocked_and_reported():
    reading = [ImageReading("image 1", 640, 480), ImageReading("b.png", 10, 10, visual_severities={"violence": 1})]
    pred = combine(None, reading, [None, None])
    match = HashMatch(0, "iwf", "2026-12", "pdq", 12)
    out = apply_matches(pred, [match])
    assert out.severities["child_sexual"] == 3 and out.severities["violence"] == 1
    assert out.images[0].severities["child_sexual"] == 3 and out.images[0].sources == {"child_sexual": ["hash"]}
    assert out.images[1].severities["violence"] == 1
    ev = [e for e in out.evidence if e.source == "image:0:hash"]
    assert len(ev) == 1 and ev[0].text is not None and "iwf" in ev[0].text and "12" in ev[0].text
    res = build_result(out, load_policy(), "m")
    assert res.band.value == "C" and {"block", "report"} <= set(res.actions)
    assert apply_matches(pred, []) is pred
