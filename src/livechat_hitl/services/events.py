"""Bot events: one durable log entry, plus a webhook outbox row when a URL is set."""

from __future__ import annotations

from datetime import datetime

from livechat_hitl import ids
from livechat_hitl.domain.models import (
    JSON,
    BotEvent,
    EventType,
    Handoff,
    OutboxItem,
    OutboxTarget,
)
from livechat_hitl.livechat.wire import format_timestamp


class EventFactory:
    def __init__(self, *, bot_webhook_enabled: bool) -> None:
        self._webhook = bot_webhook_enabled

    def make(
        self, handoff: Handoff, type_: EventType, data: JSON, *, now: datetime
    ) -> tuple[BotEvent, tuple[OutboxItem, ...]]:
        event = BotEvent(
            id=ids.event_id(),
            type=type_,
            handoff_id=handoff.id,
            conversation_id=handoff.conversation_id,
            created_at=now,
            data=data,
        )
        if not self._webhook:
            return event, ()
        row = OutboxItem(
            id=ids.outbox_id(),
            handoff_id=handoff.id,
            target=OutboxTarget.BOT_WEBHOOK,
            kind="event",
            payload=event.to_wire(format_timestamp(now)),
        )
        return event, (row,)
