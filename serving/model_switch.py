"""Which model every worker serves, switched by an operator, never by a partner.

An operator runs `vicas models activate --dir DIR`: the folder must lie under the models root
(VICAS_MODELS_ROOT), its manifest must vouch for every file it loads, and it is loaded once in full
before anything changes. The choice is written to the database; every worker of every replica reads it
every few seconds and swaps to it, and each answer's `model_version` names the model that made it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from serving.db import serving_state
from serving.review import audit

TEXT_MODEL = "text_model_dir"


class ModelSwitchError(ValueError):
    """A model folder that may not be served; the message says why."""


def inside_root(root: Path, folder: Path) -> Path:
    """The folder, resolved, when it lies under the models root (links followed); ModelSwitchError if not."""
    resolved = folder.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ModelSwitchError(
            f"{folder} is outside the models root {root.resolve()} (VICAS_MODELS_ROOT): copy the exported "
            "model there first"
        )
    return resolved


def activate(engine: Engine, root: Path, folder: Path, actor: str, threads: int | None = 1) -> str:
    """Verify and load the model once, then ask every worker to serve it; returns its version."""
    from vicas.engine import TextEngine

    resolved = inside_root(root, folder)
    try:
        version = TextEngine(resolved, threads=threads).version
    except Exception as e:  # a manifest that does not vouch for its files, a checksum, a broken ONNX file
        raise ModelSwitchError(f"{folder} cannot be served: {e}") from e
    now = datetime.now(UTC)
    with engine.begin() as conn:
        before = conn.execute(select(serving_state.c.value).where(serving_state.c.name == TEXT_MODEL)).scalar()
        values = {"value": str(resolved), "updated_by": actor, "updated_at": now}
        if before is None:
            conn.execute(insert(serving_state).values(name=TEXT_MODEL, **values))
        else:
            conn.execute(update(serving_state).where(serving_state.c.name == TEXT_MODEL).values(**values))
        after = {"dir": str(resolved), "version": version}
        audit.append(conn, actor, "model:activate", "model:text", {"dir": before}, after)
    return version


def requested(engine: Engine) -> Path | None:
    """The folder operators asked for, or None when they never did (the configured VICAS_MODEL_DIR stands)."""
    with engine.connect() as conn:
        value = conn.execute(select(serving_state.c.value).where(serving_state.c.name == TEXT_MODEL)).scalar()
    return Path(value) if value else None
