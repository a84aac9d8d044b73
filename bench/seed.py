"""Seed a gateway database with many open handoffs, straight through SQL.

Creating 100,000 handoffs through LiveChat would take hours of simulator time and
measure the wrong thing; the scale scenario needs a database that *looks* like a
gateway that has been running: open (assigned) handoffs with chat and thread ids and a
customer, their transitions, a few messages both ways, the bot events and the
delivered outbox rows those caused, and the de-duplication keys of the inbound
deliveries. Rows are built with the store's own row helpers, so they are what the
gateway itself writes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from livechat_hitl import ids
from livechat_hitl.domain.models import (
    Agent,
    BotEvent,
    DeliveryStatus,
    Direction,
    EndUser,
    EventType,
    Handoff,
    Message,
    MessageType,
    TranscriptLine,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.livechat.wire import format_timestamp
from livechat_hitl.store import rows
from livechat_hitl.store.sql_store import open_store
from livechat_hitl.store.tables import dedup_keys, events, handoffs, messages, outbox, transitions

CHUNK = 2000


def _outbox(
    handoff_id: str, target: str, kind: str, payload: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "id": ids.outbox_id(),
        "handoff_id": handoff_id,
        "target": target,
        "kind": kind,
        "payload": payload,
        "status": "delivered",
        "attempts": 1,
        "next_attempt_at": at,
        "lease_until": None,
        "last_error": None,
        "created_at": at,
        "delivered_at": at,
    }


def _one(i: int, at: datetime) -> dict[str, list[dict[str, Any]]]:
    chat_id = f"SEED{i:07d}"
    thread_id = f"SEEDT{i:07d}"
    agent = Agent(id=f"agent{i % 50}@seed.example", name=f"Agent {i % 50}", avatar_url=None)
    handoff = Handoff(
        id=ids.handoff_id(),
        conversation_id=f"seed-conv-{i}",
        state=HandoffState.ASSIGNED,
        user=EndUser(id=f"seed-user-{i}", name=f"User {i}", email=f"user{i}@seed.example"),
        group_id=0,
        created_at=at,
        updated_at=at,
        title="Refund for an order",
        transcript=(
            TranscriptLine(role="user", text="I want a refund."),
            TranscriptLine(role="bot", text="Let me get you a human."),
        ),
        agent=agent,
        chat_id=chat_id,
        thread_id=thread_id,
        customer_id=f"seed-customer-{i}",
    )
    h = handoff.id
    out: dict[str, list[dict[str, Any]]] = {
        "handoffs": [{**rows.handoff_values(handoff), "version": 3}],
        "transitions": [
            {
                "handoff_id": h,
                "from_state": None,
                "to_state": "requested",
                "cause": "bot asked",
                "at": at,
            },
            {
                "handoff_id": h,
                "from_state": "requested",
                "to_state": "assigned",
                "cause": "agent joined the chat",
                "at": at,
            },
        ],
        "messages": [],
        "events": [],
        "outbox": [],
        "dedup_keys": [],
    }
    texts = [
        (Direction.TO_AGENT, "Hello, is anyone there?", None),
        (Direction.TO_BOT, "Hi, I am looking at your order.", f"{thread_id}_5"),
        (Direction.TO_AGENT, "Thanks!", None),
    ]
    for direction, text, event_id in texts:
        message = Message(
            id=ids.message_id(),
            handoff_id=h,
            direction=direction,
            type=MessageType.TEXT,
            status=DeliveryStatus.DELIVERED,
            created_at=at,
            text=text,
            author_id=agent.id if direction is Direction.TO_BOT else None,
            livechat_event_id=event_id,
        )
        out["messages"].append(rows.message_values(message))
        if direction is Direction.TO_AGENT:
            out["outbox"].append(
                _outbox(h, "livechat", "send_message", {"message_id": message.id}, at)
            )
    for type_, data in (
        (EventType.STARTED, {"livechat": {"chat_id": chat_id, "thread_id": thread_id}}),
        (EventType.ASSIGNED, {"agent": {"id": agent.id, "name": agent.name, "avatar_url": None}}),
        (
            EventType.MESSAGE,
            {
                "message": {"type": "text", "text": texts[1][1]},
                "agent": {"id": agent.id, "name": agent.name},
            },
        ),
    ):
        event = BotEvent(
            id=ids.event_id(),
            type=type_,
            handoff_id=h,
            conversation_id=handoff.conversation_id,
            created_at=at,
            data=data,
        )
        out["events"].append(rows.event_values(event))
        out["outbox"].append(
            _outbox(h, "bot_webhook", "event", event.to_wire(format_timestamp(at)), at)
        )
    key = f"lc:incoming_event:{chat_id}:{thread_id}:{thread_id}_5"
    out["outbox"].append(
        _outbox(
            h,
            "inbound",
            "incoming_event",
            {"action": "incoming_event", "payload": {"chat_id": chat_id}},
            at,
        )
    )
    out["dedup_keys"].append({"key": key, "created_at": at})
    return out


async def seed_open_handoffs(database_url: str, count: int) -> float:
    """Add `count` open handoffs (and their history) to the database; the seconds it took."""
    started = time.perf_counter()
    tables = {
        "handoffs": handoffs, "transitions": transitions, "messages": messages,
        "events": events, "outbox": outbox, "dedup_keys": dedup_keys,
    }  # fmt: skip
    base = datetime.now(UTC) - timedelta(days=1)
    async with open_store(database_url) as store:
        for first in range(0, count, CHUNK):
            batch: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
            for i in range(first, min(count, first + CHUNK)):
                for name, values in _one(i, base + timedelta(milliseconds=i)).items():
                    batch[name].extend(values)
            async with store.engine.begin() as conn:
                for name, table in tables.items():
                    if batch[name]:
                        await conn.execute(insert(table), batch[name])
    return time.perf_counter() - started
