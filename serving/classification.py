"""What a classification goes through, beside the routes that receive it: decode, match against the hash
lists, read images, score, fold in the conversation model, then flag for review and record the verdict.

The routes (serving/routes/classify.py, serving/routes/conversations.py) parse and answer; this module does
the work, with the app's services handed over as one `Classifier` per request (serving/deps.py builds it).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from serving import problems
from serving.batcher import MicroBatcher, QueueFull, content_hash
from serving.config import Settings
from serving.hashes import HashLists, MatchLog, MatchRecord
from serving.keys import Partner, count_usage
from serving.metrics import NO_PARTNER, Metrics
from serving.problems import ApiError, Problem
from serving.review.images import item_thumbnails
from serving.review.service import seal
from serving.review.spans import whole_words
from serving.schemas import BatchItemError, ClassifyRequest, ClassifyResponse, ConversationMessageIn
from serving.store import FlaggedItem, FlagStore, domain_of, record_verdict, stored_url
from vicas.classifier import ContentItem, resolve_item
from vicas.combine import ImageReading, ItemPrediction, combine_predictions, texts_for
from vicas.conversation import (
    Conversation,
    ConversationModel,
    ConversationRisk,
    apply_risk,
    conversation_document,
)
from vicas.conversation import Message as ChatMessage
from vicas.hashes import (
    HashMatch,
    ImageHashes,
    MatchSettings,
    apply_matches,
    file_digests,
    match_images,
    unmatched_readings,
)
from vicas.image_reader import ImageReader, NamedImage
from vicas.images import ImageError, ImageLimits, PixelBudget, decode_base64, image_size, open_image
from vicas.inference import Evidence
from vicas.page import page_images
from vicas.policy import Policy
from vicas.redact import redact
from vicas.result import ClassificationResult, ConversationResult, HashMatchResult, build_result
from vicas.taxonomy import Band

log = logging.getLogger("vicas.api")  # the API's log, wherever its code lives


@dataclass
class Resolved:
    """One request item with its text and decoded images."""

    request: ClassifyRequest
    text: str | None
    images: list[NamedImage]
    conversation: Conversation | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)  # each message's text in `text`
    hashes: list[ImageHashes] = field(default_factory=list)  # per image, when hash lists are loaded
    matches: list[HashMatch] = field(default_factory=list)  # images found in a hash list: never read

    def content_hash(self) -> str:
        parts = [self.text or ""] + [hashlib.sha256(n.image.tobytes()).hexdigest() for n in self.images]
        return content_hash("\x00".join(parts))


def open_upload(data: bytes, limits: ImageLimits, name: str) -> NamedImage:
    """A multipart file, decoded, with the MD5 and SHA-256 of its bytes (the bytes are not kept)."""
    return NamedImage(name, open_image(data, limits, name), file_digests(data))


def read_unmatched(reader: ImageReader | None, item: Resolved) -> list[ImageReading]:
    """The image models' readings of an item's images, in order. An image found in a hash list is not read
    (no OCR, no visual model, no nudity detector): it stands as its size and a neutral name."""
    if not item.images or reader is None:
        return []
    return unmatched_readings(reader.read, item.images, [n.image.size for n in item.images], item.matches)


def thread_item(
    conv: Conversation,
    risk: ConversationRisk,
    pred: ItemPrediction,
    partner: Partner | None,
    policy: Policy,
    version: str,
    conversation_version: str,
    secret: str | None,
) -> FlaggedItem:
    """A live conversation that crossed the threshold, as the review store keeps it: the thread as one text,
    the evidence messages marked, personal data masked."""
    document, spans = conversation_document(conv)
    request = ClassifyRequest(conversation=[ConversationMessageIn(sender=m.sender, text=m.text) for m in conv.messages])
    thread = Resolved(request, document, [], conv, spans)
    doc_pred, _ = apply_risk(
        ItemPrediction(dict(pred.severities), dict(pred.scores), []), risk, spans, conversation_version
    )
    doc_res = build_result(doc_pred, policy, version)
    return _flagged_item(f"live:{uuid.uuid4().hex}", thread, content_hash(document), partner, doc_pred, doc_res, secret)


def review_document(text: str | None, pred: ItemPrediction) -> tuple[str, dict[str, int]]:
    """What a reviewer reads for an item: its text, then per image a header, its findings and its OCR text.

    Images themselves are kept only as sealed thumbnails, and never one found in a hash list (they may be
    abuse material: serving/review/images.py); returns the document and, per evidence source, the offset at
    which that source's text starts in it.
    """
    doc, offsets = text or "", {"text": 0}
    for part in pred.images:
        found = ", ".join(f"{c} {v} ({'+'.join(part.sources.get(c, []))})" for c, v in part.severities.items() if v)
        header = f"[ảnh {part.index + 1}: {part.reading.name}; {found or 'không phát hiện'}]"
        doc += ("\n\n" if doc else "") + header + "\n"
        offsets[f"image:{part.index}:ocr"] = len(doc)
        doc += part.reading.ocr_text
    return doc, offsets


def _flagged_item(
    key: str,
    item: Resolved,
    digest: str,
    partner: Partner | None,
    pred: ItemPrediction,
    res: ClassificationResult,
    secret: str | None,
) -> FlaggedItem:
    """What the review store keeps: personal data masked (evidence offsets moved onto the masked text, on
    whole words: a model token can end mid-word), the original sealed with the secret key for roles allowed
    to reveal it, and per image not found in a hash list a sealed thumbnail with its evidence boxes."""
    doc, offsets = review_document(item.text, pred)
    placed = [
        (e, *whole_words(doc, offsets[e.source] + e.start, offsets[e.source] + e.end))
        for e in res.evidence
        if e.start is not None and e.end is not None and e.source in offsets
    ]
    red = redact(doc, [Evidence(e.category, s, t, "", e.score) for e, s, t in placed], {"personal_data"})
    evidence = []
    for e, s0, t0 in placed:
        s, t = red.map_span(s0, t0)
        evidence.append({**e.model_dump(), "start": s, "end": t, "text": red.text[s:t]})
    evidence += [{**e.model_dump(), "text": e.text} for e in res.evidence if e.start is None]
    url = stored_url(item.request.url)  # no query string: a child's phone number travels there
    parts = {p.index: p for p in pred.images}
    thumbnails = functools.partial(  # made by FlagStore.save in its worker thread, off the event loop
        item_thumbnails,
        [n.image for n in item.images],
        [
            (parts[k].reading.width, parts[k].reading.height) if k in parts else n.image.size
            for k, n in enumerate(item.images)
        ],
        res.evidence,
        [m.image for m in item.matches],  # known abuse material: never kept in any form
        [parts[k].severities if k in parts else {} for k in range(len(item.images))],
        {c: v.severity for c, v in res.categories.items()},
        secret,
    )
    return FlaggedItem(
        item_key=key,
        content_hash=digest,
        partner=partner.name if partner else None,
        url=url,
        domain=domain_of(url),
        band=res.band.value,
        categories={c: v.model_dump() for c, v in res.categories.items()},
        evidence=evidence,
        text=red.text,
        model_version=res.model_version,
        policy_version=res.policy_version,
        created_at=datetime.now(UTC).isoformat(),
        private=seal(doc, secret) if red.replaced else None,
        needs_review=res.needs_review,
        under_rating_risk=res.under_rating_risk,
        decision={
            "band": res.band.value,
            "actions": list(res.actions),
            "reasons": [r.model_dump(mode="json") for r in res.reasons],
            "policy_version": res.policy_version,
            "needs_review": res.needs_review,
        },
        make_images=thumbnails if item.images else None,
    )


NO_CONVERSATION_MODEL = "conversations need the conversation model: run `dvc repro train_conversations`"


def load_conversation_model(folder: Path | None) -> ConversationModel | None:
    if folder is None or not (folder / "conversation.json").exists():
        log.warning("no conversation model in %s: conversations are refused (dvc repro train_conversations)", folder)
        return None
    return ConversationModel.load(folder)  # a damaged model stops the start


def read_conversation(
    item: Resolved, pred: ItemPrediction, model: ConversationModel | None
) -> tuple[ItemPrediction, ConversationResult]:
    """The grooming reading of a conversation item, folded into its prediction."""
    if model is None or item.conversation is None:
        raise ImageError(NO_CONVERSATION_MODEL, 422)
    risk = model.assess(item.conversation)
    return apply_risk(pred, risk, item.spans, model.version)


def _safe_verdict(db: Any, *args: Any) -> None:
    try:
        record_verdict(db, *args)
    except Exception as e:
        log.warning("verdict not recorded: %s", e.__class__.__name__)


def _safe_usage(db: Any, partner_id: int, items: int) -> None:
    try:
        count_usage(db, partner_id, items)
    except Exception as e:
        log.warning("usage not counted: %s", e.__class__.__name__)


@dataclass(frozen=True)
class Classifier:
    """The services one classification request uses, taken from the app's state when the request comes: the
    batcher swaps its engine in place, so a request holds no model of its own."""

    settings: Settings
    policy: Policy
    metrics: Metrics
    db: Engine
    store: FlagStore
    match_log: MatchLog
    hash_lists: HashLists
    match_settings: MatchSettings
    batcher: MicroBatcher
    reader: ImageReader | None
    conversations: ConversationModel | None

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(self.settings.max_image_bytes, self.settings.max_image_pixels)

    def resolve(self, it: ClassifyRequest, uploads: list[NamedImage], budget: PixelBudget) -> Resolved:
        """Decode images and pages (CPU work: runs in a worker thread); ImageError for what cannot be read.

        Images are counted, and their pixels added to the request's budget from their headers, before any
        is decoded: a few small files that decode to gigabytes are refused without being decoded.
        """
        settings, limits, reader = self.settings, self.limits, self.reader
        if it.conversation is not None:
            conv = Conversation(
                [ChatMessage(m.sender, m.text) for m in it.conversation],
                {k: p.model_dump(exclude_none=True) for k, p in (it.participants or {}).items()},
            )
            document, spans = conversation_document(conv)
            if len(document) > settings.max_text_chars:
                raise ImageError(
                    f"the conversation has {len(document)} characters; the limit is {settings.max_text_chars}", 413
                )
            return Resolved(it, document, [], conv, spans)
        embedded = [p for p in page_images(it.html) if p.embedded] if it.html is not None else []
        count = len(uploads) + len(it.images) + len(embedded)
        if count > settings.max_images_per_item:
            raise ImageError(f"{count} images in one item; the limit is {settings.max_images_per_item}", status=413)
        raw = []
        for i, up in enumerate(it.images):
            name = up.name or f"image {i}"
            data = decode_base64(up.data, name)
            w, h = image_size(data, limits, name)
            budget.take(w * h, name)
            raw.append((name, data))
        for i, p in enumerate(embedded):  # counted from their headers here; decoded by resolve_item (page_parts)
            name = p.label(i)
            w, h = image_size(decode_base64(p.src, name), limits, name)
            budget.take(w * h, name)
        images = list(uploads)
        images += [NamedImage(name, open_image(data, limits, name), file_digests(data)) for name, data in raw]
        text, images = resolve_item(
            ContentItem(it.text, it.html, images), limits, settings.max_images_per_item, reader is not None
        )
        if text is not None and len(text) > settings.max_text_chars:
            raise ImageError(f"an item has {len(text)} characters; the limit is {settings.max_text_chars}", 413)
        # matched before any model reads an image; one index snapshot for the whole item (a reload swaps it)
        pictures, digests = [n.image for n in images], [n.digests for n in images]
        hashes, matches = match_images(self.hash_lists.index, pictures, digests, self.match_settings)
        return Resolved(it, text, images, hashes=hashes, matches=matches)

    async def classify_items(
        self,
        items: list[ClassifyRequest],
        partner: Partner | None,
        request_id: str,
        uploads: list[NamedImage] | None = None,
    ) -> list[ClassifyResponse | BatchItemError]:
        """Classify items together; an item that cannot be read gets its own error, the others go on."""
        settings, metrics, batcher, reader = self.settings, self.metrics, self.batcher, self.reader
        resolved: list[tuple[int, Resolved]] = []
        answers: list[ClassifyResponse | BatchItemError | None] = [None] * len(items)
        budget = PixelBudget(settings.max_request_pixels)
        try:
            for up in uploads or []:  # multipart files were decoded one by one under the per-image limits
                budget.take(up.image.width * up.image.height, up.name)
        except ImageError as e:
            raise ApiError(e.status, str(e), problems.CODES.get(e.status, "invalid_input")) from e
        for n, it in enumerate(items):
            try:
                if it.conversation is not None and self.conversations is None:
                    raise ImageError(NO_CONVERSATION_MODEL, 422)
                resolved.append((n, await asyncio.to_thread(self.resolve, it, uploads or [], budget)))
            except ImageError as e:
                answers[n] = BatchItemError(
                    index=n,
                    error=Problem(**problems.problem_body(e.status, str(e), request_id=request_id)),
                )
        readings = [await asyncio.to_thread(read_unmatched, reader, r) for _, r in resolved]
        jobs = [texts_for(r.text, rd) for (_, r), rd in zip(resolved, readings, strict=True)]
        flat = [t for job in jobs for t in job]
        try:
            preds = await batcher.classify(flat) if flat else []
        except QueueFull as e:
            raise ApiError(503, f"the service is busy ({e}); retry shortly", "queue_full", {"Retry-After": "2"}) from e
        version = batcher.version
        calibration = batcher.engine.calibration  # band calibration and review threshold of the served model
        store_key = uuid.uuid4().hex  # item keys are ours: a partner may reuse its request ids
        flagged, pos = [], 0
        matched: list[MatchRecord] = []
        for (i, r), rd, job in zip(resolved, readings, jobs, strict=True):
            pred = apply_matches(combine_predictions(r.text, rd, preds[pos : pos + len(job)]), r.matches)
            pos += len(job)
            item_version = f"{version}+{reader.version}" if r.images and reader else version
            reading = None
            if r.conversation is not None:
                pred, reading = await asyncio.to_thread(read_conversation, r, pred, self.conversations)
                item_version = f"{version}+{reading.model_version}"
            res = build_result(pred, self.policy, item_version, r.request.audience_age, calibration)
            res.conversation = reading
            res.hash_matches = [HashMatchResult(**vars(m)) for m in r.matches]
            answers[i] = ClassifyResponse(request_id=request_id, **res.model_dump())
            metrics.bands.labels(res.band.value).inc()
            metrics.images.inc(len(r.images))
            digest = r.content_hash()
            if res.band >= settings.flag_band or res.band is Band.C or res.needs_review:
                flagged.append(_flagged_item(f"{store_key}:{i}", r, digest, partner, pred, res, settings.secret_key))
            for m in r.matches:  # band C: always flagged. What is logged names the list, never the image
                log.warning(
                    "item %s:%d image %d is in hash list %s (version %s, %s distance %d): blocked and reported",
                    store_key,
                    i,
                    m.image,
                    m.list_name,
                    m.list_version,
                    m.hash_type,
                    m.distance,
                )
                partner_name = partner.name if partner else None
                matched.append(MatchRecord.of(f"{store_key}:{i}", m, r.hashes[m.image], partner_name))
            if r.request.url:
                await asyncio.to_thread(
                    _safe_verdict,
                    self.db,
                    r.request.url,
                    res.band.value,
                    "model",
                    digest,
                    item_version,
                    res.policy_version,
                )
        metrics.items.labels(partner.name if partner else NO_PARTNER).inc(len(resolved))
        if flagged:
            outcome = await asyncio.to_thread(self.store.save, flagged)
            metrics.flagged.labels(outcome).inc(len(flagged))
        if matched:  # beside its flagged item; spooled like it while the database is unreachable
            await asyncio.to_thread(self.match_log.save, matched)
        if partner is not None:
            await asyncio.to_thread(_safe_usage, self.db, partner.id, len(resolved))
        return [a for a in answers if a is not None]
