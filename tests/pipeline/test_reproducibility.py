"""Retraining that reproduces: versions from inputs, stamped files, dvclive steps, resumable training, cards, lock."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from datetime import datetime
from pathlib import Path

import pytest
import torch

from training.config import ExportTextConfig, TrainTextConfig
from training.text import export as export_text
from training.text import train as train_text_module
from training.text.conversations import train as train_conversations
from training.versioning import contract_version, input_version, read_onnx_props
from vicas.conversation import HEAD_FILE, ConversationModel
from vicas.manifest import Manifest, load_manifest
from vicas.normalize import NORMALIZATION_VERSION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock-py311.txt"

# the export the tiny pipeline ran (tests/tiny_model.py)
TINY_EXPORT = ExportTextConfig(
    max_length=64, parity_examples=16, f1_rows=50, int8_max_f1_drop=100.0, serve_int8=True, ngram_weight=0.5
)


def tiny_train_config(**changes: object) -> TrainTextConfig:
    base: dict[str, object] = {
        "num_layers": None,
        "max_steps": 8,
        "eval_every": 4,
        "log_every": 2,
        "batch_size": 4,
        "max_length": 64,
        "source_weights": {"own": 3.0},
        "watch_rows": 50,
        "max_minutes": 5,
    }
    return TrainTextConfig.model_validate(base | changes)


def _export(pipeline: dict[str, Path], out: Path, trained: Path | None = None) -> Manifest:
    root = pipeline["root"]
    return export_text.export(
        TINY_EXPORT,
        trained or pipeline["trained"],
        pipeline["prepared"],
        out,
        "tiny-test-bert",
        pipeline["baseline"],
        root / "diacritics" / "diacritics.json.gz",
    )


# -- model version ------------------------------------------------------------------------------------------------


def test_same_inputs_give_the_same_version_and_a_changed_input_another(tiny_pipeline, tmp_path):
    first = load_manifest(tiny_pipeline["model"])
    again = _export(tiny_pipeline, tmp_path / "again")
    assert re.fullmatch(r"[0-9a-f]{12}", first.version)
    assert again.version == first.version
    assert datetime.fromisoformat(first.created_at).tzinfo is not None  # the time is metadata beside it
    assert set(first.version_inputs) >= {"code", "params", "input:trained", "input:dev", "input:baseline"}

    changed = tmp_path / "trained"
    shutil.copytree(tiny_pipeline["trained"], changed)
    cal = json.loads((changed / "calibration.json").read_text())
    cal["rule"] = cal["rule"] + " (changed)"
    (changed / "calibration.json").write_text(json.dumps(cal))
    other = _export(tiny_pipeline, tmp_path / "other", changed)
    assert other.version != first.version
    assert other.version_inputs["input:trained"] != first.version_inputs["input:trained"]
    assert other.version_inputs["code"] == first.version_inputs["code"]


def test_version_ignores_timings_and_follows_params_and_code(tiny_pipeline, tmp_path):
    inputs = {"trained": tiny_pipeline["trained"], "dev": tiny_pipeline["prepared"] / "dev.jsonl"}
    params = {"export_text": TINY_EXPORT.model_dump(mode="json"), "base_model": "tiny-test-bert"}
    v = input_version("export_text", params, inputs).version

    slower = tmp_path / "trained"
    shutil.copytree(tiny_pipeline["trained"], slower)
    summary = json.loads((slower / "training.json").read_text())
    summary["minutes"] = 999.0  # how long a run took is not what it learned
    (slower / "training.json").write_text(json.dumps(summary))
    assert input_version("export_text", params, {**inputs, "trained": slower}).version == v

    other_params = {**params, "base_model": "another"}
    assert input_version("export_text", other_params, inputs).version != v

    # the code: a one-line change to a module the stage imports (a copy of the repository's code and dvc.yaml)
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "training", "vicas"):
        src = ROOT / name
        shutil.copytree(src, root / name) if src.is_dir() else shutil.copy(src, root / name)
    assert input_version("export_text", params, inputs, root).version == v
    with (root / "vicas" / "taxonomy.py").open("a") as f:
        f.write("# one more line\n")
    assert input_version("export_text", params, inputs, root).version != v
    # a module the stage does not import changes nothing
    root_b = tmp_path / "repo_b"
    shutil.copytree(root, root_b)
    shutil.copy(ROOT / "vicas" / "taxonomy.py", root_b / "vicas" / "taxonomy.py")
    with (root_b / "training" / "image_synth.py").open("a") as f:
        f.write("# one more line\n")
    assert input_version("export_text", params, inputs, root_b).version == v


def test_conversation_model_version_derives_from_its_inputs(tiny_conversations, tmp_path):
    first = ConversationModel.load(tiny_conversations["model"]).version
    data = tiny_conversations["model"].parent / "data"
    train_conversations(data, tmp_path / "a", tmp_path / "a.json", c=4.0, max_negative_rate=0.05)
    assert ConversationModel.load(tmp_path / "a").version == first
    assert re.fullmatch(r"vicas-conversation@[0-9a-f]{12}", first)
    train_conversations(data, tmp_path / "b", tmp_path / "b.json", c=2.0, max_negative_rate=0.05)
    assert ConversationModel.load(tmp_path / "b").version != first
    head = json.loads((tmp_path / "a" / HEAD_FILE).read_text())
    assert datetime.fromisoformat(head["created_at"]) and head["version_inputs"]["input:data"]


# -- what each exported file says about itself --------------------------------------------------------------------


def test_onnx_files_and_manifest_carry_versions(tiny_pipeline):
    m = load_manifest(tiny_pipeline["model"])
    for name in ("model.onnx", "model.int8.onnx"):
        props = read_onnx_props(tiny_pipeline["model"] / name)
        assert props["model_version"] == f"vicas-text@{m.version}"
        assert props["contract_version"] == contract_version()
        assert props["normalization_version"] == NORMALIZATION_VERSION
        assert props["normalizer_fingerprint"] == m.normalizer
        assert props["opset"] == str(TINY_EXPORT.opset)
    assert {"numpy", "onnxruntime", "tokenizers", "torch", "transformers"} <= set(m.libraries)
    assert m.libraries["torch"].startswith(torch.__version__.split("+")[0])


def test_exported_folder_has_a_hugging_face_model_card(tiny_pipeline):
    from huggingface_hub import ModelCard

    m = load_manifest(tiny_pipeline["model"])
    card = ModelCard.load(tiny_pipeline["model"] / "README.md")
    data = card.data.to_dict()
    assert data["language"] == "vi" and data["license"] == "other" and data["license_name"]
    assert data["base_model"] == "tiny-test-bert" and "ViHSD" in data["datasets"]
    assert data["model_version"] == f"vicas-text@{m.version}"
    (index,) = data["model-index"]
    metrics = [x for r in index["results"] for x in r["metrics"]]
    assert {x["value"] for x in metrics} == {m.parity["dev_macro_f1_fp32"], m.parity["dev_macro_f1_int8"]}
    assert "from vicas.engine import TextEngine" in card.text


def test_trained_folder_loads_with_from_pretrained(tiny_pipeline):
    from transformers import AutoModel, AutoTokenizer

    trained = tiny_pipeline["trained"]
    encoder = AutoModel.from_pretrained(trained)
    tokenizer = AutoTokenizer.from_pretrained(trained)
    assert (trained / "heads.safetensors").exists() and not (trained / "model.pt").exists()
    assert encoder.config.vocab_size == len(tokenizer)
    model, _ = export_text.load_trained(trained)
    loaded = encoder.state_dict()  # plus a fresh pooler, which the heads do not use
    for name, value in model.encoder.state_dict().items():
        torch.testing.assert_close(loaded[name], value)


# -- dvclive and resume ---------------------------------------------------------------------------------------------


def _steps(tsv: Path) -> list[int]:
    lines = tsv.read_text().splitlines()
    col = lines[0].split("\t").index("step")
    return [int(line.split("\t")[col]) for line in lines[1:]]


def _live(folder: Path, resume: bool = False):  # type: ignore[no-untyped-def]
    from dvclive import Live

    return Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, resume=resume)


def test_dvclive_records_each_metric_at_the_step_it_was_measured(tiny_pipeline, tmp_path):
    root, live_dir = tiny_pipeline["root"], tmp_path / "live"
    with _live(live_dir) as live:
        summary = train_text_module.train(
            tiny_train_config(), root / "base", tiny_pipeline["prepared"], tmp_path / "t", live
        )
    metrics = live_dir / "plots" / "metrics"
    assert _steps(metrics / "train" / "loss.tsv") == [2, 4, 6, 8]
    assert _steps(metrics / "train_eval" / "dev_subset_macro_f1_presence.tsv") == [4, 8]
    assert [h["step"] for h in summary["history"]] == [4, 8]
    assert "dev_subset_macro_f1_presence" in json.loads((live_dir / "metrics.json").read_text())["train_eval"]


def test_a_stopped_training_resumes_from_its_last_evaluation(tiny_pipeline, tmp_path, monkeypatch):
    root, prepared = tiny_pipeline["root"], tiny_pipeline["prepared"]
    cfg = tiny_train_config()
    whole = train_text_module.train(cfg, root / "base", prepared, tmp_path / "whole", checkpoint_dir=tmp_path / "ck0")
    assert whole["resumed_from_step"] == 0 and not (tmp_path / "ck0").exists()  # a finished run removes them

    checkpoints, real_loss, calls = tmp_path / "ck", train_text_module.compute_loss, []

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 7:  # during step 7: the last checkpoint is step 4's, steps 5 and 6 are lost
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_text_module, "compute_loss", interrupted)
    with pytest.raises(KeyboardInterrupt), _live(tmp_path / "live") as live:
        train_text_module.train(cfg, root / "base", prepared, tmp_path / "out", live, checkpoint_dir=checkpoints)
    assert (checkpoints / "latest").read_text() == "step-0000004"
    monkeypatch.setattr(train_text_module, "compute_loss", real_loss)

    with _live(tmp_path / "live", resume=True) as live:
        resumed = train_text_module.train(
            cfg, root / "base", prepared, tmp_path / "out", live, checkpoint_dir=checkpoints
        )
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 8
    assert [h["step"] for h in resumed["history"]] == [4, 8]
    assert resumed["history"] == whole["history"]  # the same losses and dev figures after the resumed step too
    # the rows logged after the checkpoint were dropped and logged again: each step once
    assert _steps(tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv") == [2, 4, 6, 8]
    # it went on where it stopped: the same weights as the run that was never stopped
    from safetensors.torch import load_file

    for name in ("model.safetensors", "heads.safetensors"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "out" / name))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # so the model exported from it gets the same version
    same = [input_version("export_text", {}, {"trained": tmp_path / n}).version for n in ("whole", "out")]
    assert same[0] == same[1]


def test_a_safety_stop_keeps_its_checkpoint_and_the_next_run_goes_on(tiny_pipeline, tmp_path):
    root, prepared, checkpoints = tiny_pipeline["root"], tiny_pipeline["prepared"], tmp_path / "ck"
    whole = train_text_module.train(tiny_train_config(), root / "base", prepared, tmp_path / "whole")
    stopped = train_text_module.train(
        tiny_train_config(max_minutes=1e-9), root / "base", prepared, tmp_path / "a", checkpoint_dir=checkpoints
    )
    assert stopped["stop_reason"].startswith("safety stop") and stopped["steps"] == 1
    assert (checkpoints / "latest").read_text() == "step-0000001"
    # a busy machine: the safety stop raised, the run goes on from step 1 and ends as if never stopped
    again = train_text_module.train(
        tiny_train_config(max_minutes=50), root / "base", prepared, tmp_path / "b", checkpoint_dir=checkpoints
    )
    assert again["resumed_from_step"] == 1 and again["steps"] == 8 and again["history"] == whole["history"]
    assert not checkpoints.exists()


def test_a_checkpoint_from_other_inputs_is_not_resumed(tiny_pipeline, tmp_path, monkeypatch):
    root, prepared = tiny_pipeline["root"], tiny_pipeline["prepared"]
    checkpoints, real_loss, calls = tmp_path / "ck", train_text_module.compute_loss, []

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_text_module, "compute_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_text_module.train(
            tiny_train_config(), root / "base", prepared, tmp_path / "a", checkpoint_dir=checkpoints
        )
    monkeypatch.setattr(train_text_module, "compute_loss", real_loss)
    other = tiny_train_config(lr=1e-4)
    assert (
        train_text_module.train(other, root / "base", prepared, tmp_path / "b", checkpoint_dir=checkpoints)[
            "resumed_from_step"
        ]
        == 0
    )
    # the safety stop and the threads may change between the stopped run and the resumed one
    monkeypatch.setattr(train_text_module, "compute_loss", interrupted)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        train_text_module.train(
            tiny_train_config(), root / "base", prepared, tmp_path / "c", checkpoint_dir=checkpoints
        )
    monkeypatch.setattr(train_text_module, "compute_loss", real_loss)
    longer = tiny_train_config(max_minutes=50, threads=1)
    assert (
        train_text_module.train(longer, root / "base", prepared, tmp_path / "d", checkpoint_dir=checkpoints)[
            "resumed_from_step"
        ]
        == 4
    )


# -- the lock file ----------------------------------------------------------------------------------------------


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def test_lock_pins_every_dependency_of_the_locked_extras_and_no_cuda():
    text = LOCK.read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, flags=re.MULTILINE))
    pinned = {_name(k) for k in pins}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in ("train", "serve", "bulk", "dev"):
        wanted += project["optional-dependencies"][extra]
    missing = sorted({_name(r) for r in wanted} - pinned)
    assert not missing, f"{LOCK.name} lacks {missing}: run `make lock`"
    assert pins["torch"] == "2.13.0+cpu"  # the CPU build: a CUDA torch would pull nvidia-* libraries
    cuda = [n for n in pinned if re.match(r"(nvidia-|cuda|triton)", n) and n != "nvidia-ml-py"]
    assert not cuda, f"{LOCK.name} pulls CUDA packages: {cuda}"
    assert "nudenet" not in pinned  # the AGPL extra stays out of the default install
