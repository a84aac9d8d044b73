"""Translate parsed LiveChat webhooks into the core's neutral inbound actions.

Also derives each delivery's de-duplication key from its payload: `webhook_id` names the
registration, not the delivery, so it cannot tell a retry from a new event.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from livechat_hitl.domain.models import Agent, MessageType, QueueInfo
from livechat_hitl.livechat import webhooks as wh
from livechat_hitl.livechat.structures import (
    Agent as AgentUser,
)
from livechat_hitl.livechat.structures import (
    FileEvent,
    MessageEvent,
    RichMessageEvent,
)
from livechat_hitl.services.inbound import (
    AgentJoined,
    ChatDeactivated,
    ChatTransferred,
    InboundAction,
    IncomingEvent,
)

USED_ACTIONS = frozenset(
    {"incoming_event", "chat_transferred", "chat_deactivated", "user_added_to_chat"}
)


def chat_id_of(action: str, payload: dict[str, Any]) -> str | None:
    value = payload.get("chat_id")
    return value if isinstance(value, str) and value else None


def dedup_key(action: str, payload: dict[str, Any]) -> str:
    """A key equal for every delivery of the same LiveChat happening."""
    chat = payload.get("chat_id")
    thread = payload.get("thread_id")
    if action == "incoming_event":
        event = payload.get("event")
        event_id = event.get("id") if isinstance(event, dict) else None
        if event_id:
            return f"lc:{action}:{chat}:{thread}:{event_id}"
    if action == "chat_deactivated" and thread:
        return f"lc:{action}:{chat}:{thread}"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return f"lc:{action}:{chat}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def to_action(action: str, payload: dict[str, Any]) -> InboundAction | None:
    """The neutral action for a delivery, or None when the gateway has no use for it.

    Raises `ValueError` (pydantic's ValidationError) for a malformed payload of a used
    action.
    """
    if action not in USED_ACTIONS:
        return None
    model = wh.parse_payload(action, payload)
    match model:
        case wh.IncomingEvent():
            return _incoming_event(model)
        case wh.ChatTransferred():
            queue = model.queue
            return ChatTransferred(
                chat_id=model.chat_id,
                thread_id=model.thread_id,
                reason=model.reason,
                agent_ids=tuple(model.transferred_to.agent_ids),
                group_ids=tuple(model.transferred_to.group_ids),
                queue=QueueInfo(position=queue.position, wait_time=queue.wait_time)
                if queue is not None
                else None,
            )
        case wh.ChatDeactivated():
            return ChatDeactivated(
                chat_id=model.chat_id, thread_id=model.thread_id, user_id=model.user_id
            )
        case wh.UserAddedToChat():
            user = model.user
            if not isinstance(user, AgentUser):
                return None
            return AgentJoined(
                chat_id=model.chat_id,
                thread_id=model.thread_id,
                agent=Agent(id=user.id, name=user.name, avatar_url=user.avatar),
            )
    return None


def _incoming_event(model: wh.IncomingEvent) -> IncomingEvent:
    return incoming_from_event(model.chat_id, model.thread_id, model.event)


def incoming_from_event(chat_id: str, thread_id: str | None, event: Any) -> IncomingEvent:
    """The neutral action for one event of a thread (from a webhook or from `get_chat`)."""
    common: dict[str, Any] = {
        "chat_id": chat_id,
        "thread_id": thread_id,
        "event_id": event.id or "",
        "author_id": event.author_id,
        "visibility": getattr(event, "visibility", None) or "all",
        "custom_id": event.custom_id,
    }
    match event:
        case MessageEvent():
            return IncomingEvent(kind=MessageType.TEXT, text=event.text or "", **common)
        case FileEvent():
            return IncomingEvent(
                kind=MessageType.FILE,
                url=event.url,
                name=event.name,
                content_type=event.content_type,
                **common,
            )
        case RichMessageEvent():
            return IncomingEvent(
                kind=MessageType.RICH,
                elements=tuple(e.model_dump(exclude_none=True) for e in event.elements),
                text=None,
                **common,
            )
    return IncomingEvent(kind=None, **common)
