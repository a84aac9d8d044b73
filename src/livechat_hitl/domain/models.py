"""The gateway's own records: handoffs, messages, bot events, outbox rows.

Plain frozen dataclasses; no I/O. Wire formats (LiveChat's, the bot API's) live at the
edges and are translated into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from livechat_hitl.domain.states import CloseReason, HandoffState

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EndUser:
    id: str
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str | None = None
    avatar_url: str | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    position: int | None
    wait_time: int | None


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    role: str  # "user" | "bot"
    text: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    id: str
    conversation_id: str
    state: HandoffState
    user: EndUser
    group_id: int
    created_at: datetime
    updated_at: datetime
    title: str | None = None
    description: str | None = None
    transcript: tuple[TranscriptLine, ...] = ()
    metadata: JSON = field(default_factory=dict)
    agent: Agent | None = None
    queue: QueueInfo | None = None
    close_reason: CloseReason | None = None
    error: JSON | None = None  # {"type", "message"} when failed
    chat_id: str | None = None
    thread_id: str | None = None
    customer_id: str | None = None
    closed_at: datetime | None = None
    version: int = 0  # bumped by the store on every write (optimistic concurrency)


class Direction(StrEnum):
    TO_AGENT = "to_agent"  # bot → LiveChat
    TO_BOT = "to_bot"  # LiveChat agent → bot


class MessageType(StrEnum):
    TEXT = "text"
    FILE = "file"
    RICH = "rich"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    handoff_id: str
    direction: Direction
    type: MessageType
    status: DeliveryStatus
    created_at: datetime
    text: str | None = None
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    elements: list[JSON] | None = None
    client_message_id: str | None = None
    author_id: str | None = None
    livechat_event_id: str | None = None
    error: str | None = None


class EventType(StrEnum):
    STARTED = "handoff.started"
    QUEUED = "handoff.queued"
    ASSIGNED = "handoff.assigned"
    TRANSFERRED = "handoff.transferred"
    MESSAGE = "handoff.message"
    MESSAGE_FAILED = "handoff.message_failed"  # a bot message LiveChat refused for good
    CLOSED = "handoff.closed"
    FAILED = "handoff.failed"


@dataclass(frozen=True, slots=True)
class BotEvent:
    """One event for the bot. `seq` is the durable log position (SSE `id`)."""

    id: str
    type: EventType
    handoff_id: str
    conversation_id: str
    created_at: datetime
    data: JSON
    seq: int | None = None

    def to_wire(self, created_at_text: str) -> JSON:
        return {
            "id": self.id,
            "type": str(self.type),
            "created_at": created_at_text,
            "handoff_id": self.handoff_id,
            "conversation_id": self.conversation_id,
            "data": self.data,
        }


class OutboxTarget(StrEnum):
    LIVECHAT = "livechat"  # work the gateway does against LiveChat
    BOT_WEBHOOK = "bot_webhook"  # an event POSTed to the bot's webhook URL
    INBOUND = "inbound"  # a LiveChat webhook delivery, recorded before it is applied


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A row to write in the same transaction as the state change that causes it.

    `kind` names the action for the target (e.g. "start_chat", "send_message",
    "close_chat", "event"); `payload` holds what the delivery needs.
    """

    id: str
    handoff_id: str
    target: OutboxTarget
    kind: str
    payload: JSON


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: str
    seq: int
    handoff_id: str
    target: OutboxTarget
    kind: str
    payload: JSON
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    handoff_id: str
    from_state: HandoffState | None
    to_state: HandoffState
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CustomerIdentity:
    """The LiveChat customer that stands for one end user, across handoffs."""

    user_id: str
    customer_id: str | None
    access_token: str | None
    expires_at: datetime | None
    cookies: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """Everything one state change writes, committed in ONE store transaction.

    `dedup_key`, when set, makes the change happen at most once: the store returns
    False (and writes nothing) when the key was already recorded. When `handoff` is set
    and `handoff.version` differs from the stored version, the store raises
    `StaleHandoff` and writes nothing: the caller re-reads and tries again.
    """

    handoff: Handoff | None = None  # the new version of the handoff (upsert)
    expected_state: HandoffState | None = None  # optimistic check on the stored state
    transition: Transition | None = None
    messages: tuple[Message, ...] = ()
    message_updates: tuple[Message, ...] = ()
    events: tuple[BotEvent, ...] = ()
    outbox: tuple[OutboxItem, ...] = ()
    outbox_done: tuple[str, ...] = ()  # outbox row ids this change completes
    # The lease under which a relay delivered `outbox_done`: the rows complete only while
    # still held under it, so a relay whose lease ran out (and another relay claimed the
    # row since) does not record over the new holder. None: complete regardless.
    outbox_lease: datetime | None = None
    identity: CustomerIdentity | None = None
    dedup_key: str | None = None
