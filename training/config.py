"""Typed, validated view of params.yaml: one model per DVC stage's section.

Stages read only their own section, so `dvc.yaml` can list exactly the params
each one depends on. A wrong value stops the stage with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.adapters import PUBLIC_ADAPTERS

T = TypeVar("T", bound=BaseModel)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestConfig(StageConfig):
    source_dir: Path = Field(description="folder holding the public datasets (one subfolder per source)")
    sources: list[str] = Field(description="public sources to read, by adapter name")
    own_dir: Path = Field(description="the project's own labelled corpus (*.jsonl)")
    reviewed_dir: Path = Field(description="reviewed items exported from the review console (*.jsonl)")
    smishing_dev_fraction: float = Field(0.15, gt=0, lt=1)
    seed: int = 13

    @model_validator(mode="after")
    def _known_sources(self) -> IngestConfig:
        unknown = [s for s in self.sources if s not in PUBLIC_ADAPTERS]
        if unknown:
            raise ValueError(f"unknown sources {unknown}; available: {sorted(PUBLIC_ADAPTERS)}")
        return self


class SplitFractions(StageConfig):
    train: float = Field(gt=0, lt=1)
    dev: float = Field(gt=0, lt=1)
    test: float = Field(ge=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.dev + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"own_split fractions must sum to 1, got {total:.3f}")
        return self


class PrepareConfig(StageConfig):
    near_dup_threshold: float = Field(0.9, gt=0, le=1, description="MinHash Jaccard above which two texts are one")
    own_split: SplitFractions
    seed: int = 13


class CorpusQCConfig(StageConfig):
    near_dup_threshold: float = Field(0.8, gt=0, le=1)
    min_positives: int = 150
    min_hard_negatives: int = 50
    min_clean: int = 400
    min_total: int = 3000
    agreement_min_kappa: float = 0.7


def load_section(params_path: str | Path, section: str, model: type[T]) -> T:
    """Read one section of params.yaml into its typed model, with a clear error."""
    path = Path(params_path)
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise SystemExit(f"params file not found: {path}") from e
    if section not in raw:
        raise SystemExit(f"{path} has no '{section}' section")
    try:
        return model.model_validate(raw[section])
    except ValidationError as e:
        lines = [f"  {section}.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise SystemExit(f"{path}: invalid '{section}' section:\n" + "\n".join(lines)) from e
