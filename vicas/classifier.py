"""Classify content items (text, page, images) synchronously: the CLI's and bulk scoring's entry point.

The API runs the same steps asynchronously (images in a worker thread, texts
through its micro-batcher) with the same `vicas.combine` functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vicas.combine import ImageReading, ItemPrediction, combine_predictions, texts_for
from vicas.conversation import Conversation, ConversationModel, Message, apply_risk, conversation_document
from vicas.engine import TextEngine
from vicas.hashes import (
    HashIndex,
    HashMatch,
    MatchSettings,
    apply_matches,
    file_digests,
    match_images,
    unmatched_readings,
)
from vicas.image_reader import ImageReader, NamedImage
from vicas.images import ImageError, ImageLimits, decode_base64, open_image, read_image_bytes
from vicas.page import page_images, visible_text
from vicas.result import ConversationResult


class InputLineError(ValueError):
    def __init__(self, message: str, item_id: object = None) -> None:
        super().__init__(message)
        self.item_id = item_id


@dataclass
class InputItem:
    id: object
    text: str | None
    html: str | None
    image_paths: list[str]
    age: int | None
    conversation: Conversation | None = None


def parse_item(item: object) -> InputItem:
    """One input record (a JSONL line or a Parquet row) -> an item; InputLineError says what is wrong.

    Keys: `id`, and at least one of `text`, `html` (not both), `image` (a path) or `images` (paths);
    optional `audience_age`; or a `conversation` ([{sender, text}, ...], oldest first) with optional
    `participants` ({sender: {age, role}}), alone. Empty values (None) count as absent, as Parquet columns
    give them.
    """
    if not isinstance(item, dict):
        raise InputLineError("each line must be a JSON object")
    item = {k: v for k, v in item.items() if v is not None}
    item_id = item.get("id")
    known = {"id", "text", "html", "image", "images", "audience_age", "conversation", "participants"}
    unknown = sorted(set(item) - known)
    if unknown:
        raise InputLineError(f"unknown keys {unknown}", item_id)
    if "conversation" in item or "participants" in item:
        return InputItem(item_id, None, None, [], None, _conversation(item, item_id))
    text, html = item.get("text"), item.get("html")
    if text is not None and html is not None:
        raise InputLineError("give 'text' or 'html', not both", item_id)
    for key, value in (("text", text), ("html", html)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InputLineError(f"'{key}' must be a non-empty string", item_id)
    paths = item.get("images", [])
    if "image" in item:
        paths = [item["image"], *paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise InputLineError("'image' must be a file path and 'images' a list of file paths", item_id)
    if text is None and html is None and not paths:
        raise InputLineError("give 'text', 'html' or 'image'", item_id)
    age = item.get("audience_age")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 150):
        raise InputLineError("'audience_age' must be an integer 0-150", item_id)
    return InputItem(item_id, text, html, paths, age)


def _conversation(item: dict[str, object], item_id: object) -> Conversation:
    if set(item) - {"id", "conversation", "participants"}:
        raise InputLineError("a 'conversation' comes alone (with 'participants'), not with text or images", item_id)
    messages, people = item.get("conversation"), item.get("participants", {})
    if not isinstance(messages, list) or not messages:
        raise InputLineError("'conversation' must be a non-empty list of {sender, text}", item_id)
    if not isinstance(people, dict) or not all(isinstance(p, dict) for p in people.values()):
        raise InputLineError("'participants' must map each sender to {age, role}", item_id)
    out = []
    for n, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("sender"), str) or not isinstance(m.get("text"), str):
            raise InputLineError(f"conversation message {n} must be {{sender, text}}", item_id)
        if not m["text"].strip():
            raise InputLineError(f"conversation message {n} is empty", item_id)
        if people and m["sender"] not in people:
            raise InputLineError(f"sender {m['sender']!r} of message {n} is not in 'participants'", item_id)
        out.append(Message(m["sender"], m["text"]))
    return Conversation(out, {str(k): dict(v) for k, v in people.items()})


@dataclass
class ContentItem:
    text: str | None = None
    html: str | None = None
    images: list[NamedImage] = field(default_factory=list)


def page_parts(html: str, limits: ImageLimits) -> tuple[str, list[NamedImage]]:
    """A page's visible text and its embedded (data: URI) images; linked images are not fetched."""
    images = []
    for i, img in enumerate(p for p in page_images(html) if p.embedded):
        name = img.label(i)
        data = decode_base64(img.src, name)
        images.append(NamedImage(name, open_image(data, limits, name), file_digests(data)))
    return visible_text(html), images


def read_image_files(paths: list[str], limits: ImageLimits) -> list[NamedImage]:
    """Image files named by an input line, with their files' digests for exact hash-list matches."""
    out = []
    for p in paths:
        data = read_image_bytes(p, limits)
        out.append(NamedImage(p, open_image(data, limits, p), file_digests(data)))
    return out


def resolve_item(
    item: ContentItem, limits: ImageLimits, max_images: int, can_read_images: bool
) -> tuple[str | None, list[NamedImage]]:
    """The item's text and all its images (uploaded + embedded in its page), limits checked.

    Raises ImageError (with an HTTP status) for anything that cannot be classified as sent.
    """
    text, images = item.text, list(item.images)
    if item.html is not None:
        page_text, embedded = page_parts(item.html, limits)
        text = " ".join(t for t in (text, page_text) if t) or None
        images += embedded
    if images and not can_read_images:
        raise ImageError("this installation has no image reader (OCR or image model); send text only")
    if len(images) > max_images:
        raise ImageError(f"{len(images)} images in one item; the limit is {max_images}", status=413)
    if not (text and text.strip()) and not images:
        raise ImageError("the item has no visible text and no image to classify")
    return text, images


class ContentClassifier:
    def __init__(
        self,
        text: TextEngine,
        images: ImageReader | None = None,
        limits: ImageLimits | None = None,
        max_images: int = 16,
        conversations: ConversationModel | None = None,
        hash_index: HashIndex | None = None,
        match_settings: MatchSettings | None = None,
    ) -> None:
        self.text, self.images, self.conversations = text, images, conversations
        self.limits = limits or ImageLimits()
        self.max_images = max_images
        self.hash_index = hash_index  # lists of known abuse material (`vicas hashes import`); None: not matched
        self.match_settings = match_settings or MatchSettings()

    def read_conversation(
        self, pred: ItemPrediction, conv: Conversation, item_id: object = None
    ) -> tuple[ItemPrediction, ConversationResult]:
        """The grooming reading of a conversation folded into its prediction (see vicas.conversation)."""
        if self.conversations is None:
            raise InputLineError(
                "conversations need the conversation model: run `dvc repro train_conversations` or pass "
                "--conversation-model",
                item_id,
            )
        _, spans = conversation_document(conv)
        return apply_risk(pred, self.conversations.assess(conv), spans, self.conversations.version)

    def version_for(self, item_has_images: bool) -> str:
        if item_has_images and self.images is not None:
            return f"{self.text.version}+{self.images.version}"
        return self.text.version

    def resolve(self, item: ContentItem) -> tuple[str | None, list[NamedImage]]:
        return resolve_item(item, self.limits, self.max_images, self.images is not None)

    def match(self, images: list[NamedImage]) -> list[HashMatch]:
        """The item's images found in the hash lists, matched before any model reads them."""
        if self.hash_index is None:
            return []
        pictures, digests = [n.image for n in images], [n.digests for n in images]
        return match_images(self.hash_index, pictures, digests, self.match_settings)[1]

    def read_images(self, images: list[NamedImage], matches: list[HashMatch]) -> list[ImageReading]:
        """The image models' readings; a matched image is not read by any of them (see `unmatched_readings`)."""
        if not images or self.images is None:
            return []
        return unmatched_readings(self.images.read, images, [n.image.size for n in images], matches)

    def predict_matched(
        self, items: list[tuple[str | None, list[NamedImage]]], batch_size: int = 32
    ) -> list[tuple[ItemPrediction, list[HashMatch]]]:
        """Resolved items -> combined predictions with their hash-list matches; the text model reads all texts
        and OCR texts in one batch."""
        matches = [self.match(imgs) for _, imgs in items]
        readings = [self.read_images(imgs, m) for (_, imgs), m in zip(items, matches, strict=True)]
        jobs = [texts_for(text, r) for (text, _), r in zip(items, readings, strict=True)]
        flat = [t for job in jobs for t in job]
        preds = self.text.classify(flat, batch_size) if flat else []
        out, pos = [], 0
        for (text, _), r, job, m in zip(items, readings, jobs, matches, strict=True):
            out.append((apply_matches(combine_predictions(text, r, preds[pos : pos + len(job)]), m), m))
            pos += len(job)
        return out

    def predict(self, items: list[tuple[str | None, list[NamedImage]]], batch_size: int = 32) -> list[ItemPrediction]:
        return [pred for pred, _ in self.predict_matched(items, batch_size)]
