"""The API's request and response models: one place for the contract partners code against (OpenAPI
components take their names from these classes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.problems import Problem
from vicas.result import ClassificationResult
from vicas.taxonomy import Band


class ImageUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=300, description="a label for the image (file name, URL)")
    data: str = Field(min_length=1, description="the image file in base64, or a data:image/...;base64, URI")


class ConversationMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(min_length=1, max_length=100, description="a participant id")
    text: str = Field(min_length=1, description="what the sender wrote")
    time: datetime | None = Field(None, description="when it was sent (ISO 8601); order is the list's")


class ParticipantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    age: int | None = Field(None, ge=0, le=150, description="when known: a minor is the one protected")
    role: str | None = Field(None, max_length=30, description="child, teen, adult, parent, teacher, ...")


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="plain text to classify (a post, a caption)")
    conversation: list[ConversationMessageIn] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="a conversation, oldest message first: grooming and sextortion are read over the whole "
        "of it (the latest 60 messages), beside each message's own harms",
    )
    participants: dict[str, ParticipantIn] | None = Field(
        None,
        description="who the senders are: {'a': {'age': 12}, 'b': {}}; messages of minors are never "
        "read as grooming evidence",
    )
    html: str | None = Field(
        None, description="an HTML page: its visible text and its embedded (data: URI) images are classified"
    )
    images: list[ImageUpload] = Field(
        default_factory=list, description="images of the item (alone, beside a text, or a page's images)"
    )
    url: str | None = Field(None, max_length=4096, description="where the content was seen (never fetched)")
    audience_age: int | None = Field(None, ge=0, le=150, description="viewer age for the block decision")

    @model_validator(mode="after")
    def _some_content(self) -> ClassifyRequest:
        if self.conversation is not None:
            if self.text is not None or self.html is not None or self.images:
                raise ValueError("a 'conversation' comes alone, without 'text', 'html' or 'images'")
            unknown = {m.sender for m in self.conversation} - set(self.participants or {})
            if self.participants is not None and unknown:
                raise ValueError(f"senders {sorted(unknown)} are not in 'participants'")
            if any(not m.text.strip() for m in self.conversation):
                raise ValueError("a message of the conversation is empty")
            return self
        if self.participants is not None:
            raise ValueError("'participants' belong with a 'conversation'")
        if self.text is not None and self.html is not None:
            raise ValueError("give 'text' or 'html', not both")
        if self.text is None and self.html is None and not self.images:
            raise ValueError("give 'text', 'html', 'images' or 'conversation'")
        for content in (self.text, self.html):
            if content is not None and not content.strip():
                raise ValueError("the content is empty or only whitespace")
        return self


class ClassifyResponse(ClassificationResult):
    request_id: str


class LiveMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(min_length=1, max_length=100, description="a participant id")
    text: str = Field(min_length=1, description="the message")
    participants: dict[str, ParticipantIn] | None = Field(
        None, description="who the senders are; sent once (or whenever it changes), kept with the conversation"
    )


class LiveAnswer(ClassifyResponse):
    conversation_id: str
    messages: int = Field(description="messages in the conversation's window now")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ClassifyRequest] = Field(min_length=1)


class BatchItemError(BaseModel):
    """One batch item that could not be classified; the other items are answered as usual."""

    index: int
    error: Problem


class BatchResponse(BaseModel):
    request_id: str
    results: list[ClassifyResponse | BatchItemError] = Field(
        description="one entry per item, in order: a result, or an `error` (problem details) for that item"
    )


class VerdictResponse(BaseModel):
    url: str
    domain: str
    band: Band
    source: str = Field(description="'reviewed' (a reviewer decided) or 'model'")
    model_version: str | None
    policy_version: str | None
    updated_at: datetime = Field(description="ISO 8601, UTC, with its offset")


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: int | None = Field(None, ge=1, description="the stored item (from a flagged classification)")
    url: str | None = Field(None, max_length=4096, description="or the URL whose verdict is appealed")
    reason: str = Field(min_length=1, max_length=5000)


class AppealResponse(BaseModel):
    id: int
    item_id: int | None
    url: str | None
    status: str = Field(description="open | upheld | overturned")
    decided_band: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None


class BlocklistEntry(BaseModel):
    host: str = Field(description="the host to block by name (empty when the URL has none usable)")
    url: str
    band: Band
    updated_at: datetime


class BlocklistChanges(BaseModel):
    version: datetime = Field(description="send it as `since` next time")
    min_band: Band
    block: list[BlocklistEntry]
    unblock: list[BlocklistEntry]


class UsageDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD, UTC")
    requests: int
    items: int


class UsageResponse(BaseModel):
    partner: str
    days: list[UsageDay]
