"""The Python client for bots, against a live gateway: every call, errors as
`HitlApiError`, the event stream with resume, and webhook verification."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from test_sse_feed import served  # the SSE route needs a real socket (see that module)

from livechat_hitl.client import HitlApiError, HitlClient, WebhookVerificationError, verify_webhook

KEY = "test-api-key"


def client_for(env: Any) -> HitlClient:
    return HitlClient("http://gateway.test", api_key=KEY, http=env.api)


async def test_every_call_of_the_client(make_env: Any) -> None:
    async with make_env() as env:
        hitl = client_for(env)
        handoff = await hitl.start_handoff(
            "conv-client",
            user={"id": "u-client", "name": "Ada"},
            title="Refund",
            transcript=[{"role": "user", "text": "refund please"}],
            metadata={"order": "1234"},
        )
        assert handoff["state"] == "requested"
        again = await hitl.start_handoff("conv-client", user={"id": "u-client"})
        assert again["id"] == handoff["id"]
        queued = await env.wait_state(handoff["id"], "queued")
        env.sim.accept_chat(env.agents[0], queued["livechat"]["chat_id"])
        await env.wait_state(handoff["id"], "assigned")
        accepted = await hitl.send_text(handoff["id"], "Order 1234", message_id="m-1")
        repeat = await hitl.send_text(handoff["id"], "Order 1234", message_id="m-1")
        assert accepted["id"] == repeat["id"]
        page = await hitl.list_handoffs(conversation_id="conv-client")
        assert [h["id"] for h in page["items"]] == [handoff["id"]]
        assert (await hitl.get_handoff(handoff["id"]))["agent"]["id"] == env.agents[0]
        available = await hitl.availability()
        assert available["group_id"] == 0
        await env.settle()
        texts = [m["text"] for m in await hitl.messages(handoff["id"])]
        assert texts == ["Order 1234"]
        closed = await hitl.close(handoff["id"], reason="resolved")
        assert (closed["state"], closed["close_reason"]) == ("closed", "bot_closed")
        with pytest.raises(HitlApiError) as refused:
            await hitl.send_text(handoff["id"], "too late")
        assert refused.value.status == 409
        with pytest.raises(HitlApiError) as missing:
            await hitl.get_handoff("ho_missing")
        assert missing.value.status == 404
        assert "test-api-key" not in repr(hitl)


async def test_a_wrong_key_is_an_error_with_the_problem(make_env: Any) -> None:
    async with make_env() as env:
        hitl = HitlClient("http://gateway.test", api_key="wrong", http=env.api)
        with pytest.raises(HitlApiError) as refused:
            await hitl.get_handoff("ho_x")
        assert refused.value.status == 401
        assert refused.value.problem["status"] == 401


async def test_events_stream_in_order_and_resume(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-client-sse")
        await env.settle()
        app = env.app
        async with served(app) as base, HitlClient(base, api_key=KEY) as hitl:
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                async for event in hitl.events():
                    seen.append(event)
                    if len(seen) == 3:
                        break
            assert [e["type"] for e in seen] == [
                "handoff.started",
                "handoff.queued",
                "handoff.assigned",
            ]
            assert all(e["handoff_id"] == handoff["id"] for e in seen)
            env.sim.agent_reply(env.agents[0], handoff["livechat"]["chat_id"], "hello")
            async with asyncio.timeout(10):
                async for event in hitl.events(last_event_id=seen[1]["_position"]):
                    seen.append(event)
                    if event["type"] == "handoff.message":
                        break
            assert [e["type"] for e in seen[3:]] == ["handoff.assigned", "handoff.message"]
            assert seen[-1]["data"]["message"]["text"] == "hello"


def test_verify_webhook_accepts_signed_and_refuses_tampered() -> None:
    secret = "whsec_" + base64.b64encode(b"a-secret-for-this-test-only-1234").decode()
    body = json.dumps({"id": "evt_1", "type": "handoff.closed", "data": {"reason": "x"}})
    now = int(time.time())
    signature = Webhook(secret).sign("evt_1", datetime.fromtimestamp(now, UTC), body)
    headers = {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(now), "Webhook-Signature": signature}
    assert verify_webhook(body, headers, secret)["type"] == "handoff.closed"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body.replace("x", "y"), headers, secret)
    other = "whsec_" + base64.b64encode(b"another-secret-for-this-test-567").decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, other)


async def test_a_dropped_stream_is_resumed_without_loss() -> None:
    """The server ends the stream (a restart, a proxy timeout): the client reconnects
    with `Last-Event-ID` = the last position it saw, and sees each event once."""
    log = [
        {"id": "evt_a", "type": "handoff.started"},
        {"id": "evt_b", "type": "handoff.queued"},
        {"id": "evt_c", "type": "handoff.assigned"},
    ]
    asked: list[str | None] = []

    def stream(request: httpx.Request) -> httpx.Response:
        after = request.headers.get("last-event-id")
        asked.append(after)
        start = int(after) if after else 0
        chunk = log[start : start + 2]  # two events, then the connection ends
        body = ": ping\n\n" + "".join(
            f"id: {start + n + 1}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n"
            for n, e in enumerate(chunk)
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(stream))
    hitl = HitlClient("http://gateway.test", api_key=KEY, http=http)
    seen: list[str] = []
    async with asyncio.timeout(5):
        async for event in hitl.events(reconnect_delay=0):
            seen.append(event["id"])
            if len(seen) == 3:
                break
    assert seen == ["evt_a", "evt_b", "evt_c"]
    assert asked == [None, "2"]
