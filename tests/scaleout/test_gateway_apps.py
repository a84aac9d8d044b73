"""Two gateway apps (each its own Gateway: engine, LISTEN connection, relay), served by
uvicorn on loopback ports, on one PostgreSQL database, in front of one in-process
LiveChat simulator.

- A delivery LiveChat sends to both apps at once is recorded once (a unique key in the
  same transaction, not read-then-write).
- An SSE client of app B gets the events app A writes; B runs no relay, so only a NOTIFY
  from A's commit (or B's 5 s poll) can wake its feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from livechat_hitl.config import Settings
from livechat_hitl.domain.models import OutboxTarget
from livechat_hitl.http.app import bind, create_app
from livechat_hitl.outbox.retry import RetryPolicy
from livechat_hitl.runtime import Gateway
from livechat_hitl.simulator import SimulatorConfig, create_simulator
from livechat_hitl.store.tables import dedup_keys, outbox

pytestmark = pytest.mark.postgres

SIM = "http://sim.test"
API_KEY = "scaleout-api-key"
WEBHOOK_SECRET = "scaleout-livechat-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(url: str, sim: SimulatorConfig, port: int) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        public_url=f"http://127.0.0.1:{port}",
        api_keys=API_KEY,
        livechat_api_url=SIM,
        livechat_accounts_url=SIM,
        livechat_agent_token=sim.agent_token,
        livechat_client_id=sim.client_id,
        livechat_organization_id=sim.organization_id,
        livechat_webhook_secret=WEBHOOK_SECRET,
        livechat_group_id=sim.group_id,
    )


@contextlib.asynccontextmanager
async def served_gateway(
    url: str, sim_http: httpx.AsyncClient, sim: SimulatorConfig, *, run_relay: bool
) -> AsyncIterator[tuple[Gateway, str]]:
    port = free_port()
    gateway = Gateway(
        settings(url, sim, port),
        livechat_http=sim_http,
        retry_policy=RetryPolicy(base=0.01, cap=0.2),
        run_relay=run_relay,
    )
    app = create_app(gateway, manage_gateway=False)
    async with gateway:
        bind(app, gateway)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        try:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.01)
            yield gateway, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


@contextlib.asynccontextmanager
async def two_gateways(url: str) -> AsyncIterator[tuple[Gateway, str, Gateway, str]]:
    config = SimulatorConfig(seed=5, base_url=SIM, routing_mode="manual")
    sim = create_simulator(config)  # its webhooks go nowhere: the tests post them
    async with (
        sim,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM) as sim_http,
        served_gateway(url, sim_http, config, run_relay=True) as (gateway_a, url_a),
        served_gateway(url, sim_http, config, run_relay=False) as (gateway_b, url_b),
    ):
        yield gateway_a, url_a, gateway_b, url_b


def _api(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=15.0
    )


async def _next_sse_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                return json.loads(fields["data"])  # type: ignore[no-any-return]
            fields = {}
            continue
        name, _, value = line.partition(":")
        if name:
            fields[name] = value.lstrip()
    raise AssertionError("the stream ended")


async def test_sse_of_one_app_streams_what_another_app_writes(pg_url: str) -> None:
    async with (
        two_gateways(pg_url) as (_gateway_a, url_a, gateway_b, url_b),
        _api(url_a) as api_a,
        _api(url_b) as api_b,
        api_b.stream("GET", "/v1/events") as stream,
    ):
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        await asyncio.sleep(0.3)  # B's feed has read the empty log and sleeps
        woken_before = gateway_b.notifier.generation
        started = time.monotonic()
        created = await api_a.post(
            "/v1/handoffs",
            json={"conversation_id": "conv-x", "user": {"id": "u-x", "name": "Ada"}},
        )
        assert created.status_code == 201, created.text
        async with asyncio.timeout(15):
            event = await _next_sse_event(lines)
        latency = time.monotonic() - started
        assert event["type"] == "handoff.started"
        assert event["handoff_id"] == created.json()["id"]
        # B commits nothing (no relay, no request that writes): only NOTIFY woke it
        assert gateway_b.notifier.generation > woken_before
        print(f"\nSSE on app B got app A's event after {latency * 1000:.0f} ms")


def _delivery(chat_id: str, thread_id: str, event_id: str, author: str) -> dict[str, Any]:
    return {
        "webhook_id": "wh-1",
        "secret_key": WEBHOOK_SECRET,
        "action": "incoming_event",
        "organization_id": None,
        "payload": {
            "chat_id": chat_id,
            "thread_id": thread_id,
            "event": {
                "id": event_id,
                "type": "message",
                "text": f"agent says {event_id}",
                "author_id": author,
                "created_at": "2024-05-01T10:00:00.000000Z",
                "visibility": "all",
            },
        },
        "additional_data": {},
    }


async def test_one_delivery_reaching_two_apps_at_once_is_recorded_once(pg_url: str) -> None:
    async with two_gateways(pg_url) as (gateway_a, url_a, _gateway_b, url_b):
        async with _api(url_a) as api_a, httpx.AsyncClient(timeout=15.0) as hooks:
            created = await api_a.post(
                "/v1/handoffs", json={"conversation_id": "conv-d", "user": {"id": "u-d"}}
            )
            handoff_id = created.json()["id"]
            async with asyncio.timeout(15):
                while (await api_a.get(f"/v1/handoffs/{handoff_id}")).json()["livechat"][
                    "chat_id"
                ] is None:
                    await asyncio.sleep(0.02)
            livechat = (await api_a.get(f"/v1/handoffs/{handoff_id}")).json()["livechat"]
            org = gateway_a.settings.livechat_organization_id
            deliveries = [
                {
                    **_delivery(livechat["chat_id"], livechat["thread_id"], f"EV{n}", "a@x"),
                    "organization_id": org,
                }
                for n in range(10)
            ]
            # every delivery four times, to both apps, all at once
            posts = [
                hooks.post(f"{base}/livechat/webhooks", json=body)
                for body in deliveries
                for base in (url_a, url_b, url_a, url_b)
            ]
            answers = await asyncio.gather(*posts)
        assert [a.status_code for a in answers] == [200] * len(posts)
        async with gateway_a.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        outbox.c.handoff_id == handoff_id,
                        outbox.c.target == str(OutboxTarget.INBOUND),
                        outbox.c.kind == "incoming_event",
                    )
                )
            ).scalar_one()
            keys = (
                await conn.execute(
                    select(func.count())
                    .select_from(dedup_keys)
                    .where(dedup_keys.c.key.like("lc:incoming_event:%"))
                )
            ).scalar_one()
        assert (rows, keys) == (10, 10)
