"""`GET /v1/events`: the durable event log as Server-Sent Events.

Each event goes out as `id: <seq>`, `event: <type>`, `data: <wire JSON>`, the same JSON
the bot webhook receives. A client that reconnects with `Last-Event-ID: <seq>` gets
everything after that position, so nothing is lost across reconnects or restarts.
Between batches the stream sleeps on the notifier (woken by every commit) and sends a
`: ping` comment when it has been quiet for `ping_seconds`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from livechat_hitl.domain.models import BotEvent
from livechat_hitl.livechat.wire import format_timestamp
from livechat_hitl.ports import EventNotifier

LAST_EVENT_ID_HEADER = "last-event-id"


class EventLog(Protocol):
    """The part of the store the feed reads."""

    async def events_after(self, seq: int, limit: int = 100) -> list[BotEvent]: ...


def parse_last_event_id(value: str | None) -> int:
    """The log position to resume after: 0 when absent; ValueError unless a seq."""
    if value is None or not value.strip():
        return 0
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ValueError("Last-Event-ID must be a non-negative integer given by this stream")
    return int(text)


def wire_json(event: BotEvent) -> str:
    """The event as the bot sees it (same shape as the webhook body), on one line."""
    wire = event.to_wire(format_timestamp(event.created_at))
    return json.dumps(wire, ensure_ascii=False, separators=(",", ":"))


def to_sse(event: BotEvent) -> ServerSentEvent:
    if event.seq is None:
        raise ValueError(f"event {event.id} has no log position")
    return ServerSentEvent(data=wire_json(event), id=str(event.seq), event=str(event.type))


async def event_stream(
    store: EventLog,
    notifier: EventNotifier,
    last_event_id: str | None,
    *,
    ping_seconds: float = 15.0,
    batch: int = 100,
    poll_seconds: float = 5.0,
    is_disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """Yield every event after `last_event_id`, then follow the log until the client goes.

    `poll_seconds` bounds a sleep even if a wake-up were missed (another process wrote,
    say); a notify ends the sleep at once.
    """
    cursor = parse_last_event_id(last_event_id)
    await notifier.wait(0)  # register with the notifier before the first read
    last_sent = time.monotonic()
    while True:
        if is_disconnected is not None and await is_disconnected():
            return
        events = await store.events_after(cursor, limit=batch)
        for event in events:
            yield to_sse(event)
            cursor = event.seq if event.seq is not None else cursor
        if events:
            last_sent = time.monotonic()
            if len(events) >= batch:
                continue  # more are waiting: no sleep
        quiet = time.monotonic() - last_sent
        if quiet >= ping_seconds:
            yield ServerSentEvent(comment="ping")
            last_sent = time.monotonic()
            quiet = 0.0
        await notifier.wait(max(0.0, min(poll_seconds, ping_seconds - quiet)))


def events_response(
    request: Request,
    store: EventLog,
    notifier: EventNotifier,
    *,
    ping_seconds: float = 15.0,
    batch: int = 100,
) -> EventSourceResponse:
    """The streaming response for `GET /v1/events` (the route answers 400 first when
    `parse_last_event_id` refuses the `Last-Event-ID` header; here it raises ValueError).
    """
    last_event_id = request.headers.get(LAST_EVENT_ID_HEADER)
    parse_last_event_id(last_event_id)  # refuse now, not halfway into the stream
    stream = event_stream(store, notifier, last_event_id, ping_seconds=ping_seconds, batch=batch)
    # sse-starlette watches for the disconnect and cancels the stream; pings come from
    # the stream itself, so the library's own ping task is off.
    return EventSourceResponse(stream, ping=0, headers={"Cache-Control": "no-store"})
