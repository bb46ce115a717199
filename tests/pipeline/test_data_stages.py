"""ingest -> prepare end to end on the tiny invented sources."""

import json

import pytest

from training.config import PrepareConfig, SplitFractions
from training.data import ingest, prepare
from training.data.adapters import Record
from training.data.prepare import DataValidationError, LeakageError, check_leakage, deduplicate


def _run(params_file, tmp_path):
    interim, out, stats, metrics = (tmp_path / n for n in ("interim", "prepared", "stats", "metrics.json"))
    ingest.main(["--params", str(params_file), "--out", str(interim)])
    prepare.main(
        [
            "--params",
            str(params_file),
            "--interim",
            str(interim),
            "--out",
            str(out),
            "--stats",
            str(stats),
            "--metrics",
            str(metrics),
        ]
    )
    return interim, out, stats, metrics


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_data_stages_end_to_end(params_file, tmp_path):
    interim, out, stats, metrics = _run(params_file, tmp_path)
    assert {p.stem for p in interim.glob("*.jsonl")} == {
        "vihsd",
        "victsd",
        "vihos",
        "vithsd",
        "vispamreviews",
        "smishing",
        "own",
        "reviewed",
    }
    splits = {s: _rows(out / f"{s}.jsonl") for s in ("train", "dev", "test")}
    every = [r for rows in splits.values() for r in rows]
    # the own corpus is in the prepared splits, public dev splits are kept official
    assert sum(r["source"] == "own" for r in every) == 8
    assert {r["split"] for r in splits["dev"]} == {"dev"}
    assert all(r["source"] == "own" for r in splits["test"])
    # the ViHSD train copy of a dev text was removed, the exact train duplicate too
    vihsd_train = [r["text"] for r in splits["train"] if r["source"] == "vihsd"]
    assert "trùng với dev nè" not in vihsd_train
    assert vihsd_train.count("bài hát hay quá") == 1
    # normalised text is stored beside the original
    assert all(r["norm"] for r in every)
    summary = json.loads(metrics.read_text())
    assert summary["dropped_cross_split"]["vihsd"] == 1
    assert summary["dropped_exact"]["vihsd"] == 1
    assert (
        summary["counts"]["own"]["train"]["rows"]
        + summary["counts"]["own"]["dev"]["rows"]
        + summary["counts"]["own"]["test"]["rows"]
        == 8
    )
    table = (stats / "counts.md").read_text()
    assert "| vihsd | train |" in table
    assert (stats / "own.md").exists()


def test_prepare_is_deterministic(params_file, tmp_path):
    _, out1, _, _ = _run(params_file, tmp_path / "a")
    _, out2, _, _ = _run(params_file, tmp_path / "b")
    for split in ("train", "dev", "test"):
        assert (out1 / f"{split}.jsonl").read_text() == (out2 / f"{split}.jsonl").read_text()


def _rec(i, text, split, source="s", labels=None):
    return Record(id=str(i), source=source, split=split, text=text, labels=labels or {})


def test_near_duplicates_across_splits_leave_the_lower_priority_split():
    cfg = PrepareConfig(near_dup_threshold=0.7, own_split=SplitFractions(train=0.8, dev=0.1, test=0.1))
    base = "mày mà còn nói nữa là tao đánh cho không trượt phát nào đâu nhé con"
    recs = [_rec(1, base, "train"), _rec(2, base + " !", "dev", source="t"), _rec(3, "một câu khác hẳn", "train")]
    items, report = prepare.prepare(recs, cfg)
    assert sorted(it.record.id for it in items) == ["2", "3"]
    assert report.dropped_leak["s"] == 1


def test_same_text_in_two_sources_and_one_split_keeps_both_annotations():
    items = [
        prepare.PreparedRecord(_rec(1, "abc", "train", "a"), "abc"),
        prepare.PreparedRecord(_rec(2, "abc", "train", "b"), "abc"),
    ]
    kept = deduplicate(items, 0.9, prepare.PrepareReport())
    assert len(kept) == 2


def test_leakage_check_fails_loudly():
    items = [
        prepare.PreparedRecord(_rec(1, "abc", "train"), "abc"),
        prepare.PreparedRecord(_rec(2, "abc", "dev"), "abc"),
    ]
    with pytest.raises(LeakageError, match="two splits"):
        check_leakage(items)


def test_validation_stops_with_a_clear_message():
    bad = [
        _rec(1, "ok", "train", labels={"nudity": (1, 1)}),
        _rec(2, "ok", "holdout"),
        _rec(3, "ok", "train", labels={"scam": (3, 2)}),
    ]
    with pytest.raises(DataValidationError) as err:
        prepare.validate(bad)
    msg = str(err.value)
    assert "unknown category 'nudity'" in msg and "split 'holdout'" in msg and "[3, 2]" in msg


def test_text_empty_after_normalisation_is_refused():
    cfg = PrepareConfig(near_dup_threshold=0.9, own_split=SplitFractions(train=0.8, dev=0.1, test=0.1))
    with pytest.raises(DataValidationError, match="empty after normalisation"):
        prepare.prepare([_rec(1, "\u200b\u200b", "train")], cfg)


def test_bad_params_name_the_key(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("prepare:\n  near_dup_threshold: 2\n  own_split: {train: 0.5, dev: 0.1, test: 0.1}\n")
    with pytest.raises(SystemExit, match="near_dup_threshold") as err:
        prepare.main(["--params", str(p)])
    assert "own_split" in str(err.value)
