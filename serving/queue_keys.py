"""The review queue's sort and filter keys of a flagged item, computed once when it is stored.

The console's queue is ordered most urgent first: band C with child_sexual, band C, child_sexual at any
other band, everything else (`queue_rank` 0-3); within a rank the least confident flag first (a human is
needed most where the model was least sure), then the oldest, then the lowest id. The band and categories
an item was stored with never change (a review writes final_band / final_categories), so these keys are
stored with the row (migration 0008) and indexed: the queue pages through them with a keyset cursor
instead of reading and sorting rows in Python.
"""

from __future__ import annotations

import json
from typing import Any

SEPARATOR = ","  # category_flags is ",violence,sexual,": a category matches as the substring ",name,"


def _severity(value: Any) -> float:
    if not isinstance(value, dict):
        return 0.0
    try:
        return float(value.get("severity", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def _score(value: Any) -> float:
    if not isinstance(value, dict):
        return 0.0
    try:
        return float(value.get("score", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def confidence(cats: dict[str, Any]) -> float:
    """How sure the model was of its strongest flag (low = needs a human most): the highest score among
    the flagged categories (severity > 0), or the highest score at all when none is flagged."""
    flagged = [_score(v) for v in cats.values() if _severity(v) > 0]
    return max(flagged) if flagged else max((_score(v) for v in cats.values()), default=0.0)


def queue_rank(band: str, cats: dict[str, Any]) -> int:
    """0: band C with child_sexual; 1: band C; 2: child_sexual at another band; 3: the rest."""
    return 2 * (band != "C") + (_severity(cats.get("child_sexual")) <= 0)


def category_flags(cats: dict[str, Any]) -> str:
    """The flagged categories (severity > 0) as ",a,b," (sorted), or "" when none is flagged."""
    names = sorted(str(c) for c, v in cats.items() if _severity(v) > 0 and SEPARATOR not in str(c))
    return f"{SEPARATOR}{SEPARATOR.join(names)}{SEPARATOR}" if names else ""


def parse_categories(categories: str | dict[str, Any] | None) -> dict[str, Any]:
    """The stored categories column (JSON text) as a dict; {} when it is not readable."""
    if isinstance(categories, dict):
        return categories
    try:
        cats = json.loads(categories or "{}")
    except (TypeError, ValueError):
        return {}
    return cats if isinstance(cats, dict) else {}


def keys_for(band: str, categories: str | dict[str, Any] | None) -> dict[str, Any]:
    """The stored queue columns of an item with this (model) band and categories."""
    cats = parse_categories(categories)
    return {
        "queue_rank": queue_rank(band, cats),
        "confidence": confidence(cats),
        "category_flags": category_flags(cats),
    }
