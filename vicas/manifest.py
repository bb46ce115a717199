"""The model manifest: what an exported model folder holds and how to trust it.

Export writes `manifest.json` beside the ONNX files; serving refuses a folder
whose files do not match their checksums, whose format version it does not
know, or whose text normalisation differs from the one serving runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field

from vicas.stacking import Stacking
from vicas.taxonomy import CATEGORIES

MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A model folder that must not be served; the message says why."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def normalizer_fingerprint() -> str:
    """Hash of the normalisation code and table: training and serving must agree on it."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for p in (here / "normalize.py", here / "resources" / "teencode.tsv"):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


class Manifest(BaseModel):
    format: int = MANIFEST_FORMAT
    name: str
    version: str = Field(
        description="derived from the inputs (code, params, data: training/versioning.py), not the clock: the "
        "same inputs give the same version"
    )
    kind: str = Field(description="'text' or 'image'")
    created_at: str = Field(
        validation_alias=AliasChoices("created_at", "created"),
        description="when it was exported (UTC): metadata, not part of the version",
    )
    base_model: str
    files: dict[str, str] = Field(description="file name -> sha256")
    default_onnx: str = Field(description="the ONNX file serving loads (int8 by default)")
    categories: list[str]
    native_heads: dict[str, int] = Field(default_factory=dict)
    max_length: int = 128
    special_ids: dict[str, int] = Field(
        default_factory=dict, description="text models: bos, eos and pad token ids of the tokenizer"
    )
    normalizer: str = Field("", description="text models: normalizer_fingerprint() at export time")
    head_categories: list[str] | None = Field(
        None, description="the categories the model's output covers, in order (None: all of `categories`)"
    )
    image_size: int | None = Field(None, description="image models: square input side in pixels")
    imagenet_onnx: str | None = Field(
        None,
        description="image models: the pretrained backbone with its 1000-class ImageNet layer, as it was before "
        "fine-tuning: real-photo cues (weapons, drinks, slot machines; vicas/imagenet_cues.py)",
    )
    open_nsfw_calibration: str | None = Field(
        None, description="image models: the severity thresholds of the open_nsfw nudity reader (vicas/open_nsfw.py)"
    )
    heads_domain: str | None = Field(
        None,
        description="image models: ImageNet features of the heads' training pictures and the similarity a picture "
        "needs for the heads to be read (vicas/imagenet_cues.py HeadsDomain); None: the heads read every picture",
    )
    calibrations: dict[str, str] = Field(
        default_factory=lambda: {"model.onnx": "calibration.json"},
        description="ONNX file -> its calibration file: each exported model is calibrated on dev itself",
    )
    tokenizer_file: str = "tokenizer.json"
    stacking: Stacking | None = Field(None, description="text models: n-gram scores mixed into the logits")
    diacritics_file: str | None = Field(
        None, description="text models: the restorer put in front of texts typed without diacritics (None: off)"
    )
    parity: dict[str, float] = Field(default_factory=dict)
    data_version: str = Field("", description="sha256 (16 hex) of the prepared train and dev files it learned from")
    policy_version: str = Field("", description="the policy the thresholds were evaluated with")
    training: dict[str, object] = Field(default_factory=dict)
    version_inputs: dict[str, str] = Field(
        default_factory=dict, description="what the version was derived from: role -> sha256 prefix (code, params, ...)"
    )
    libraries: dict[str, str] = Field(
        default_factory=dict, description="library versions at export (torch, onnxruntime, tokenizers, ...)"
    )

    def loaded_files(self, onnx_file: str | None = None) -> list[str]:
        """Every file serving reads from the folder for this model (besides the manifest)."""
        onnx_name = onnx_file or self.default_onnx
        names = [onnx_name]
        if onnx_name in self.calibrations:
            names.append(self.calibrations[onnx_name])
        if self.kind == "text":
            names.append(self.tokenizer_file)
            if self.stacking is not None:
                names.append(self.stacking.ngram_file)
            if self.diacritics_file:
                names.append(self.diacritics_file)
        if self.kind == "image":
            names += [n for n in (self.imagenet_onnx, self.open_nsfw_calibration, self.heads_domain) if n]
        return names

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(self.model_dump_json(indent=2), encoding="utf-8")


def load_manifest(folder: Path, *, check_files: bool = True) -> Manifest:
    """Read and verify a model folder's manifest; raises ManifestError on any mismatch."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise ManifestError(
            f"no {MANIFEST_NAME} in {folder}: export a model first (`dvc repro export_text`) or point "
            "VICAS_MODEL_DIR at an exported model folder"
        )
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ManifestError(f"{path} is not a valid manifest: {e}") from e
    if manifest.format != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: manifest format {manifest.format}, this code reads {MANIFEST_FORMAT}")
    if manifest.categories != list(CATEGORIES):
        raise ManifestError(f"{path}: the model's categories {manifest.categories} differ from the contract's")
    if manifest.kind not in ("text", "image"):
        raise ManifestError(f"{path}: unknown model kind {manifest.kind!r} (expected 'text' or 'image')")
    unknown = [c for c in manifest.head_categories or [] if c not in CATEGORIES]
    if unknown:
        raise ManifestError(f"{path}: the model outputs categories {unknown} that the contract does not have")
    if manifest.kind == "image" and not manifest.image_size:
        raise ManifestError(f"{path}: an image model must state its image_size")
    if manifest.kind == "text" and manifest.normalizer != normalizer_fingerprint():
        raise ManifestError(
            f"{path}: the model was trained with text normalisation {manifest.normalizer}, this code runs "
            f"{normalizer_fingerprint()}; retrain and export (`dvc repro`) so training and serving agree"
        )
    for name in manifest.loaded_files():
        _inside(folder, name)
        if name not in manifest.files:
            raise ManifestError(
                f"{path}: {name} is loaded but not listed with its checksum in 'files'; a manifest must vouch "
                "for every file it makes serving read"
            )
    if check_files:
        for name, digest in manifest.files.items():
            _inside(folder, name)
            f = folder / name
            if not f.exists():
                raise ManifestError(f"{folder}: {name} listed in the manifest is missing")
            actual = sha256_file(f)
            if actual != digest:
                raise ManifestError(
                    f"{folder}: checksum mismatch for {name} (manifest {digest[:12]}, file {actual[:12]})"
                )
    return manifest


def _inside(folder: Path, name: str) -> None:
    """A manifest names files in its own folder only: no absolute paths, no `..`, no links leading out."""
    target = (folder / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(folder.resolve()):
        raise ManifestError(f"{folder}: the manifest names {name!r}, which is outside the model folder")
