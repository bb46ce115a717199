"""The training stage runs unchanged under `accelerate launch` with several processes (here 2 CPU processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from training.config import TrainTextConfig

pytestmark = pytest.mark.slow


def test_train_text_under_accelerate_launch_with_two_processes(tiny_pipeline, tmp_path):
    if shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("accelerate is not installed")
    cfg = TrainTextConfig(
        num_layers=None,
        max_steps=6,
        eval_every=3,
        batch_size=4,
        max_length=64,
        source_weights={"own": 3.0},
        watch_rows=40,
        max_minutes=5,
    )
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train_text": cfg.model_dump()}, allow_unicode=True))
    out = tmp_path / "trained"
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "accelerate"),
        "launch",
        "--cpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "training.text.train",
        "--params",
        str(params),
        "--base",
        str(tiny_pipeline["root"] / "base"),
        "--data",
        str(tiny_pipeline["prepared"]),
        "--out",
        str(out),
        "--no-live",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "training.json").read_text())
    assert summary["steps"] == 6
    assert (out / "heads.safetensors").exists() and (out / "calibration.json").exists()
