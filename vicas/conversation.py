"""Grooming and sextortion are patterns over a conversation: a stage tagger per message, a head over the window.

Each message is scored for the six grooming stages (data/own/briefs/conversations.md) by a character
n-gram model (`vicas.ngrams`, trained by `training.text.conversations`); the conversation's risk is a logistic
head over what the stages show across the messages of the participants who are not the child: the
strongest evidence per stage, how much of it there is, how many stages are reached, and whether a minor is
in the conversation at all. Numpy only, so serving needs neither torch nor scikit-learn; training and serving
share `window_features`, so they cannot disagree on what the head reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vicas.combine import ItemPrediction, SourcedEvidence
from vicas.ngrams import NgramModel
from vicas.normalize import normalize_text
from vicas.result import ConversationResult, StageEvidenceResult

STAGES = (
    "trust_age_probing",
    "isolation_secrecy",
    "private_channel",
    "sexual_request",
    "meeting_request",
    "threat_sextortion",
)
MINOR_ROLES = frozenset({"child", "teen"})
MAX_MESSAGES = 60  # the window: the latest messages of a longer conversation
TAGGER_FILE = "stage_tagger.npz"
HEAD_FILE = "conversation.json"


class ConversationError(ValueError):
    """A conversation that cannot be read (no messages, a sender who is not a participant...)."""


@dataclass(frozen=True)
class Message:
    sender: str
    text: str


@dataclass
class Conversation:
    messages: list[Message]
    participants: dict[str, dict[str, object]] = field(default_factory=dict)

    def minors(self) -> set[str]:
        """Participants known to be under 18, by age or by role."""
        out = set()
        for pid, p in self.participants.items():
            age = p.get("age")
            if (isinstance(age, int | float) and age < 18) or p.get("role") in MINOR_ROLES:
                out.add(pid)
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30, 30))), dtype=np.float32)


FEATURES = (
    *(f"max:{s}" for s in STAGES),
    *(f"top3:{s}" for s in STAGES),
    *(f"share:{s}" for s in STAGES),
    "stages_reached",
    "minor_present",
    "messages",
)


def window_features(stage_probs: np.ndarray, conv: Conversation) -> np.ndarray:
    """What the head reads of a window: per stage the strongest message, the mean of the three strongest and
    the share of messages over 0.5, among messages of participants who are not a known minor (all messages
    when no minor is known); then the number of stages over 0.5, a minor present, and the length."""
    minors = conv.minors()
    keep = np.array([m.sender not in minors for m in conv.messages], dtype=bool)
    probs = stage_probs[keep] if keep.any() and minors else stage_probs
    if len(probs) == 0:
        probs = np.zeros((1, len(STAGES)), dtype=np.float32)
    top = np.sort(probs, axis=0)[::-1][:3]
    strongest = probs.max(axis=0)
    return np.concatenate(
        [
            strongest,
            top.mean(axis=0),
            (probs >= 0.5).mean(axis=0),
            [float((strongest >= 0.5).sum()) / len(STAGES), float(bool(minors)), min(len(conv.messages), 30) / 30.0],
        ]
    ).astype(np.float32)


@dataclass(frozen=True)
class StageEvidence:
    stage: str
    message: int
    sender: str
    score: float


@dataclass
class ConversationRisk:
    risk: float
    threshold: float
    stage_scores: dict[str, float]
    evidence: list[StageEvidence]
    first_flag: int | None = None  # the first message after which the risk crossed the threshold

    @property
    def flagged(self) -> bool:
        return self.risk >= self.threshold


@dataclass
class ConversationModel:
    tagger: NgramModel  # one output per stage
    coef: np.ndarray  # (len(FEATURES),)
    intercept: float
    threshold: float
    version: str = ""
    evidence_min: float = 0.5

    def stage_probs(self, texts: list[str]) -> np.ndarray:
        """(M, stages) probability that each message shows each stage."""
        if not texts:
            return np.zeros((0, len(STAGES)), dtype=np.float32)
        return _sigmoid(self.tagger.scores([normalize_text(t) for t in texts]))

    def head(self, features: np.ndarray) -> float:
        return float(_sigmoid(np.array(features @ self.coef + self.intercept)))

    def assess(self, conv: Conversation, probs: np.ndarray | None = None, prefixes: bool = False) -> ConversationRisk:
        """The conversation's risk, its stages with the messages that show them, and (with `prefixes`) the
        first message after which a reader of the conversation so far would have flagged it."""
        if not conv.messages:
            raise ConversationError("a conversation needs at least one message")
        window = Conversation(conv.messages[-MAX_MESSAGES:], conv.participants)
        offset = len(conv.messages) - len(window.messages)
        probs = self.stage_probs([m.text for m in window.messages]) if probs is None else probs[-MAX_MESSAGES:]
        risk = self.head(window_features(probs, window))
        minors = window.minors()
        evidence = [
            StageEvidence(stage, offset + i, window.messages[i].sender, round(float(probs[i, s]), 4))
            for s, stage in enumerate(STAGES)
            for i in np.argsort(-probs[:, s])[:3]
            if probs[i, s] >= self.evidence_min and window.messages[i].sender not in minors
        ]
        first = None
        if prefixes:
            for end in range(1, len(window.messages) + 1):
                part = Conversation(window.messages[:end], conv.participants)
                if self.head(window_features(probs[:end], part)) >= self.threshold:
                    first = offset + end - 1
                    break
        stage_scores = {stage: round(float(probs[:, s].max()), 4) for s, stage in enumerate(STAGES)}
        return ConversationRisk(round(risk, 4), self.threshold, stage_scores, evidence, first)

    def save(self, folder: Path, extra: dict[str, object] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.tagger.save(folder / TAGGER_FILE)
        digest = hashlib.sha256((folder / TAGGER_FILE).read_bytes()).hexdigest()
        head = {
            "stages": list(STAGES),
            "features": list(FEATURES),
            "coef": [round(float(c), 6) for c in self.coef],
            "intercept": round(self.intercept, 6),
            "threshold": round(self.threshold, 6),
            "evidence_min": self.evidence_min,
            "tagger_sha256": digest,
            "version": self.version or f"vicas-conversation@{digest[:12]}",
            **(extra or {}),
        }
        (folder / HEAD_FILE).write_text(json.dumps(head, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ConversationModel:
        try:
            head = json.loads((folder / HEAD_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConversationError(f"no {HEAD_FILE} in {folder}: run `dvc repro train_conversations`") from e
        if tuple(head.get("stages", ())) != STAGES or tuple(head.get("features", ())) != FEATURES:
            raise ConversationError(f"{folder}: the model's stages or features differ from this code's")
        tagger_path = folder / TAGGER_FILE
        if hashlib.sha256(tagger_path.read_bytes()).hexdigest() != head["tagger_sha256"]:
            raise ConversationError(f"{folder}: {TAGGER_FILE} does not match its checksum")
        return cls(
            NgramModel.load(tagger_path),
            np.array(head["coef"], dtype=np.float32),
            float(head["intercept"]),
            float(head["threshold"]),
            str(head["version"]),
            float(head.get("evidence_min", 0.5)),
        )


def conversation_document(conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The conversation as one text for the text model and the reviewer, a line per message (`sender: text`),
    and where each message's text lies in it."""
    parts, spans, pos = [], [], 0
    for m in conv.messages:
        line = f"{m.sender}: {' '.join(m.text.split())}"
        start = pos + len(m.sender) + 2
        spans.append((start, start + len(line) - len(m.sender) - 2))
        parts.append(line)
        pos += len(line) + 1
    return "\n".join(parts), spans


def apply_risk(
    item: ItemPrediction, risk: ConversationRisk, spans: list[tuple[int, int]], version: str
) -> tuple[ItemPrediction, ConversationResult]:
    """The item's reading with the conversation's: a flagged conversation is `child_sexual` 3 (band C,
    report, the hotline for the child), its evidence the messages that show each stage."""
    evidence = [
        StageEvidenceResult(
            stage=e.stage,
            message=e.message,
            sender=e.sender,
            score=e.score,
            start=spans[e.message][0] if e.message < len(spans) else None,
            end=spans[e.message][1] if e.message < len(spans) else None,
        )
        for e in risk.evidence
    ]
    result = ConversationResult(
        risk=risk.risk,
        threshold=risk.threshold,
        flagged=risk.flagged,
        stages=risk.stage_scores,
        evidence=evidence,
        model_version=version,
    )
    if not risk.flagged:
        return item, result
    severities = {**item.severities, "child_sexual": 3}
    scores = {**item.scores, "child_sexual": max(item.scores.get("child_sexual", 0.0), risk.risk)}
    seen: set[int] = set()
    sourced = list(item.evidence)
    for e in evidence:
        if e.start is not None and e.message not in seen:
            seen.add(e.message)
            sourced.append(SourcedEvidence("child_sexual", "text", e.score, e.start, e.end))
    return replace(item, severities=severities, scores=scores, evidence=sourced), result
