"""The conversation model on a tiny invented corpus: training, saving, loading, and what it reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tiny_model import CLASSROOM_SCRIPT as NEGATIVE
from tests.tiny_model import GROOMING_SCRIPT as GROOMING
from training.text.conversations import pick_threshold, split_of
from vicas.conversation import (
    FEATURES,
    STAGES,
    Conversation,
    ConversationError,
    ConversationModel,
    Message,
    window_features,
)


@pytest.fixture(scope="module")
def trained(tiny_conversations):
    return tiny_conversations["model"].parent, tiny_conversations["report"]


def test_training_separates_grooming_from_the_classroom(trained):
    root, report = trained
    assert report["test"]["harmful_flagged_rate"] == 1.0 and report["test"]["negative_flagged_rate"] == 0.0
    assert json.loads((root / "metrics.json").read_text())["threshold"] == report["threshold"]
    model = ConversationModel.load(root / "model")
    conv = Conversation(
        [Message(s, t) for s, t, _ in GROOMING], {"a": {"role": "child", "age": 11}, "b": {"role": "adult"}}
    )
    risk = model.assess(conv, prefixes=True)
    assert risk.flagged and risk.first_flag is not None and risk.first_flag < len(GROOMING)
    assert {e.sender for e in risk.evidence} == {"b"}, "evidence comes from the adult, never the child"
    assert "private_channel" in {e.stage for e in risk.evidence}
    calm = Conversation([Message(s, t) for s, t, _ in NEGATIVE], {"a": {"role": "child"}, "t": {"role": "teacher"}})
    assert not model.assess(calm).flagged


def test_a_tampered_tagger_is_refused(trained):
    root, _ = trained
    tagger = root / "model" / "stage_tagger.npz"
    original = tagger.read_bytes()
    try:
        tagger.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ConversationError, match="checksum"):
            ConversationModel.load(root / "model")
    finally:
        tagger.write_bytes(original)


def test_window_features_read_only_the_non_minors():
    conv = Conversation([Message("a", "x"), Message("b", "y")], {"a": {"age": 12}, "b": {"role": "adult"}})
    probs = np.array([[0.9] * len(STAGES), [0.1] * len(STAGES)], dtype=np.float32)
    feats = window_features(probs, conv)
    assert feats.shape == (len(FEATURES),) and feats[0] == pytest.approx(0.1)
    assert feats[FEATURES.index("minor_present")] == 1.0


def test_threshold_keeps_negatives_within_budget_and_splits_are_stable():
    risks = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.35])
    labels = np.array([0, 0, 0, 1, 1, 0])
    t = pick_threshold(risks, labels, 0.0)
    assert (risks[labels == 0] >= t).sum() == 0 and (risks[labels == 1] >= t).all()
    assert split_of("cv-gc-0001") == split_of("cv-gc-0001") and split_of("x") in ("train", "dev", "test")
