"""Real-text labels: joined to the source rows by id and text hash, held-out test rows, agreement, assembly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from training.data.adapters import Record, SourceError
from training.data.real_labels import (
    agreement,
    apply_real_labels,
    assemble,
    in_test,
    load_real_labels,
    qc,
    text_hash,
)
from vicas.policy import load_policy
from vicas.taxonomy import CATEGORIES


def _record(i: int, text: str, split: str = "train") -> Record:
    return Record(
        id=f"vihsd-{split}-{i:05d}",
        source="vihsd",
        split=split,
        text=text,
        labels={"profanity": (1, 3)},
        native={"vihsd": 1},
    )


def _write_labels(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _label_row(rec: Record, labels: dict[str, int], stratum: str = "random:vihsd") -> dict[str, object]:
    row = int(rec.id.rsplit("-", 1)[1])
    return {
        "id": rec.id,
        "source": rec.source,
        "split": rec.split,
        "row": row,
        "sha": text_hash(rec.text),
        "stratum": stratum,
        "labels": labels,
    }


def test_labelled_rows_get_every_category_and_the_held_out_ones_move_to_test(tmp_path: Path) -> None:
    kept, held, dev, other = (
        _record(1, "đm cái game lag vl"),
        _record(2, "thằng kia ngu như bò"),
        _record(0, "con này xấu vãi", "dev"),
        _record(4, "không ai gán nhãn dòng này"),
    )
    assert not in_test(kept.id) and in_test(held.id)
    path = _write_labels(
        tmp_path / "labels.jsonl",
        [
            _label_row(kept, {"profanity": 2}),
            _label_row(held, {"harassment": 2}),
            _label_row(dev, {"harassment": 2}),
        ],
    )
    stats: Counter[str] = Counter()
    out = {r.id: r for r in apply_real_labels([kept, held, dev, other], load_real_labels(path), stats)}
    assert out[kept.id].labels == {c: ((2, 2) if c == "profanity" else (0, 0)) for c in CATEGORIES}
    assert out[kept.id].split == "train" and out[kept.id].meta["real_labels"] == "random:vihsd"
    assert out[kept.id].native == {"vihsd": 1}  # native labels stay for the benchmark heads
    assert out[held.id].split == "test"
    assert out[dev.id].split == "dev"  # dev rows tune; they are never moved
    assert out[other.id].labels == {"profanity": (1, 3)} and "real_labels" not in out[other.id].meta
    assert stats == Counter({"vihsd:train": 1, "vihsd:test": 1, "vihsd:dev": 1})


def test_a_changed_source_text_is_refused(tmp_path: Path) -> None:
    rec = _record(1, "đm cái game lag vl")
    path = _write_labels(tmp_path / "labels.jsonl", [_label_row(rec, {"profanity": 2})])
    changed = _record(1, "một câu khác hẳn")
    with pytest.raises(SourceError, match="no longer matches"):
        list(apply_real_labels([changed], load_real_labels(path), Counter()))


@pytest.mark.parametrize(
    ("labels", "message"),
    [({"nudity": 2}, "unknown categories"), ({"scam": 1}, "scam"), ({"child_sexual": 2}, "child_sexual")],
)
def test_bad_label_lines_name_the_line(tmp_path: Path, labels: dict[str, int], message: str) -> None:
    rec = _record(1, "đm cái game lag vl")
    path = _write_labels(tmp_path / "labels.jsonl", [_label_row(rec, labels)])
    with pytest.raises(SourceError, match=message):
        load_real_labels(path)


def test_agreement_reports_kappa_per_category_and_on_the_band() -> None:
    first = {"a": {"profanity": 2}, "b": {}, "c": {"harassment": 2}, "d": {}}
    second = {"a": {"profanity": 2}, "b": {}, "c": {}, "d": {}}
    a = agreement(first, second, load_policy())
    assert a["items"] == 4 and a["items_with_any_disagreement"] == 1
    assert a["categories"]["profanity"]["presence_kappa"] == 1.0
    assert a["categories"]["harassment"]["presence_kappa"] == 0.0
    assert a["categories"]["sexual"]["presence_kappa"] is None  # no positives at all: undefined
    assert a["band"]["exact_agreement"] == 0.75


def test_assemble_writes_labels_without_texts_and_qc_reads_them(tmp_path: Path) -> None:
    labelling = tmp_path / "labelling"
    texts = {"vihsd-train-00001": "đm cái game lag vl", "vihsd-train-00004": "bài hát hay quá"}
    (labelling / "first").mkdir(parents=True)
    (labelling / "second").mkdir()
    sample = [
        {
            "id": i,
            "source": "vihsd",
            "split": "train",
            "row": int(i[-5:]),
            "sha": text_hash(t),
            "stratum": "random:vihsd",
        }
        for i, t in texts.items()
    ]
    _write_labels(labelling / "sample.jsonl", sample)  # type: ignore[arg-type]
    _write_labels(
        labelling / "first" / "batch_000.jsonl",
        [{"id": "vihsd-train-00001", "labels": {"profanity": 1}}, {"id": "vihsd-train-00004", "labels": {}}],
    )
    _write_labels(
        labelling / "second" / "batch_000.jsonl",
        [{"id": "vihsd-train-00001", "labels": {"profanity": 2}}, {"id": "vihsd-train-00004", "labels": {}}],
    )
    _write_labels(labelling / "adjudicated.jsonl", [{"id": "vihsd-train-00001", "labels": {"profanity": 2}}])
    out = tmp_path / "real_labels"
    counts = assemble(labelling, out)
    assert counts == {"labelled": 2, "second": 2, "adjudicated": 1}
    written = (out / "labels.jsonl").read_text(encoding="utf-8")
    assert "đm" not in written and "bài hát" not in written  # keys and hashes only
    labels = load_real_labels(out / "labels.jsonl")
    assert labels["vihsd-train-00001"].labels == {"profanity": 2}  # the adjudicated label wins
    summary = qc(out, tmp_path / "m.json", tmp_path / "r.md", load_policy())
    assert summary["agreement"]["categories"]["profanity"]["exact_agreement"] == 0.5
    assert summary["statistics"]["prevalence_random_slice"]["vihsd"]["rows"] == 2
    assert "Agreement of two independent labellings (2 items)" in (tmp_path / "r.md").read_text(encoding="utf-8")
