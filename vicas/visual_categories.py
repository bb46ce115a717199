"""The six contract categories a picture can show, in the visual classifier's output order."""

from __future__ import annotations

from vicas.taxonomy import CATEGORIES

VISUAL_CATEGORIES: tuple[str, ...] = ("sexual", "violence", "substances", "gambling", "self_harm", "dangerous_acts")

_unknown = [c for c in VISUAL_CATEGORIES if c not in CATEGORIES]
if _unknown:  # pragma: no cover - guards a future edit of either list
    raise ImportError(f"visual categories {_unknown} are not contract categories (vicas.taxonomy.CATEGORIES)")
