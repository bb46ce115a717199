"""Age bands and harm categories of the label contract (shared/TAXONOMY.md)."""

from __future__ import annotations

from enum import StrEnum


class Band(StrEnum):
    """Age bands, ordered P < K < T13 < T16 < T18 < C (not alphabetically: all four comparisons are defined)."""

    P = "P"
    K = "K"
    T13 = "T13"
    T16 = "T16"
    T18 = "T18"
    C = "C"

    @property
    def rank(self) -> int:
        return BAND_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Band):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Band):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Band):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Band):
            return NotImplemented
        return self.rank >= other.rank

    @property
    def min_age(self) -> int | None:
        """Youngest viewer the band admits on their own; None for C (nobody)."""
        return BAND_MIN_AGE[self]


BAND_ORDER: tuple[Band, ...] = (Band.P, Band.K, Band.T13, Band.T16, Band.T18, Band.C)

# K admits under-13s only with a guardian: on their own they need 13.
BAND_MIN_AGE: dict[Band, int | None] = {
    Band.P: 0,
    Band.K: 13,
    Band.T13: 13,
    Band.T16: 16,
    Band.T18: 18,
    Band.C: None,
}

CATEGORIES: tuple[str, ...] = (
    "sexual",
    "child_sexual",
    "violence",
    "self_harm",
    "hate",
    "harassment",
    "profanity",
    "substances",
    "gambling",
    "dangerous_acts",
    "scam",
    "personal_data",
)

MAX_SEVERITY = 3
SEVERITIES: tuple[int, ...] = (0, 1, 2, 3)

# Severities the contract defines for each category ("-" cells are undefined).
ALLOWED_SEVERITIES: dict[str, frozenset[int]] = {c: frozenset({0, 1, 2, 3}) for c in CATEGORIES}
ALLOWED_SEVERITIES["child_sexual"] = frozenset({0, 3})
ALLOWED_SEVERITIES["scam"] = frozenset({0, 2, 3})
ALLOWED_SEVERITIES["personal_data"] = frozenset({0, 2, 3})

CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "sexual": "sexual content, nudity",
    "child_sexual": "sexualisation of minors, grooming, sexual solicitation of children, CSAM",
    "violence": "violence, gore, horror, weapons, terrorism",
    "self_harm": "suicide, self-injury, eating disorders",
    "hate": "attacks on groups: region, ethnicity, religion, gender, orientation, disability",
    "harassment": "bullying, insults, threats at a person",
    "profanity": "vulgar or obscene language",
    "substances": "drugs, alcohol, tobacco, vaping",
    "gambling": "betting, casinos, tai xiu, no hu, lottery",
    "dangerous_acts": "dangerous challenges, stunts, imitable risky behaviour, making weapons",
    "scam": "fraud, phishing, fake giveaways, account theft, smishing",
    "personal_data": "exposure of a child's private information (Decree 56/2017)",
}


def check_category(name: str) -> str:
    """Return name if it is a contract category, else raise ValueError naming the valid ones."""
    if name not in CATEGORIES:
        raise ValueError(f"unknown category {name!r}; valid categories: {', '.join(CATEGORIES)}")
    return name


def check_severity(category: str, severity: int) -> int:
    """Validate a severity for a category against the contract."""
    check_category(category)
    if isinstance(severity, bool) or not isinstance(severity, int):
        raise ValueError(f"severity for {category!r} must be an integer 0-3, got {severity!r}")
    if severity not in ALLOWED_SEVERITIES[category]:
        allowed = sorted(ALLOWED_SEVERITIES[category])
        raise ValueError(f"severity {severity} is not defined for {category!r}; allowed: {allowed}")
    return severity
