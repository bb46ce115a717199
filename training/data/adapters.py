"""One adapter per data source: read its files, keep its native labels, map them onto the contract.

Every adapter yields `Record`s. A record's `labels` gives, for each contract
category the source says something about, the range of severities the source's
annotation allows: `[0, 0]` is "absent", `[2, 3]` is "at least moderate",
`[1, 3]` is "present, severity unknown". A category a source does not annotate
is missing from `labels`: unknown, masked out of the loss and the metrics,
never counted as a negative. The mapping of each source is written down in its
data card (`data_cards/<source>.md`); change both together.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vicas.taxonomy import CATEGORIES, check_severity

SeverityRange = tuple[int, int]


class SourceError(ValueError):
    """A source folder or file that does not look as expected; the message says what to do."""


@dataclass
class Record:
    id: str
    source: str
    split: str | None  # train / dev for public sources; None until prepare assigns one
    text: str
    labels: dict[str, SeverityRange]
    native: dict[str, Any] = field(default_factory=dict)
    spans: list[tuple[int, int]] | None = None  # evidence character spans on `text`
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        d = asdict(self)
        d["labels"] = {k: list(v) for k, v in self.labels.items()}
        d["spans"] = [list(s) for s in self.spans] if self.spans is not None else None
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Record:
        d = json.loads(line)
        d["labels"] = {k: (int(v[0]), int(v[1])) for k, v in d["labels"].items()}
        if d.get("spans") is not None:
            d["spans"] = [(int(s), int(e)) for s, e in d["spans"]]
        return cls(**d)


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise SourceError(
            f"missing file {path}. Point params.yaml ingest.source_dir at the folder holding the public "
            f"datasets (../shared/datasets on the project's machines), or disable this source in ingest.sources."
        )
    df = pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SourceError(f"{path} lacks columns {missing}; found {list(df.columns)}")
    return df


def _clean_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None


def exact(severity: int) -> SeverityRange:
    return (severity, severity)


UNKNOWN_POSITIVE: SeverityRange = (1, 3)
ABSENT: SeverityRange = (0, 0)
AT_MOST_MILD: SeverityRange = (0, 1)


# --- ViHSD ------------------------------------------------------------------

VIHSD_NAMES = {0: "CLEAN", 1: "OFFENSIVE", 2: "HATE"}


def map_vihsd(label_id: int) -> dict[str, SeverityRange]:
    """CLEAN: nothing beyond mild (ViTHSD re-labels about 12% of CLEAN rows as insulting someone,
    so only "at most mild" is claimed); OFFENSIVE: vulgar language, target unknown;
    HATE: targeted abuse of an individual or a group, so which category is unknown (native head only)."""
    if label_id == 0:
        return {"hate": AT_MOST_MILD, "harassment": AT_MOST_MILD, "profanity": AT_MOST_MILD}
    if label_id == 1:
        return {"profanity": UNKNOWN_POSITIVE}
    if label_id == 2:
        return {}
    raise SourceError(f"ViHSD label_id must be 0, 1 or 2, got {label_id!r}")


def read_vihsd(folder: Path) -> Iterator[Record]:
    for split, name in (("train", "train.csv"), ("dev", "dev.csv")):
        df = _read_csv(folder / "vihsd" / name, ["free_text", "label_id"])
        for i, row in enumerate(df.to_dict("records")):
            text = _clean_text(row["free_text"])
            if text is None:
                continue
            label = int(row["label_id"])
            yield Record(
                id=f"vihsd-{split}-{i:05d}",
                source="vihsd",
                split=split,
                text=text,
                labels=map_vihsd(label),
                native={"vihsd": label},
            )


# --- ViCTSD -----------------------------------------------------------------


def map_victsd(toxic: int) -> dict[str, SeverityRange]:
    """Non-toxic news comments carry no insult, hate or swearing beyond mild;
    a toxic one could be any of the three, so it stays unknown (native head only)."""
    if toxic == 0:
        return {"hate": AT_MOST_MILD, "harassment": AT_MOST_MILD, "profanity": AT_MOST_MILD}
    return {}


def read_victsd(folder: Path) -> Iterator[Record]:
    cols = ["Comment", "Constructiveness", "Toxicity", "Title", "Topic"]
    for split, name in (("train", "ViCTSD_train.csv"), ("dev", "ViCTSD_valid.csv")):
        df = _read_csv(folder / "victsd" / name, cols)
        for i, row in enumerate(df.to_dict("records")):
            text = _clean_text(row["Comment"])
            if text is None:
                continue
            toxic = int(row["Toxicity"])
            yield Record(
                id=f"victsd-{split}-{i:05d}",
                source="victsd",
                split=split,
                text=text,
                labels=map_victsd(toxic),
                native={"victsd_toxic": toxic, "victsd_constructive": int(row["Constructiveness"])},
                meta={"topic": str(row["Topic"])},
            )


# --- ViHOS ------------------------------------------------------------------


def index_list_to_spans(indices: list[int]) -> list[tuple[int, int]]:
    """[7, 8, 9, 12] -> [(7, 10), (12, 13)]: ViHOS lists character indices one by one."""
    spans: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def map_vihos(has_spans: bool) -> dict[str, SeverityRange]:
    """No span: nothing hateful or offensive beyond mild; spans: which category is unknown."""
    if has_spans:
        return {}
    return {"hate": AT_MOST_MILD, "harassment": AT_MOST_MILD, "profanity": AT_MOST_MILD}


def read_vihos(folder: Path) -> Iterator[Record]:
    for split, name in (("train", "train.csv"), ("dev", "dev.csv")):
        df = _read_csv(folder / "vihos" / name, ["content", "index_spans"])
        for i, row in enumerate(df.to_dict("records")):
            text = _clean_text(row["content"])
            if text is None or not isinstance(row["content"], str):
                continue
            lead = len(row["content"]) - len(row["content"].lstrip())
            indices = [int(x) - lead for x in ast.literal_eval(str(row["index_spans"]))]
            spans = [(s, e) for s, e in index_list_to_spans(indices) if 0 <= s < e <= len(text)]
            yield Record(
                id=f"vihos-{split}-{i:05d}",
                source="vihos",
                split=split,
                text=text,
                labels=map_vihos(bool(spans)),
                native={"vihos_has_span": int(bool(spans))},
                spans=spans,
            )


# --- ViTHSD -----------------------------------------------------------------

VITHSD_TARGETS = ("individual", "groups", "religion/creed", "race/ethnicity", "politics")


def map_vithsd(levels: dict[str, int]) -> dict[str, SeverityRange]:
    """Targets 0 not targeted, 1 clean, 2 offensive, 3 hate.

    individual -> harassment (2 offensive, 3 hate -> at least insult);
    religion, race -> hate (2 -> demeaning, 3 -> demeaning or worse);
    "groups" means any set of people (fans, a village, a company), not a protected group,
    and politics has no contract category: when only those are attacked, hate (and, for
    politics, harassment of a person) stays unknown.
    """
    individual, politics, groups = levels["individual"], levels["politics"], levels["groups"]
    protected = max(levels["religion/creed"], levels["race/ethnicity"])
    out: dict[str, SeverityRange] = {}
    if individual >= 2:
        out["harassment"] = (2, 2) if individual == 2 else (2, 3)
    elif politics < 2:
        out["harassment"] = AT_MOST_MILD
    if protected >= 2:
        out["hate"] = (2, 2) if protected == 2 else (2, 3)
    elif groups < 2 and politics < 2:
        out["hate"] = AT_MOST_MILD
    return out


def read_vithsd(folder: Path) -> Iterator[Record]:
    for split, name in (("train", "train.csv"), ("dev", "dev.csv")):
        df = _read_csv(folder / "vithsd" / name, ["content", *VITHSD_TARGETS])
        for i, row in enumerate(df.to_dict("records")):
            text = _clean_text(row["content"])
            if text is None:
                continue
            levels = {t: int(row[t]) for t in VITHSD_TARGETS}
            bad = {t: v for t, v in levels.items() if v not in (0, 1, 2, 3)}
            if bad:
                raise SourceError(f"ViTHSD {name} row {i}: target levels must be 0-3, got {bad}")
            yield Record(
                id=f"vithsd-{split}-{i:05d}",
                source="vithsd",
                split=split,
                text=text,
                labels=map_vithsd(levels),
                native={f"vithsd_{t.split('/')[0]}": v for t, v in levels.items()},
            )


# --- ViSpamReviews ----------------------------------------------------------


def map_vispam(spam_type: int) -> dict[str, SeverityRange]:
    """Fake and brand-only reviews are not fraud aimed at users: scam absent. "Irrelevant" spam
    (type 3) includes pasted loan offers and job lures, so scam stays unknown there."""
    return {} if spam_type == 3 else {"scam": ABSENT}


def read_vispam(folder: Path) -> Iterator[Record]:
    for split, name in (("train", "train.csv"), ("dev", "dev.csv")):
        df = _read_csv(folder / "vispamreviews" / name, ["Comment", "Label", "SpamLabel"])
        for i, row in enumerate(df.to_dict("records")):
            text = _clean_text(row["Comment"])
            if text is None:
                continue
            yield Record(
                id=f"vispam-{split}-{i:05d}",
                source="vispamreviews",
                split=split,
                text=text,
                labels=map_vispam(int(row["SpamLabel"])),
                native={"vispam": int(row["Label"]), "vispam_type": int(row["SpamLabel"])},
            )


# --- Smishing ---------------------------------------------------------------


def map_smishing(label: int) -> dict[str, SeverityRange]:
    """Smishing is phishing: at least a suspicious offer, mostly clear fraud."""
    return {"scam": (2, 3)} if label == 1 else {"scam": ABSENT}


def read_smishing(folder: Path, dev_fraction: float = 0.15, seed: int = 13) -> Iterator[Record]:
    """The mirror ships only a train file: a seeded, label-stratified dev split is cut from it."""
    df = _read_csv(
        folder / "smishing" / "train.csv", ["content", "label", "has_url", "has_phone_number", "sender_type"]
    )
    df = df[df["content"].map(lambda v: _clean_text(v) is not None)].reset_index(drop=True)
    dev_idx: set[int] = set()
    for _, group in df.groupby("label"):
        dev_idx.update(group.sample(frac=dev_fraction, random_state=seed).index.tolist())
    for i, row in enumerate(df.to_dict("records")):
        text = _clean_text(row["content"])
        assert text is not None
        label = int(row["label"])
        yield Record(
            id=f"smishing-{i:05d}",
            source="smishing",
            split="dev" if i in dev_idx else "train",
            text=text,
            labels=map_smishing(label),
            native={"smishing": label},
            meta={"sender_type": str(row["sender_type"])},
        )


# --- the project's own corpus and reviewed items ----------------------------


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(where, object, line number) for each non-empty line of a JSONL file; SourceError names a bad line."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(item, dict):
            raise SourceError(f"{where}: each line must be a JSON object")
        yield where, item, lineno


def read_labelled_jsonl(path: Path, source: str) -> Iterator[Record]:
    """Own corpus and reviewed items: every category annotated with an exact severity."""
    for where, item, lineno in jsonl_objects(path):
        text = _clean_text(item.get("text"))
        if text is None:
            raise SourceError(f"{where}: empty or missing text")
        raw = item.get("labels")
        if not isinstance(raw, dict):
            raise SourceError(f"{where}: 'labels' must be an object of category -> severity")
        try:
            sev = {c: check_severity(c, raw.get(c, 0)) for c in CATEGORIES}
            unknown = set(raw) - set(CATEGORIES)
            if unknown:
                raise ValueError(f"unknown categories {sorted(unknown)}")
        except ValueError as e:
            raise SourceError(f"{where}: {e}") from e
        meta = {k: v for k, v in item.items() if k not in ("id", "text", "labels", "split")}
        yield Record(
            id=str(item.get("id") or f"{source}-{path.stem}-{lineno}"),
            source=source,
            split=item.get("split"),
            text=text,
            labels={c: exact(s) for c, s in sev.items()},
            native={},
            meta=meta,
        )


def read_own(folder: Path) -> Iterator[Record]:
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SourceError(f"no *.jsonl files in the own-corpus folder {folder}")
    for path in files:
        yield from read_labelled_jsonl(path, "own")


def read_reviewed(folder: Path) -> Iterator[Record]:
    """Items reviewers decided in the console (exported by `vicas review export`); may be empty."""
    if not folder.exists():
        return
    for path in sorted(folder.glob("*.jsonl")):
        for rec in read_labelled_jsonl(path, "reviewed"):
            rec.split = "train"
            yield rec


PUBLIC_ADAPTERS: dict[str, Callable[[Path], Iterator[Record]]] = {
    "vihsd": read_vihsd,
    "victsd": read_victsd,
    "vihos": read_vihos,
    "vithsd": read_vithsd,
    "vispamreviews": read_vispam,
    "smishing": read_smishing,
}
