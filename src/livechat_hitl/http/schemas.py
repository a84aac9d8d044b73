"""Bot API v1 wire models (CONTRACT §3) and their translation to domain records."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
)

from livechat_hitl.domain.models import (
    EndUser,
    Handoff,
    Message,
    MessageType,
    TranscriptLine,
)
from livechat_hitl.livechat.wire import format_timestamp
from livechat_hitl.services.handoffs import OutgoingMessage, StartRequest

MAX_METADATA_BYTES = 4096
MAX_TEXT_CHARS = 100_000  # longer texts are split under LiveChat's 16 KB per event
MAX_TRANSCRIPT_LINES = 1000
MAX_TRANSCRIPT_CHARS = 200_000

Scalar = str | int | float | bool | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class UserIn(_In):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str | None, Field(max_length=200)] = None
    # ASCII classes: `\s` means different things to pydantic's and to JSON Schema's regexes
    email: Annotated[
        str | None, Field(max_length=320, pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$")
    ] = None
    avatar_url: HttpUrl | None = None


def _date_time_text(value: object) -> object:
    # JSON Schema's date-time is a string; pydantic alone would also take numbers.
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


DateTimeText = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


def _json_integer(value: object) -> object:
    # JSON Schema's integer: 3 and 3.0, never "3" or true (pydantic alone takes both).
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


GroupId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class TranscriptLineIn(_In):
    role: Literal["user", "bot"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    at: DateTimeText | None = None


class HandoffIn(_In):
    conversation_id: Annotated[str, Field(min_length=1, max_length=200)]
    user: UserIn
    title: Annotated[str | None, Field(max_length=500)] = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    transcript: Annotated[list[TranscriptLineIn], Field(max_length=MAX_TRANSCRIPT_LINES)] = []
    group_id: GroupId | None = None
    metadata: dict[str, Scalar] = {}

    @field_validator("group_id", mode="before")
    @classmethod
    def _integer_group(cls, value: object) -> object:
        return None if value is None else _json_integer(value)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        return value

    @field_validator("transcript")
    @classmethod
    def _bounded_transcript(cls, value: list[TranscriptLineIn]) -> list[TranscriptLineIn]:
        if sum(len(line.text) for line in value) > MAX_TRANSCRIPT_CHARS:
            raise ValueError(f"must hold at most {MAX_TRANSCRIPT_CHARS} characters in all")
        return value

    def to_request(self) -> StartRequest:
        user = self.user
        return StartRequest(
            conversation_id=self.conversation_id,
            user=EndUser(
                id=user.id,
                name=user.name,
                email=user.email,
                avatar_url=str(user.avatar_url) if user.avatar_url else None,
            ),
            title=self.title,
            description=self.description,
            transcript=tuple(TranscriptLine(t.role, t.text, t.at) for t in self.transcript),
            group_id=self.group_id,
            metadata=dict(self.metadata),
        )


class TextMessageIn(_In):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    id: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class FileMessageIn(_In):
    type: Literal["file"]
    url: HttpUrl
    name: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    content_type: Annotated[str | None, Field(max_length=255)] = None
    id: Annotated[str | None, Field(min_length=1, max_length=200)] = None


MessageIn = Annotated[TextMessageIn | FileMessageIn, Field(discriminator="type")]


def to_outgoing(message: TextMessageIn | FileMessageIn) -> OutgoingMessage:
    if isinstance(message, TextMessageIn):
        return OutgoingMessage(
            type=MessageType.TEXT, text=message.text, client_message_id=message.id
        )
    return OutgoingMessage(
        type=MessageType.FILE,
        url=str(message.url),
        name=message.name,
        content_type=message.content_type,
        client_message_id=message.id,
    )


class CloseIn(_In):
    reason: Annotated[str | None, Field(max_length=500)] = None


class UserOut(BaseModel):
    id: str
    name: str | None
    email: str | None
    avatar_url: str | None


class AgentOut(BaseModel):
    id: str
    name: str | None
    avatar_url: str | None


class QueueOut(BaseModel):
    position: int | None
    wait_time: int | None


class LiveChatRef(BaseModel):
    chat_id: str | None
    thread_id: str | None


class ErrorOut(BaseModel):
    type: str
    message: str


class HandoffOut(BaseModel):
    id: str
    conversation_id: str
    state: Literal["requested", "queued", "assigned", "closed", "failed"]
    user: UserOut
    agent: AgentOut | None
    queue: QueueOut | None
    group_id: int
    close_reason: Literal["agent_closed", "bot_closed", "livechat_closed", "failed"] | None
    livechat: LiveChatRef
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    closed_at: str | None
    error: ErrorOut | None = None

    @classmethod
    def of(cls, h: Handoff) -> HandoffOut:
        return cls(
            id=h.id,
            conversation_id=h.conversation_id,
            state=h.state.value,
            user=UserOut(
                id=h.user.id, name=h.user.name, email=h.user.email, avatar_url=h.user.avatar_url
            ),
            agent=AgentOut(id=h.agent.id, name=h.agent.name, avatar_url=h.agent.avatar_url)
            if h.agent
            else None,
            queue=QueueOut(position=h.queue.position, wait_time=h.queue.wait_time)
            if h.queue
            else None,
            group_id=h.group_id,
            close_reason=h.close_reason.value if h.close_reason else None,
            livechat=LiveChatRef(chat_id=h.chat_id, thread_id=h.thread_id),
            metadata=h.metadata,
            created_at=format_timestamp(h.created_at),
            updated_at=format_timestamp(h.updated_at),
            closed_at=format_timestamp(h.closed_at) if h.closed_at else None,
            error=ErrorOut(type=str(h.error.get("type")), message=str(h.error.get("message")))
            if h.error
            else None,
        )


class HandoffPage(BaseModel):
    items: list[HandoffOut]
    next_cursor: str | None


class MessageAccepted(BaseModel):
    id: str
    handoff_id: str
    status: Literal["queued", "delivered", "failed"]


class MessageOut(BaseModel):
    id: str
    handoff_id: str
    direction: Literal["to_agent", "to_bot"]
    type: Literal["text", "file", "rich"]
    status: Literal["queued", "delivered", "failed"]
    text: str | None = None
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    elements: list[dict[str, Any]] | None = None
    client_message_id: str | None = None
    agent_id: str | None = None
    error: str | None = None
    created_at: str

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id,
            handoff_id=m.handoff_id,
            direction=m.direction.value,
            type=m.type.value,
            status=m.status.value,
            text=m.text,
            url=m.url,
            name=m.name,
            content_type=m.content_type,
            elements=m.elements,
            client_message_id=m.client_message_id,
            agent_id=m.author_id,
            error=m.error,
            created_at=format_timestamp(m.created_at),
        )


class MessageList(BaseModel):
    items: list[MessageOut]


class Availability(BaseModel):
    group_id: int
    accepting_chats: bool
    agents_accepting: int
