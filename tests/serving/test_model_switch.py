"""Model switches are an operator's action: inside the models root, every loaded file vouched for by the
manifest, and followed by every worker. Issue: partner API, item 7."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from serving.config import Settings
from serving.db import make_engine, migrate
from serving.keys import ApiKeyError, create_key
from serving.model_switch import requested
from tests.serving.helpers import free_port, wait_ready
from vicas import cli
from vicas.manifest import ManifestError, load_manifest

pytestmark = pytest.mark.slow


def _copy_model(src: Path, dst: Path, version: str | None = None) -> Path:
    shutil.copytree(src, dst)
    if version:  # manifest.json itself is not a checksummed file: a copy under another version is valid
        manifest = json.loads((dst / "manifest.json").read_text())
        manifest["version"] = version
        (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def _edit_manifest(folder: Path, **changes: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_must_vouch_for_every_file_it_loads(tiny_pipeline, tmp_path):
    silent = _copy_model(tiny_pipeline["model"], tmp_path / "silent")
    _edit_manifest(silent, files={})  # accepted before: nothing listed, nothing checked
    with pytest.raises(ManifestError, match="not listed"):
        load_manifest(silent)
    elsewhere = _copy_model(tiny_pipeline["model"], tmp_path / "elsewhere")
    outside = tmp_path / "evil.onnx"
    shutil.copy(elsewhere / load_manifest(elsewhere).default_onnx, outside)
    manifest = json.loads((elsewhere / "manifest.json").read_text())
    manifest["files"]["../evil.onnx"] = manifest["files"][manifest["default_onnx"]]
    manifest["calibrations"]["../evil.onnx"] = manifest["calibrations"][manifest["default_onnx"]]
    manifest["default_onnx"] = "../evil.onnx"
    (elsewhere / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="outside the model folder"):
        load_manifest(elsewhere)


def test_partners_cannot_reload_models(tiny_pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    migrate(url)
    db = make_engine(url)
    with pytest.raises(ApiKeyError, match="unknown scopes"):
        create_key(db, "telco-a", {"classify", "admin"})
    key = create_key(db, "telco-a", {"classify"})
    settings = Settings(model_dir=tiny_pipeline["model"], database_url=url, spool_dir=tmp_path / "spool")
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/admin/reload", json={"model_dir": str(tmp_path)}, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code in (404, 405) and r.json()["code"] in ("not_found", "method_not_allowed")
    db.dispose()


def test_activate_refuses_folders_outside_the_root_and_bad_artefacts(tiny_pipeline, tmp_path, monkeypatch, capsys):
    root = tmp_path / "models"
    root.mkdir()
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    monkeypatch.setenv("VICAS_DATABASE_URL", url)
    monkeypatch.setenv("VICAS_MODELS_ROOT", str(root))
    outside = _copy_model(tiny_pipeline["model"], tmp_path / "outside")
    assert cli.main(["models", "activate", "--dir", str(outside)]) == 2
    assert "outside the models root" in capsys.readouterr().err
    link = root / "link"
    link.symlink_to(outside)  # a link inside the root leading out of it is outside too
    assert cli.main(["models", "activate", "--dir", str(link)]) == 2
    broken = _copy_model(tiny_pipeline["model"], root / "broken")
    (broken / load_manifest(broken, check_files=False).default_onnx).write_bytes(b"corrupted")
    assert cli.main(["models", "activate", "--dir", str(broken)]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    db = make_engine(url)
    assert requested(db) is None, "a refused folder changes nothing"
    good = _copy_model(tiny_pipeline["model"], root / "v2", version="v2")
    assert cli.main(["models", "activate", "--dir", str(good)]) == 0
    assert requested(db) == good.resolve()
    assert cli.main(["models", "status"]) == 0 and str(good.resolve()) in capsys.readouterr().out
    db.dispose()


def test_every_worker_follows_an_activated_model(tiny_pipeline, tmp_path, monkeypatch):
    root = tmp_path / "models"
    first = _copy_model(tiny_pipeline["model"], root / "v1", version="v1")
    second = _copy_model(tiny_pipeline["model"], root / "v2", version="v2")
    url = f"sqlite:///{tmp_path / 'vicas.db'}"
    env = {
        **os.environ,
        "VICAS_MODEL_DIR": str(first),
        "VICAS_MODELS_ROOT": str(root),
        "VICAS_DATABASE_URL": url,
        "VICAS_SPOOL_DIR": str(tmp_path / "spool"),
        "VICAS_REQUIRE_API_KEY": "false",
        "VICAS_SECRET_KEY": "switch-test-secret-0123456789",
        "VICAS_OCR": "false",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vicas.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def versions(n: int) -> set[str]:
        seen = set()
        for i in range(n):  # new connections: spread over both workers
            with httpx.Client(timeout=30) as c:
                seen.add(c.post(f"{base}/v1/classify", json={"text": f"tin {i}"}).json()["model_version"])
        return seen

    try:
        wait_ready(base)
        assert {v.split("@")[1] for v in versions(6)} == {"v1"}
        monkeypatch.setenv("VICAS_DATABASE_URL", url)
        monkeypatch.setenv("VICAS_MODELS_ROOT", str(root))
        assert cli.main(["models", "activate", "--dir", str(second)]) == 0
        deadline = time.time() + 30
        while time.time() < deadline and {v.split("@")[1] for v in versions(4)} != {"v2"}:
            time.sleep(1)
        assert {v.split("@")[1] for v in versions(12)} == {"v2"}, "every worker serves the activated model"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
