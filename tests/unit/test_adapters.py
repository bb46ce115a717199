"""Each adapter keeps its source's native labels and maps them onto the contract as documented."""

import json

import pytest

from tests.conftest import make_own_dir
from training.data.adapters import (
    Record,
    SourceError,
    index_list_to_spans,
    map_vithsd,
    read_own,
    read_smishing,
    read_victsd,
    read_vihos,
    read_vihsd,
    read_vispam,
    read_vithsd,
)


def test_vihsd_mapping_and_native_labels(source_dir):
    rows = list(read_vihsd(source_dir))
    assert len(rows) == 7  # the empty text is skipped
    by_text = {r.text: r for r in rows}
    clean = by_text["bài hát hay quá"]
    assert clean.labels == {"hate": (0, 1), "harassment": (0, 1), "profanity": (0, 1)}
    assert clean.native == {"vihsd": 0}
    assert by_text["đm cái game lag vl"].labels == {"profanity": (1, 3)}
    # HATE mixes individual and group targets: which category is unknown, the native label stays
    assert by_text["thằng kia ngu như bò"].labels == {}
    assert by_text["thằng kia ngu như bò"].native == {"vihsd": 2}
    assert {r.split for r in rows} == {"train", "dev"}


def test_victsd_toxic_is_unknown_for_the_contract(source_dir):
    rows = {r.text: r for r in read_victsd(source_dir)}
    assert rows["lũ ăn hại"].labels == {}
    assert rows["lũ ăn hại"].native["victsd_toxic"] == 1
    assert rows["bài viết rất hữu ích"].labels["harassment"] == (0, 1)


def test_vihos_spans_become_character_ranges(source_dir):
    rows = {r.text: r for r in read_vihos(source_dir)}
    r = rows["nói gì tào lao"]
    assert r.spans == [(7, 14)]
    assert r.text[7:14] == "tào lao"
    assert rows["dễ thương ghê"].spans == []
    assert rows["dễ thương ghê"].labels["profanity"] == (0, 1)
    assert index_list_to_spans([3, 1, 2, 9]) == [(1, 4), (9, 10)]


def test_vithsd_targets(source_dir):
    rows = {r.text: r for r in read_vithsd(source_dir)}
    # "groups" is any set of people, not a protected group: hate stays unknown
    assert "hate" not in rows["bọn miền đó toàn lừa đảo"].labels
    assert rows["bọn miền đó toàn lừa đảo"].labels["harassment"] == (0, 1)
    assert rows["con mụ đó mất dạy"].labels["harassment"] == (2, 2)
    levels = {"individual": 1, "groups": 0, "religion/creed": 0, "race/ethnicity": 2, "politics": 0}
    assert map_vithsd(levels) == {"harassment": (0, 1), "hate": (2, 2)}
    politics_only = {"individual": 0, "groups": 0, "religion/creed": 0, "race/ethnicity": 0, "politics": 3}
    assert map_vithsd(politics_only) == {}
    race_hate = {"individual": 3, "groups": 3, "religion/creed": 0, "race/ethnicity": 3, "politics": 0}
    assert map_vithsd(race_hate) == {"harassment": (2, 3), "hate": (2, 3)}


def test_vispam_and_smishing(source_dir):
    spam = {r.text: r for r in read_vispam(source_dir)}
    assert spam["hàng đẹp giao nhanh"].labels == {"scam": (0, 0)}
    assert spam["ib shop em giá rẻ"].labels == {}  # "irrelevant" spam can hide loan and job lures
    spam = list(spam.values())
    assert {r.native["vispam_type"] for r in spam} == {0, 3}
    sms = list(read_smishing(source_dir, dev_fraction=0.25, seed=13))
    assert sum(r.split == "dev" for r in sms) == 3  # 25% of 4 phishing + 25% of 8 legit
    assert {r.labels["scam"] for r in sms} == {(2, 3), (0, 0)}
    again = list(read_smishing(source_dir, dev_fraction=0.25, seed=13))
    assert [r.split for r in sms] == [r.split for r in again]


def test_own_corpus_annotates_every_category(own_dir):
    rows = list(read_own(own_dir))
    assert len(rows) == 8
    assert all(len(r.labels) == 12 for r in rows)
    gambling = rows[0]
    assert gambling.labels["gambling"] == (3, 3)
    assert gambling.labels["sexual"] == (0, 0)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"text": "x", "labels": {"nudity": 2}}, "unknown categor"),
        ({"text": "x", "labels": {"scam": 1}}, "not defined for 'scam'"),
        ({"text": "x", "labels": {"child_sexual": 2}}, "not defined for 'child_sexual'"),
        ({"text": "  ", "labels": {}}, "empty or missing text"),
        ({"text": "x", "labels": ["sexual"]}, "must be an object"),
    ],
)
def test_own_corpus_errors_name_the_line(tmp_path, item, message):
    folder = make_own_dir(tmp_path / "bad", [item])
    with pytest.raises(SourceError, match=message) as err:
        list(read_own(folder))
    assert "corpus.jsonl:1" in str(err.value)


def test_missing_source_file_says_what_to_do(tmp_path):
    with pytest.raises(SourceError, match="source_dir"):
        list(read_vihsd(tmp_path))


def test_missing_column_is_reported(tmp_path):
    (tmp_path / "vihsd").mkdir()
    (tmp_path / "vihsd" / "train.csv").write_text("text,label\nabc,0\n", encoding="utf-8")
    with pytest.raises(SourceError, match="lacks columns"):
        list(read_vihsd(tmp_path))


def test_record_json_round_trip():
    r = Record(id="a", source="s", split="train", text="t", labels={"scam": (2, 3)}, spans=[(0, 1)])
    back = Record.from_json(r.to_json())
    assert back == r
    assert json.loads(r.to_json())["labels"] == {"scam": [2, 3]}
