"""Normalisation on real comment shapes from the public datasets (ViHSD, ViHOS, ViCTSD, smishing)."""

import unicodedata

import pytest

from vicas.normalize import fold_diacritics, normalize, teencode_table


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # tone placement, old and new style unified
        ("Hòa bình", "hoà bình"),
        ("hoà bình", "hoà bình"),
        ("chị Thúy", "chị thuý"),
        ("sức khỏe", "sức khoẻ"),
        ("quý khách", "quý khách"),  # qu + y: the u belongs to the consonant
        ("mùa thu", "mùa thu"),  # ua is not oa
        ("hoàng thuyết", "hoàng thuyết"),
        # teencode and abbreviations (real ViHSD shapes)
        ("Giờ này ngta ngủ hết r thầy ơi", "giờ này người ta ngủ hết rồi thầy ơi"),
        ("kiếm chuyện vs Cô", "kiếm chuyện với cô"),
        ("ko bít j cả", "không biết gì cả"),
        # obfuscation
        ("đ.m thằng kia", "đm thằng kia"),
        ("thằng n g u", "thằng ngu"),
        ("l0z", "lồn"),
        ("c4sino uy tín", "casino uy tín"),
        ("t.à.i x.ỉ.u nạp 50k", "tài xỉu nạp 50k"),
        ("Ｆｒｅｅ 𝐬𝐞𝐱", "free sex"),
        ("tоp", "top"),  # Cyrillic о
        # repeats and whitespace
        ("đẹp quáaaaa !!!!!!", "đẹp quá !!!"),
        ("  nhiều    khoảng\ttrắng \n", "nhiều khoảng trắng"),
        ("xoong nồi", "xoong nồi"),
        # numbers, amounts and profanity abbreviations keep their form
        ("nạp 50k nhận 100k, 1.000 người", "nạp 50k nhận 100k, 1.000 người"),
        ("hay vl", "hay vl"),
        ("vcl luôn", "vcl luôn"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw).text == expected


def test_nfc_input_and_decomposed_input_agree():
    composed = "Trời ơi dễ hiểu ghê"
    decomposed = unicodedata.normalize("NFD", composed)
    assert normalize(decomposed).text == normalize(composed).text


def test_zero_width_characters_are_dropped():
    assert normalize("đ\u200bm\u200c").text == "đm"


def test_offsets_map_back_to_the_original():
    raw = "Mày là đồ n g u vs l0z"
    n = normalize(raw)
    start = n.text.index("ngu")
    s, e = n.to_original(start, start + 3)
    assert raw[s:e] == "n g u"
    start = n.text.index("với")
    s, e = n.to_original(start, start + 3)
    assert raw[s:e] == "vs"
    start = n.text.index("lồn")
    s, e = n.to_original(start, start + 3)
    assert raw[s:e] == "l0z"


def test_offsets_survive_decomposed_and_spaced_input():
    raw = "  Chị  " + unicodedata.normalize("NFD", "Thúy") + "  đẹp"
    n = normalize(raw)
    assert n.text == "chị thuý đẹp"
    i = n.text.index("thuý")
    s, e = n.to_original(i, i + 4)
    assert unicodedata.normalize("NFC", raw[s:e]) == "Thúy"
    assert len(n.spans) == len(n.text)


def test_to_original_refuses_bad_spans():
    n = normalize("abc")
    with pytest.raises(ValueError, match="outside"):
        n.to_original(2, 9)


def test_folded_view_has_no_diacritics_and_same_length():
    n = normalize("Đúng là bọn mắt híp, đéo hiểu")
    assert n.folded == "dung la bon mat hip, deo hieu"
    assert len(n.folded) == len(n.text)
    assert fold_diacritics("Nhin chi dep qua") == "Nhin chi dep qua"  # no-diacritics input is stable


def test_no_diacritics_input_is_left_readable():
    # a real no-diacritics ViHSD shape
    assert normalize("Chi ba vang ngoc dep va tre mai").text == "chi ba vang ngoc dep va tre mai"


def test_teencode_table_was_reviewed():
    table = teencode_table()
    assert table["ko"] == "không"
    # expansions that would change a profanity severity are not in the table
    for kept in ("vl", "vcl", "đm", "cc", "lol"):
        assert kept not in table
    # ambiguous single letters are not expanded
    for ambiguous in ("a", "e", "c"):
        assert ambiguous not in table


def test_empty_and_non_string_input():
    assert normalize("   ").text == ""
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]
