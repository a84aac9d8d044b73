"""Small builders for store records (imported by the store contract tests)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime

from livechat_hitl.domain.models import (
    BotEvent,
    Change,
    DeliveryStatus,
    Direction,
    EndUser,
    EventType,
    Handoff,
    Message,
    MessageType,
    OutboxItem,
    OutboxTarget,
)
from livechat_hitl.domain.states import CloseReason, HandoffState

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def handoff(now: datetime, conversation_id: str | None = None, **fields: object) -> Handoff:
    made = Handoff(
        id=next_id("h"),
        conversation_id=conversation_id or next_id("conv"),
        state=HandoffState.REQUESTED,
        user=EndUser(id="u-1", name="Ada"),
        group_id=0,
        created_at=now,
        updated_at=now,
    )
    return replace(made, **fields)  # type: ignore[arg-type]


def stored(h: Handoff) -> Handoff:
    """The handoff as the store holds it after one more commit."""
    return replace(h, version=h.version + 1)


def closed(h: Handoff, now: datetime) -> Handoff:
    return replace(
        h,
        state=HandoffState.CLOSED,
        close_reason=CloseReason.BOT_CLOSED,
        closed_at=now,
        updated_at=now,
    )


def message(h: Handoff, now: datetime, **fields: object) -> Message:
    made = Message(
        id=next_id("msg"),
        handoff_id=h.id,
        direction=Direction.TO_AGENT,
        type=MessageType.TEXT,
        status=DeliveryStatus.QUEUED,
        created_at=now,
        text="hello",
    )
    return replace(made, **fields)  # type: ignore[arg-type]


def event(h: Handoff, now: datetime, type_: EventType = EventType.QUEUED) -> BotEvent:
    return BotEvent(
        id=next_id("evt"),
        type=type_,
        handoff_id=h.id,
        conversation_id=h.conversation_id,
        created_at=now,
        data={"queue": {"position": 1, "wait_time": 30}},
    )


def item(
    h: Handoff | str, target: OutboxTarget = OutboxTarget.LIVECHAT, kind: str = "send_message"
) -> OutboxItem:
    handoff_id = h if isinstance(h, str) else h.id
    return OutboxItem(
        id=next_id("ob"), handoff_id=handoff_id, target=target, kind=kind, payload={"n": 1}
    )


def create(h: Handoff, **extra: object) -> Change:
    return Change(handoff=h, **extra)  # type: ignore[arg-type]
