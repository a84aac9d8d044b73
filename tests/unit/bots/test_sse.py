"""The SSE feed: resume after Last-Event-ID, wake on notify, ping, end on disconnect."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request

from livechat_hitl.bots.sse import event_stream, events_response, parse_last_event_id
from livechat_hitl.domain.models import BotEvent, EventType
from livechat_hitl.store.notifier import LocalNotifier

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_event(seq: int, type_: EventType = EventType.QUEUED) -> BotEvent:
    return BotEvent(
        id=f"evt_{seq:04d}",
        type=type_,
        handoff_id="ho_1",
        conversation_id="conv-42",
        created_at=T0,
        data={"queue": {"position": seq, "wait_time": 10}},
        seq=seq,
    )


class FakeLog:
    """An in-memory event log with the store's `events_after` contract."""

    def __init__(self, notifier: LocalNotifier | None = None) -> None:
        self.events: list[BotEvent] = []
        self.reads: list[tuple[int, int]] = []
        self.notifier = notifier

    def append(self, count: int = 1) -> None:
        for _ in range(count):
            self.events.append(make_event(len(self.events) + 1))
        if self.notifier is not None:
            self.notifier.notify()

    async def events_after(self, seq: int, limit: int = 100) -> list[BotEvent]:
        self.reads.append((seq, limit))
        return [e for e in self.events if e.seq is not None and e.seq > seq][:limit]


@pytest.mark.parametrize(
    ("header", "expected"), [(None, 0), ("", 0), ("  ", 0), ("0", 0), ("17", 17), (" 5 ", 5)]
)
def test_parse_last_event_id(header: str | None, expected: int) -> None:
    assert parse_last_event_id(header) == expected


@pytest.mark.parametrize("header", ["abc", "-1", "1.5", "evt_123", "١٢", "9" * 30])
def test_parse_last_event_id_refuses_non_positions(header: str) -> None:
    with pytest.raises(ValueError):
        parse_last_event_id(header)


async def test_stream_resumes_after_last_event_id_with_wire_json() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)
    log.append(5)
    stream = event_stream(log, notifier, "2", ping_seconds=60)
    got = [await anext(stream) for _ in range(3)]
    await stream.aclose()

    assert [e.id for e in got] == ["3", "4", "5"]
    assert {e.event for e in got} == {"handoff.queued"}
    body = json.loads(str(got[0].data))
    assert body == {
        "id": "evt_0003",
        "type": "handoff.queued",
        "created_at": "2026-01-01T12:00:00.000000Z",
        "handoff_id": "ho_1",
        "conversation_id": "conv-42",
        "data": {"queue": {"position": 3, "wait_time": 10}},
    }
    encoded = got[0].encode().decode()
    assert encoded.startswith("id: 3\r\nevent: handoff.queued\r\ndata: {")


async def test_stream_reads_in_batches_without_sleeping_between_full_ones() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)
    log.append(7)
    stream = event_stream(log, notifier, None, batch=3, ping_seconds=60)
    ids = [(await asyncio.wait_for(anext(stream), 1)).id for _ in range(7)]
    await stream.aclose()
    assert ids == [str(n) for n in range(1, 8)]
    assert log.reads[:3] == [(0, 3), (3, 3), (6, 3)]


async def test_stream_wakes_on_notify() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)
    stream = event_stream(log, notifier, None, ping_seconds=60, poll_seconds=60)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not pending.done()  # nothing yet: it sleeps on the notifier
    log.append()  # commits and notifies
    first = await asyncio.wait_for(pending, 1)  # far sooner than the 60 s poll
    assert first.id == "1"
    await stream.aclose()


async def test_stream_sees_events_committed_before_its_first_sleep() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)

    class RacingLog(FakeLog):
        async def events_after(self, seq: int, limit: int = 100) -> list[BotEvent]:
            found = await log.events_after(seq, limit)
            if not log.events:
                log.append()  # a commit lands right after the (empty) read
            return found

    stream = event_stream(RacingLog(), notifier, None, ping_seconds=60, poll_seconds=60)
    first = await asyncio.wait_for(anext(stream), 1)
    assert first.id == "1"
    await stream.aclose()


async def test_stream_pings_when_quiet() -> None:
    notifier = LocalNotifier()
    stream = event_stream(FakeLog(), notifier, None, ping_seconds=0.05)
    ping = await asyncio.wait_for(anext(stream), 1)
    assert ping.comment == "ping"
    assert ping.id is None
    assert ping.encode() == b": ping\r\n\r\n"
    await stream.aclose()


async def test_stream_stops_when_client_is_gone() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)
    log.append(2)
    gone = False

    async def is_disconnected() -> bool:
        return gone

    stream = event_stream(log, notifier, None, poll_seconds=0.05, is_disconnected=is_disconnected)
    assert (await anext(stream)).id == "1"
    assert (await anext(stream)).id == "2"
    gone = True
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 1)


def make_request(headers: dict[str, str], receive: Any) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/events",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    return Request(scope, receive)


async def test_events_response_streams_and_ends_cleanly_on_disconnect() -> None:
    notifier = LocalNotifier()
    log = FakeLog(notifier)
    log.append(3)
    disconnected = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        body = b"".join(m.get("body", b"") for m in sent)
        if body.count(b"\r\n\r\n") >= 2:
            disconnected.set()

    request = make_request({"Last-Event-ID": "1"}, receive)
    response = events_response(request, log, notifier)
    await asyncio.wait_for(response(request.scope, receive, send), 5)

    start = sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-store"
    body = b"".join(m.get("body", b"") for m in sent).decode()
    assert body.startswith("id: 2\r\nevent: handoff.queued\r\ndata: ")
    assert "id: 3\r\n" in body
    assert "id: 1\r\n" not in body


def test_events_response_refuses_a_bad_last_event_id() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    request = make_request({"Last-Event-ID": "evt_abc"}, receive)
    with pytest.raises(ValueError):
        events_response(request, FakeLog(), LocalNotifier())
