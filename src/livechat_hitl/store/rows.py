"""Translation between domain records and table rows (plain dicts and Row mappings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from livechat_hitl.domain.models import (
    Agent,
    BotEvent,
    CustomerIdentity,
    DeliveryStatus,
    Direction,
    EndUser,
    EventType,
    Handoff,
    Message,
    MessageType,
    OutboxRow,
    OutboxStatus,
    OutboxTarget,
    QueueInfo,
    TranscriptLine,
)
from livechat_hitl.domain.states import CloseReason, HandoffState

Row = RowMapping


def handoff_values(handoff: Handoff) -> dict[str, Any]:
    """Every column but `version`, which the store owns."""
    return {
        "id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "open_conversation_id": handoff.conversation_id if handoff.state.is_open else None,
        "state": str(handoff.state),
        "user": {
            "id": handoff.user.id,
            "name": handoff.user.name,
            "email": handoff.user.email,
            "avatar_url": handoff.user.avatar_url,
        },
        "group_id": handoff.group_id,
        "title": handoff.title,
        "description": handoff.description,
        "transcript": [
            {"role": line.role, "text": line.text, "at": _iso(line.at)}
            for line in handoff.transcript
        ],
        "metadata": dict(handoff.metadata),
        "agent": None
        if handoff.agent is None
        else {
            "id": handoff.agent.id,
            "name": handoff.agent.name,
            "avatar_url": handoff.agent.avatar_url,
        },
        "queue": None
        if handoff.queue is None
        else {"position": handoff.queue.position, "wait_time": handoff.queue.wait_time},
        "close_reason": None if handoff.close_reason is None else str(handoff.close_reason),
        "error": handoff.error,
        "chat_id": handoff.chat_id,
        "thread_id": handoff.thread_id,
        "customer_id": handoff.customer_id,
        "created_at": handoff.created_at,
        "updated_at": handoff.updated_at,
        "closed_at": handoff.closed_at,
    }


def handoff_from_row(row: Row) -> Handoff:
    user = row["user"]
    agent = row["agent"]
    queue = row["queue"]
    return Handoff(
        id=row["id"],
        conversation_id=row["conversation_id"],
        state=HandoffState(row["state"]),
        user=EndUser(
            id=user["id"],
            name=user.get("name"),
            email=user.get("email"),
            avatar_url=user.get("avatar_url"),
        ),
        group_id=row["group_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        title=row["title"],
        description=row["description"],
        transcript=tuple(
            TranscriptLine(role=line["role"], text=line["text"], at=_parse(line.get("at")))
            for line in row["transcript"]
        ),
        metadata=dict(row["metadata"]),
        agent=None
        if agent is None
        else Agent(id=agent["id"], name=agent.get("name"), avatar_url=agent.get("avatar_url")),
        queue=None
        if queue is None
        else QueueInfo(position=queue.get("position"), wait_time=queue.get("wait_time")),
        close_reason=None if row["close_reason"] is None else CloseReason(row["close_reason"]),
        error=row["error"],
        chat_id=row["chat_id"],
        thread_id=row["thread_id"],
        customer_id=row["customer_id"],
        closed_at=row["closed_at"],
        version=row["version"],
    )


def message_values(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "handoff_id": message.handoff_id,
        "direction": str(message.direction),
        "type": str(message.type),
        "status": str(message.status),
        "text": message.text,
        "url": message.url,
        "name": message.name,
        "content_type": message.content_type,
        "elements": message.elements,
        "client_message_id": message.client_message_id,
        "author_id": message.author_id,
        "livechat_event_id": message.livechat_event_id,
        "error": message.error,
        "created_at": message.created_at,
    }


def message_from_row(row: Row) -> Message:
    return Message(
        id=row["id"],
        handoff_id=row["handoff_id"],
        direction=Direction(row["direction"]),
        type=MessageType(row["type"]),
        status=DeliveryStatus(row["status"]),
        created_at=row["created_at"],
        text=row["text"],
        url=row["url"],
        name=row["name"],
        content_type=row["content_type"],
        elements=row["elements"],
        client_message_id=row["client_message_id"],
        author_id=row["author_id"],
        livechat_event_id=row["livechat_event_id"],
        error=row["error"],
    )


def event_values(event: BotEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": str(event.type),
        "handoff_id": event.handoff_id,
        "conversation_id": event.conversation_id,
        "created_at": event.created_at,
        "data": event.data,
    }


def event_from_row(row: Row) -> BotEvent:
    return BotEvent(
        id=row["id"],
        type=EventType(row["type"]),
        handoff_id=row["handoff_id"],
        conversation_id=row["conversation_id"],
        created_at=row["created_at"],
        data=row["data"],
        seq=row["seq"],
    )


def outbox_from_row(row: Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        seq=row["seq"],
        handoff_id=row["handoff_id"],
        target=OutboxTarget(row["target"]),
        kind=row["kind"],
        payload=row["payload"],
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        lease_until=row["lease_until"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
    )


def identity_values(identity: CustomerIdentity) -> dict[str, Any]:
    return {
        "user_id": identity.user_id,
        "customer_id": identity.customer_id,
        "access_token": identity.access_token,
        "expires_at": identity.expires_at,
        "cookies": dict(identity.cookies),
    }


def identity_from_row(row: Row) -> CustomerIdentity:
    return CustomerIdentity(
        user_id=row["user_id"],
        customer_id=row["customer_id"],
        access_token=row["access_token"],
        expires_at=row["expires_at"],
        cookies=dict(row["cookies"]),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
