"""train_text -> baseline -> export_text -> evaluate -> CLI, on a tiny encoder made on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from training.config import EvaluateConfig, ExportTextConfig
from training.text import evaluate
from training.text import export as export_text
from training.text.dataset import load_rows
from training.text.model import ModelOutput
from training.text.train import compute_loss
from vicas import cli
from vicas.diacritics import accented_share
from vicas.engine import TextEngine
from vicas.manifest import ManifestError, load_manifest
from vicas.normalize import fold_diacritics
from vicas.taxonomy import CATEGORIES

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline(tiny_pipeline):
    return tiny_pipeline


def test_training_writes_a_calibrated_model(pipeline):
    trained = pipeline["trained"]
    summary = json.loads((trained / "training.json").read_text())
    assert summary["steps"] == 8
    assert summary["vocab_size"] > 5
    cal = json.loads((trained / "calibration.json").read_text())
    assert set(cal["temperatures"]) == set(CATEGORIES)
    assert all(len(v) == 3 for v in cal["thresholds"].values())
    assert "F2 for child_sexual, self_harm" in cal["rule"]


def test_export_manifest_parity_and_checksums(pipeline, tmp_path):
    m = load_manifest(pipeline["model"])
    assert m.parity["max_prob_diff_fp32_vs_torch"] <= 1e-3
    assert set(m.files) == {
        "model.onnx",
        "model.int8.onnx",
        "tokenizer.json",
        "calibration.json",
        "calibration.int8.json",
        "ngram.npz",
        "diacritics.json.gz",
    }
    assert m.diacritics_file == "diacritics.json.gz"
    assert m.stacking is not None and m.stacking.ngram_weight == 0.5
    assert len(m.stacking.model_scale) == len(CATEGORIES) * 3 + sum(m.native_heads.values())
    # the tiny pipeline fits a share per output (too few labels in most: those keep 0.5)
    assert len(m.stacking.ngram_weights) == len(m.stacking.model_scale)
    assert all(0.0 <= w <= 1.0 for w in m.stacking.ngram_weights)
    assert m.calibrations["model.int8.onnx"] == "calibration.int8.json"
    assert m.default_onnx == "model.int8.onnx"
    assert m.categories == list(CATEGORIES)
    assert len(m.data_version) == 16 and m.policy_version
    # a tampered artefact is refused
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(pipeline["model"], copy)
    with (copy / "calibration.json").open("a") as f:
        f.write(" ")
    with pytest.raises(ManifestError, match=r"checksum mismatch for calibration\.json"):
        TextEngine(copy)


def test_stacked_engine_reads_the_baselines_ngram_scores(pipeline, tmp_path):
    """With the encoder's share set to 0, the served severity logits are the baseline's own, scaled."""
    import shutil

    import joblib

    copy = tmp_path / "ngram_only"
    shutil.copytree(pipeline["model"], copy)
    m = load_manifest(copy)
    assert m.stacking is not None
    n_sev = len(CATEGORIES) * 3
    m.stacking.model_scale = [0.0] * len(m.stacking.model_scale)
    m.stacking.ngram_scale = [1.0] * len(m.stacking.ngram_scale)
    m.write(copy)
    engine = TextEngine(copy)
    texts = ["Đồ ngu, cút đi!", "cảm ơn cả nhà nha", "nạp 50k nhận 100k tài xỉu"]
    sev, _ = engine.text_logits(engine.infer(texts))
    expected, _ = joblib.load(pipeline["baseline"]).logits(texts)
    np.testing.assert_allclose(sev.reshape(len(texts), n_sev), expected.reshape(len(texts), n_sev), atol=1e-3)


def test_export_without_baseline_refuses_stacking(pipeline, tmp_path):
    cfg = ExportTextConfig(max_length=64, parity_examples=8, f1_rows=20, ngram_weight=0.5)
    with pytest.raises(ValueError, match="needs the baseline model"):
        export_text.export(cfg, pipeline["trained"], pipeline["prepared"], tmp_path / "out", "tiny")


def test_export_gate_fails_loudly(pipeline, tmp_path, monkeypatch):
    monkeypatch.setattr(export_text, "parity_report", lambda *a, **k: 0.25)
    cfg = ExportTextConfig(max_length=64, parity_examples=8, f1_rows=20, int8_max_f1_drop=100.0)
    with pytest.raises(export_text.ExportParityError, match="ONNX fp32 differs from PyTorch"):
        export_text.export(cfg, pipeline["trained"], pipeline["prepared"], tmp_path / "out", "tiny")


def test_engine_windows_long_texts_and_maps_evidence_to_the_original(pipeline):
    engine = TextEngine(pipeline["model"])
    long_text = " ".join(["Hôm nay lớp mình đi tham quan bảo tàng."] * 40) + " ĐM thằng kia ngu vcl"
    pred = engine.classify([long_text, "Chị gái xinh ship tận nơi"])
    assert pred[0].windows > 1
    assert pred[1].windows == 1
    for p, text in zip(pred, [long_text, "Chị gái xinh ship tận nơi"], strict=True):
        assert set(p.severities) == set(CATEGORIES)
        for e in p.evidence:
            assert text[e.start : e.end] == e.text
            assert p.severities[e.category] > 0


def test_severity_loss_ignores_unknown_categories():
    out = ModelOutput(
        severity=torch.zeros(1, len(CATEGORIES), 3, requires_grad=True),
        tokens=torch.zeros(1, 4, len(CATEGORIES)),
        native=torch.zeros(1, 30),
    )
    batch = {
        "sev_target": torch.ones(1, len(CATEGORIES), 3),
        "sev_mask": torch.zeros(1, len(CATEGORIES), 3),
        "token_target": torch.zeros(1, 4),
        "token_mask": torch.zeros(1, 4),
    }
    from training.text.model import NATIVE_HEADS

    for name in NATIVE_HEADS:
        batch[f"native_{name}"] = torch.tensor([-1])
    weights = {"severity": 1.0, "mil": 0.5, "evidence": 0.5, "native": 0.5}
    _loss, parts = compute_loss(out, batch, torch.ones(len(CATEGORIES), 3), weights)
    assert parts["severity"] == 0.0 and parts["mil"] == 0.0  # all masked: targets do not matter
    batch["sev_mask"][0, 0, 0] = 1.0
    _, parts = compute_loss(out, batch, torch.ones(len(CATEGORIES), 3), weights)
    assert parts["severity"] == pytest.approx(float(np.log(2)), rel=1e-4)


def test_evaluate_writes_metrics_plots_and_card(pipeline):
    root = pipeline["root"]
    params = root / "eval_params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": EvaluateConfig(robustness_public_rows=10).model_dump()}))
    evaluate.main(
        [
            "--params",
            str(params),
            "--model",
            str(pipeline["model"]),
            "--baseline",
            str(pipeline["baseline"]),
            "--data",
            str(pipeline["prepared"]),
            "--metrics",
            str(root / "m.json"),
            "--details",
            str(root / "d.json"),
            "--plots",
            str(root / "plots"),
            "--card",
            str(root / "card.md"),
        ]
    )
    flat = json.loads((root / "m.json").read_text())
    for system in ("model", "baseline"):
        assert f"{system}/dev_macro_f1_calibrated" in flat
        assert f"{system}/vihsd_macro_f1" in flat
        assert f"{system}/robust_no_diacritics_macro_f1" in flat
    assert "model/vihos_span_f1" in flat
    assert (root / "plots" / "reliability.png").exists()
    card = (root / "card.md").read_text()
    assert "Model card" in card and "authored" in card
    # a Hugging Face card: front matter with the evaluation's figures as `model-index`
    from huggingface_hub import ModelCard

    front = ModelCard(card).data.to_dict()
    assert front["language"] == "vi" and front["base_model"] == "tiny-test-bert"
    measured = {m["value"] for r in front["model-index"][0]["results"] for m in r["metrics"]}
    assert flat["model/own_test_macro_f1"] in measured and flat["model/vihsd_macro_f1"] in measured
    assert "model/dev_macro_f1" not in flat  # named for what it is: all dev rows, thresholds fitted there
    # the ratings table: own test and the held-out real-text labels, the band as served, the review share
    details = json.loads((root / "d.json").read_text())
    assert details["real_test_rows"] == 2  # the two held-out labelled rows, never trained on
    for system in ("model", "baseline"):
        real = details["results"][system]["real_test"]
        assert set(real["band"]) >= {"exact", "under_rating_auto", "review_share", "over_rating"}
        assert real["risk_coverage"] and "band_severity_rule" in real
        assert f"{system}/real_test_band_review_share" in flat and f"{system}/own_test_band_exact" in flat
    assert "## Ratings (own test / real-text test; percentages)" in card
    assert (root / "plots" / "risk_coverage.png").exists()


def test_cli_classify_writes_one_line_per_input_and_reports_bad_lines(pipeline, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "text": "vào link này nhận kim cương miễn phí"}, ensure_ascii=False),
                "{not json",
                json.dumps({"id": "c", "text": "   "}),
                json.dumps({"id": "d", "text": "hôm nay đi học vui", "audience_age": 9}, ensure_ascii=False),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    rc = cli.main(["classify", "--input", str(inp), "--output", str(out), "--model", str(pipeline["model"])])
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert rc == 1  # some lines were bad
    assert [x.get("id") for x in lines] == [None, "c", "a", "d"] or {x.get("id") for x in lines} == {
        None,
        "c",
        "a",
        "d",
    }
    good = {x["id"]: x for x in lines if "error" not in x}
    assert set(good) == {"a", "d"}
    for x in good.values():
        assert x["band"] in ("P", "K", "T13", "T16", "T18", "C")
        assert set(x["categories"]) == set(CATEGORIES)
        assert {"score", "severity"} <= set(x["categories"]["scam"])
        assert x["model_version"].startswith("vicas-text@") and x["policy_version"]
    assert good["d"]["audience"]["age"] == 9
    errors = [x for x in lines if "error" in x]
    assert any("not valid JSON" in e["error"] for e in errors)
    assert any(e["id"] == "c" and "non-empty" in e["error"] for e in errors)


def test_cli_benchmark_prints_name_metric_value(pipeline, capsys):
    path = pipeline["src"] / "vihsd" / "dev.csv"
    assert cli.main(["benchmark", "vihsd", "--file", str(path), "--model", str(pipeline["model"])]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert last[:2] == ["vihsd", "macro_f1"]
    assert 0.0 <= float(last[2]) <= 1.0
    path = pipeline["src"] / "vihos" / "dev.csv"
    assert cli.main(["benchmark", "vihos", "--file", str(path), "--model", str(pipeline["model"])]) == 0
    assert capsys.readouterr().out.strip().split()[:2] == ["vihos", "span_f1"]


def test_error_analysis_notebook_runs_headless(pipeline, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("VICAS_MODEL_DIR", str(pipeline["model"]))
    monkeypatch.setenv("VICAS_DATA_DIR", str(pipeline["prepared"]))
    root = Path(__file__).resolve().parents[2]
    nb = nbformat.read(root / "notebooks" / "error_analysis.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(root)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("rows" in "".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")


def test_unaccented_copies_keep_labels_and_evidence_positions():
    from training.text.dataset import unaccented_copies

    rows = [
        {
            "id": "a",
            "source": "vihos",
            "text": "Đồ ngu như bò",
            "norm": "đồ ngu như bò",
            "labels": {},
            "native": {},
            "spans": [(3, 6)],
        }
    ] * 10
    copies = unaccented_copies(rows, 1.0, seed=1)
    assert len(copies) == 10
    c = copies[0]
    assert c["text"] == "Do ngu nhu bo" and c["norm"] == "do ngu nhu bo" and c["id"] == "a~nd"
    assert c["text"][3:6] == "ngu" and c["spans"] == [(3, 6)]
    assert unaccented_copies(rows, 0.0, seed=1) == []


def test_native_class_weights_favour_the_minority_class():
    from training.text.dataset import Encoded
    from training.text.train import native_class_weights

    def enc(y):
        return Encoded(
            [0, 5, 2], np.zeros((12, 3)), np.zeros((12, 3)), np.zeros(3), 0.0, {"victsd_toxic": y, "vihsd": y}, "s"
        )

    data = [enc(0)] * 90 + [enc(1)] * 10
    w = native_class_weights(data, cap=8.0)
    assert float(w["victsd_toxic"]) == pytest.approx(9.0)  # 90 negatives / 10 positives
    assert w["vihsd"][1] > w["vihsd"][0]


def test_int8_gate_blocks_only_a_served_int8_model(pipeline, tmp_path, monkeypatch):
    scores = iter([0.70, 0.60] * 2)  # fp32, then int8: 10 points lost
    monkeypatch.setattr(export_text, "macro_f1_of", lambda engine, rows: next(scores))
    strict = ExportTextConfig(max_length=64, parity_examples=8, f1_rows=20, serve_int8=True)
    with pytest.raises(export_text.ExportParityError, match=r"int8 loses 10\.0 macro-F1 points"):
        export_text.export(strict, pipeline["trained"], pipeline["prepared"], tmp_path / "a", "tiny")
    relaxed = ExportTextConfig(max_length=64, parity_examples=8, f1_rows=20, serve_int8=False)
    m = export_text.export(relaxed, pipeline["trained"], pipeline["prepared"], tmp_path / "b", "tiny")
    assert m.default_onnx == "model.onnx" and m.parity["int8_gate_passed"] == 0.0


def test_int8_model_quantises_the_encoder_but_not_the_heads_or_the_vocabulary(pipeline):
    import onnx

    graph = onnx.load(str(pipeline["model"] / "model.int8.onnx")).graph
    integer = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert integer, "no MatMul was quantised"
    assert not [n.name for n in integer if "_head/" in n.name]
    float_inits = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    gathers = [n for n in graph.node if n.op_type == "Gather" and n.input[0] in float_inits]
    assert gathers, "the word embedding should stay a float Gather"


def test_benchmark_command_applies_the_fitted_decision_offsets(pipeline, tmp_path, capsys):
    """Offsets from the model's calibration decide: +1000 makes every comment toxic, -1000 none."""
    import shutil

    from vicas.manifest import sha256_file

    path = tmp_path / "victsd.csv"
    path.write_text(
        "Comment,Toxicity\nđồ ngu cút đi,1\nmày im đi thằng ngu,1\nbài viết hay quá,0\nnói láo vừa thôi,1\n",
        encoding="utf-8",
    )

    def score_with(offset: float) -> float:
        copy = tmp_path / f"model{offset}"
        shutil.copytree(pipeline["model"], copy)
        m = load_manifest(copy)
        cal_file = m.calibrations[m.default_onnx]
        cal = json.loads((copy / cal_file).read_text())
        cal["native_offsets"] = {"victsd_toxic": [offset]}
        (copy / cal_file).write_text(json.dumps(cal))
        m.files[cal_file] = sha256_file(copy / cal_file)
        m.write(copy)
        assert cli.main(["benchmark", "victsd", "--file", str(path), "--model", str(copy)]) == 0
        return float(capsys.readouterr().out.strip().splitlines()[-1].split()[-1])

    assert score_with(1000.0) == pytest.approx(6 / 7, abs=1e-4)  # 3 toxic of 4, all flagged
    assert score_with(-1000.0) == 0.0


def test_engine_restores_unaccented_text_and_keeps_offsets(pipeline):
    metrics = json.loads((pipeline["root"] / "diacritics.json").read_text())
    assert metrics["texts"] > 0 and 0 <= metrics["unrestored_accuracy"] <= metrics["syllable_accuracy"] <= 1
    engine = TextEngine(pipeline["model"])
    assert engine.restorer is not None
    rows = [r for r in load_rows(pipeline["prepared"] / "train.jsonl") if accented_share(r["norm"])[1] > 0.5]
    accented = max((r["norm"] for r in rows), key=len)
    plain = fold_diacritics(accented)
    norm = engine.normalize(plain)
    assert norm.original == plain and len(norm.text) == len(plain)
    assert norm.text != plain  # accents put back on a text the restorer learned from
    assert engine.normalize(accented).text == accented  # accented input is left as normalised
    pred = engine.classify([plain])[0]
    assert all(0 <= e.start < e.end <= len(plain) for e in pred.evidence)


def test_cli_normalize_shows_what_the_model_reads(pipeline, capsys):
    engine = TextEngine(pipeline["model"])
    rows = [r for r in load_rows(pipeline["prepared"] / "train.jsonl") if accented_share(r["norm"])[1] > 0.5]
    plain = fold_diacritics(max((r["norm"] for r in rows), key=len))
    assert cli.main(["normalize", "--model", str(pipeline["model"]), plain]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["original"] == plain and shown["model_view"] == engine.normalize(plain).text != plain
