"""Model versions derived from what made the model, and what is stamped into each exported file.

A version names the inputs, not the moment: the project code a stage runs (its deps in dvc.yaml, which
tests/pipeline/test_dvc_deps.py keeps equal to its import closure), its params and the content of every input
file. The same inputs give the same version on any machine and any day, so two `dvc repro` runs agree and a
serving cache keyed by version stays valid; the time of export is kept beside it as metadata (`created_at`).
Timings and creation times inside JSON inputs (`VOLATILE_KEYS`) are left out of the hash: they record how a run
went, not what it learned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from vicas.manifest import normalizer_fingerprint, sha256_file
from vicas.normalize import NORMALIZATION_VERSION
from vicas.taxonomy import ALLOWED_SEVERITIES, BAND_MIN_AGE, BAND_ORDER, CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("vicas", "training", "serving", "scripts")
SKIP_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
VOLATILE_KEYS = frozenset({"minutes", "data_minutes", "resumed_from_step", "created", "created_at"})
VERSION_HEX = 12
# the libraries whose versions decide what an exported model computes or how it was made
LIBRARIES = ("numpy", "onnx", "onnxruntime", "tokenizers", "torch", "transformers", "scikit-learn")


@dataclass(frozen=True)
class InputVersion:
    """`version`: 12 hex digits over `parts` (each input's own digest, by role), kept so a change can be traced."""

    version: str
    parts: dict[str, str] = field(default_factory=dict)


def _files_of(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not SKIP_PARTS.intersection(p.relative_to(path).parts))


def stage_code(stage: str, root: Path = ROOT) -> list[Path]:
    """The project files a DVC stage runs or reads: its deps under the code folders.

    Without dvc.yaml or the stage there (a copy of the code outside the repository), every file under
    `training/` and `vicas/`: a conservative stand-in that changes whenever any code does.
    """
    dvc_yaml = root / "dvc.yaml"
    stages: dict[str, Any] = {}
    if dvc_yaml.is_file():
        stages = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages") or {}
    if stage not in stages:
        return [f for d in ("training", "vicas") for f in _files_of(root / d)]
    files: list[Path] = []
    for dep in stages[stage].get("deps") or []:
        name = dep if isinstance(dep, str) else next(iter(dep))
        if "${" in name or Path(name).parts[0] not in CODE_DIRS:
            continue  # data, models and params-named paths: hashed as the inputs actually passed
        files += _files_of(root / name)
    return sorted(set(files))


def _file_digest(path: Path) -> str:
    """sha256 of a file; for a JSON object, of its canonical form without the `VOLATILE_KEYS`."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        if isinstance(data, dict):
            stable = {k: v for k, v in data.items() if k not in VOLATILE_KEYS}
            return hashlib.sha256(json.dumps(stable, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return sha256_file(path)


def digest_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names relative to it, and contents); a missing path hashes
    as 'missing', so passing an input or not changes the version."""
    h = hashlib.sha256()
    if not path.exists():
        h.update(b"missing")
    elif path.is_file():
        h.update(_file_digest(path).encode())
    else:
        for f in _files_of(path):
            h.update(f.relative_to(path).as_posix().encode() + b"\0" + _file_digest(f).encode() + b"\n")
    return h.hexdigest()


def digest_params(params: BaseModel | Mapping[str, Any]) -> str:
    """sha256 of the params as canonical JSON (key order and pydantic types do not matter)."""
    data = params.model_dump(mode="json") if isinstance(params, BaseModel) else dict(params)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def digest_code(files: Iterable[Path], root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        name = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
        h.update(name.encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def input_version(
    stage: str,
    params: BaseModel | Mapping[str, Any],
    inputs: Mapping[str, Path | None],
    root: Path = ROOT,
) -> InputVersion:
    """The version of what `stage` makes from these inputs: code, params and input contents, nothing else.

    `inputs` are named by role ("trained", "dev", ...), not by path, so the same files give the same version
    wherever they lie (a test's temporary folder or `models/`); None stands for an input not given.
    """
    parts = {"code": digest_code(stage_code(stage, root), root)[:16], "params": digest_params(params)[:16]}
    for role, path in sorted(inputs.items()):
        parts[f"input:{role}"] = "none" if path is None else digest_path(path)[:16]
    version = hashlib.sha256(json.dumps({"stage": stage, **parts}, sort_keys=True).encode()).hexdigest()
    return InputVersion(version[:VERSION_HEX], parts)


def created_at() -> str:
    """The moment of export, UTC: metadata beside the version, never part of it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that made the model (those installed; the rest left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def contract_version() -> str:
    """12 hex digits of the label contract as code (bands and their ages, categories, allowed severities): a
    model's outputs mean what the contract says only while this matches."""
    contract = {
        "bands": [b.value for b in BAND_ORDER],
        "band_min_age": {b.value: age for b, age in BAND_MIN_AGE.items()},
        "categories": list(CATEGORIES),
        "severities": {c: sorted(s) for c, s in ALLOWED_SEVERITIES.items()},
    }
    return hashlib.sha256(json.dumps(contract, sort_keys=True).encode()).hexdigest()[:VERSION_HEX]


def onnx_props(model_version: str, opset: int) -> dict[str, str]:
    """What each exported ONNX file says about itself, for whoever finds it without its manifest."""
    return {
        "model_version": model_version,
        "contract_version": contract_version(),
        "normalization_version": NORMALIZATION_VERSION,
        "normalizer_fingerprint": normalizer_fingerprint(),
        "opset": str(opset),
    }


def stamp_onnx(path: Path, props: Mapping[str, str]) -> None:
    """Write `props` into the ONNX file's `metadata_props` (replacing keys already there), in place."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    kept = {p.key: p.value for p in model.metadata_props if p.key not in props}
    del model.metadata_props[:]
    for key, value in {**kept, **props}.items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, str(path))


def read_onnx_props(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
