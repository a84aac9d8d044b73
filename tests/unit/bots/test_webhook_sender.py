"""Signed bot webhooks: verifiable, same webhook-id on every retry, honest outcomes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from httpx_bridge import bridged
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from livechat_hitl.bots.signing import WebhookSigner
from livechat_hitl.bots.webhook_sender import BotWebhookSink, event_body, parse_retry_after
from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import OutboxRow, OutboxStatus, OutboxTarget
from livechat_hitl.logs import clear_secrets, register_secrets
from livechat_hitl.outbound import AiohttpTransport
from livechat_hitl.outbound_process import ProcessTransport
from livechat_hitl.outbox.sinks import Delivered, Failed

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-secret-for-the-tests!!").decode()
URL = "https://bot.example.com/hooks/livechat"
EVENT = {
    "id": "evt_01jabcdefghjkmnpqrstvwxyz0",
    "type": "handoff.message",
    "created_at": "2026-01-01T12:00:00.000000Z",
    "handoff_id": "ho_1",
    "conversation_id": "conv-42",
    "data": {"message": {"id": "m1", "type": "text", "text": "Grüße ✓"}, "agent": {"id": "a"}},
}

Handler = Any


def make_row(payload: dict[str, Any] | None = None, **changes: Any) -> OutboxRow:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": "ob_row_is_not_the_event_id",
        "seq": 1,
        "handoff_id": "ho_1",
        "target": OutboxTarget.BOT_WEBHOOK,
        "kind": "event",
        "payload": payload if payload is not None else dict(EVENT),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    fields.update(changes)
    return OutboxRow(**fields)


class Receiver:
    """A scripted bot endpoint: answers in turn, records every request."""

    def __init__(self, *answers: httpx.Response | Exception | float) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else httpx.Response(204)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, float):  # hang for that long, then answer
            await asyncio.sleep(answer)
            return httpx.Response(200)
        return answer


class Wire:
    """Where `make_sink`'s sinks send: httpx's MockTransport straight to the receiver, or
    the gateway's aiohttp transport over loopback to it (`httpx_bridge`)."""

    transport: AiohttpTransport | None = None
    url = URL
    receiver: Receiver | None = None

    @classmethod
    async def handle(cls, request: httpx.Request) -> httpx.Response:
        assert cls.receiver is not None
        return await cls.receiver(request)


@pytest.fixture(autouse=True, params=["mock", "aiohttp", "process"])
async def wire(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "mock":
        yield request.param
        return
    if request.node.get_closest_marker("mock_only"):
        pytest.skip("scripts a transport exception, which only a mock transport raises")
    async with contextlib.AsyncExitStack() as stack:
        origin = await stack.enter_async_context(bridged(Wire.handle, "https://bot.example.com"))
        Wire.transport = AiohttpTransport() if request.param == "aiohttp" else ProcessTransport()
        stack.push_async_callback(Wire.transport.aclose)
        Wire.url = origin + "/hooks/livechat"
        try:
            yield request.param
        finally:
            Wire.transport, Wire.url, Wire.receiver = None, URL, None


def make_sink(receiver: Receiver, clock: FrozenClock | None = None, **kw: Any) -> BotWebhookSink:
    transport: httpx.AsyncBaseTransport = httpx.MockTransport(receiver)
    if Wire.transport is not None:
        transport, Wire.receiver = Wire.transport, receiver
    clock = clock or FrozenClock(datetime.now(UTC))
    return BotWebhookSink(transport, Wire.url, SECRET, clock, **kw)


def test_signature_verifies_with_the_reference_library() -> None:
    body = event_body(EVENT)
    headers = WebhookSigner(SECRET).sign(EVENT["id"], datetime.now(UTC), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == EVENT["id"]
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers) == EVENT
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"conv-42", b"conv-43"), headers)
    other = "whsec_" + base64.b64encode(b"another-secret-of-the-same-size").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_timestamp_is_the_signing_time_in_unix_seconds() -> None:
    moment = datetime(2026, 3, 1, 13, 0, 5, 900000, tzinfo=UTC)
    local = moment.astimezone(timezone(timedelta(hours=2)))
    headers = WebhookSigner(SECRET).sign("evt_1", local, b"{}")
    assert headers["webhook-timestamp"] == str(int(moment.timestamp()))
    assert headers == WebhookSigner(SECRET).sign("evt_1", moment, b"{}")
    with pytest.raises(ValueError):
        WebhookSigner(SECRET).sign("evt_1", datetime(2026, 1, 1), b"{}")


def test_a_bad_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        WebhookSigner("whsec_!!!not-base64-SECRETVALUE")
    assert "SECRETVALUE" not in str(info.value)


async def test_2xx_is_delivered_with_exact_signed_bytes() -> None:
    receiver = Receiver(httpx.Response(200, text="ok"))
    outcome = await make_sink(receiver).deliver(make_row())
    assert outcome == Delivered()
    (request,) = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    body = request.content
    assert body == event_body(EVENT)
    assert json.loads(body) == EVENT
    assert Webhook(SECRET).verify(body, dict(request.headers)) == EVENT


async def test_retries_keep_the_event_id_and_move_the_timestamp() -> None:
    clock = FrozenClock(datetime.now(UTC))
    receiver = Receiver(httpx.Response(500), httpx.Response(503), httpx.Response(202))
    sink = make_sink(receiver, clock)
    outcomes = []
    for _ in range(3):
        outcomes.append(await sink.deliver(make_row()))
        clock.advance(61)
    assert [type(o) for o in outcomes] == [Failed, Failed, Delivered]
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {EVENT["id"]}  # the event's id, not the outbox row's
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps[1] - stamps[0] == 61
    assert stamps[2] - stamps[1] == 61
    assert len({r.content for r in receiver.requests}) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 429, 500, 502, 503])
async def test_other_statuses_are_retryable_with_a_short_error(status: int) -> None:
    long_body = "x" * 5000
    receiver = Receiver(httpx.Response(status, text=f"nope\n\n{long_body}"))
    outcome = await make_sink(receiver).deliver(make_row())
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert outcome.retry_after is None
    assert outcome.error.startswith(f"bot endpoint answered {status}: nope x")
    assert "\n" not in outcome.error
    assert len(outcome.error) < 300


async def test_410_gone_is_permanent() -> None:
    receiver = Receiver(httpx.Response(410, text="this bot was deleted"))
    outcome = await make_sink(receiver).deliver(make_row())
    assert outcome == Failed(
        error="bot endpoint answered 410 Gone: this bot was deleted", retryable=False
    )


async def test_retry_after_seconds_and_http_date_are_honoured() -> None:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    later = clock.now() + timedelta(seconds=120)
    receiver = Receiver(
        httpx.Response(429, headers={"Retry-After": "30"}),
        httpx.Response(503, headers={"Retry-After": format_datetime(later, usegmt=True)}),
        httpx.Response(503, headers={"Retry-After": "soon-ish"}),
    )
    sink = make_sink(receiver, clock)
    first, second, third = [await sink.deliver(make_row()) for _ in range(3)]
    assert isinstance(first, Failed)
    assert first.retry_after == 30
    assert isinstance(second, Failed)
    assert second.retry_after == 120
    assert isinstance(third, Failed)
    assert third.retry_after is None


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("0", now) == 0
    assert parse_retry_after(" 2.5 ", now) == 2.5
    assert parse_retry_after("-3", now) is None
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0  # past: now
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:00 GMT", now) == 60


@pytest.mark.mock_only
async def test_timeout_is_retryable() -> None:
    receiver = Receiver(httpx.ReadTimeout("timed out"))
    outcome = await make_sink(receiver).deliver(make_row())
    assert outcome == Failed(error="bot endpoint did not answer within 15 s", retryable=True)


async def test_a_hanging_endpoint_is_cut_at_the_timeout() -> None:
    receiver = Receiver(5.0)
    sink = make_sink(receiver, timeout=0.05)
    outcome = await asyncio.wait_for(sink.deliver(make_row()), 2)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert "did not answer within 0.05 s" in outcome.error


@pytest.mark.mock_only
async def test_connection_error_is_retryable() -> None:
    receiver = Receiver(httpx.ConnectError("[Errno 111] Connection refused"))
    outcome = await make_sink(receiver).deliver(make_row())
    assert outcome == Failed(
        error="bot endpoint unreachable: ConnectError: [Errno 111] Connection refused",
        retryable=True,
    )


async def test_a_refused_connection_is_retryable(wire: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
        transport: httpx.AsyncBaseTransport = {
            "aiohttp": AiohttpTransport,
            "process": ProcessTransport,
        }.get(wire, httpx.AsyncHTTPTransport)()
        sink = BotWebhookSink(transport, url, SECRET, FrozenClock(datetime.now(UTC)))
        try:
            outcome = await sink.deliver(make_row())
        finally:
            await transport.aclose()
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert outcome.error.startswith("bot endpoint unreachable: ConnectError")


async def test_redirect_to_another_host_is_not_followed() -> None:
    receiver = Receiver(
        httpx.Response(307, headers={"Location": "https://evil.example.net/steal?x=1"})
    )
    outcome = await make_sink(receiver).deliver(make_row())
    assert len(receiver.requests) == 1
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert "307 redirect; not followed" in outcome.error
    assert "evil" not in outcome.error


async def test_302_is_not_followed_even_on_the_same_host() -> None:
    receiver = Receiver(httpx.Response(302, headers={"Location": "/elsewhere"}))
    outcome = await make_sink(receiver).deliver(make_row())
    assert len(receiver.requests) == 1
    assert isinstance(outcome, Failed)


async def test_same_origin_308_is_followed_with_the_same_signed_post() -> None:
    receiver = Receiver(httpx.Response(308, headers={"Location": "/hooks/v2"}), httpx.Response(200))
    outcome = await make_sink(receiver).deliver(make_row())
    assert outcome == Delivered()
    first, second = receiver.requests
    assert str(second.url) == "https://bot.example.com/hooks/v2"
    assert second.method == "POST"
    assert second.content == first.content
    assert Webhook(SECRET).verify(second.content, dict(second.headers)) == EVENT


async def test_endless_same_origin_redirects_give_up() -> None:
    receiver = Receiver(
        *[httpx.Response(307, headers={"Location": "/hooks/livechat"}) for _ in range(10)]
    )
    outcome = await make_sink(receiver).deliver(make_row())
    assert isinstance(outcome, Failed)
    assert len(receiver.requests) == 4


async def test_last_error_never_carries_a_secret() -> None:
    register_secrets([SECRET])
    try:
        receiver = Receiver(httpx.Response(400, text=f"bad signature for secret {SECRET}"))
        outcome = await make_sink(receiver).deliver(make_row())
    finally:
        clear_secrets()
    assert isinstance(outcome, Failed)
    assert SECRET not in outcome.error
    assert SECRET.removeprefix("whsec_") not in outcome.error


async def test_rows_that_are_not_bot_events_fail_permanently() -> None:
    receiver = Receiver()
    sink = make_sink(receiver)
    wrong_target = await sink.deliver(make_row(target=OutboxTarget.LIVECHAT))
    no_id = await sink.deliver(make_row(payload={"type": "handoff.closed"}))
    assert isinstance(wrong_target, Failed)
    assert wrong_target.retryable is False
    assert isinstance(no_id, Failed)
    assert no_id.retryable is False
    assert receiver.requests == []
