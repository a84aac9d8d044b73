"""/healthz, /readyz and /metrics on a wired gateway."""

from __future__ import annotations

import re
from typing import Any

import httpx

from livechat_hitl.livechat.auth import AgentCredentials
from livechat_hitl.livechat.client import LiveChatClient


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


async def metrics_text(env: Any) -> str:
    response = await env.api.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_healthz_answers(make_env: Any) -> None:
    async with make_env() as env:
        response = await env.api.get("/healthz", headers={"Authorization": ""})
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_readyz_follows_livechat(make_env: Any) -> None:
    async with make_env() as env:
        ready = await env.api.get("/readyz", headers={"Authorization": ""})
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok", "livechat": "ok"}

        env.sim.inject_fault("500", count=20)
        failing = await env.api.get("/readyz", headers={"Authorization": ""})
        assert failing.status_code == 503
        assert failing.json()["checks"]["store"] == "ok"
        assert failing.json()["checks"]["livechat"] != "ok"
        env.sim.core.faults.clear()
        assert (await env.api.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_livechat_is_unreachable(make_env: Any) -> None:
    async with make_env() as env, httpx.AsyncClient(timeout=2) as http:
        settings = env.gateway.settings
        token = settings.livechat_basic_token.get_secret_value()
        wired = env.gateway.livechat
        # the same gateway, its LiveChat URL now a closed loopback port
        env.gateway.livechat = LiveChatClient(
            http,
            api_url="http://127.0.0.1:9",
            accounts_url="http://127.0.0.1:9",
            agent_credentials=AgentCredentials.from_agent_token(token),
            client_id=settings.livechat_client_id,
            organization_id=settings.livechat_organization_id,
            redirect_uri=settings.public_url,
        )
        try:
            response = await env.api.get("/readyz")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "not ready"
            assert body["checks"]["store"] == "ok"
            assert body["checks"]["livechat"].startswith("failing")
        finally:
            env.gateway.livechat = wired
        assert (await env.api.get("/readyz")).status_code == 200


async def test_metrics_expose_the_gateway(make_env: Any) -> None:
    async with make_env() as env:
        before = await metrics_text(env)
        delivered_before = sample(
            before, "hitl_outbox_deliveries_total", target="bot_webhook", outcome="delivered"
        )
        ingest_before = sample(before, "hitl_livechat_webhook_ingest_seconds_count", status="200")
        assign_before = sample(before, "hitl_time_to_assign_seconds_count")

        await env.assigned("conv-m1")
        await env.queued("conv-m2")
        closing = await env.queued("conv-m3")
        await env.api.post(f"/v1/handoffs/{closing['id']}/close")
        await env.settle()

        text = await metrics_text(env)
        assert sample(text, "hitl_handoffs", state="assigned") == 1
        assert sample(text, "hitl_handoffs", state="queued") == 1
        assert sample(text, "hitl_handoffs", state="closed") == 1
        assert sample(text, "hitl_handoffs", state="failed") == 0
        assert "hitl_outbox_backlog 0.0" in text
        delivered = sample(
            text, "hitl_outbox_deliveries_total", target="bot_webhook", outcome="delivered"
        )
        assert delivered - delivered_before == len(env.bot.events)
        ingested = sample(text, "hitl_livechat_webhook_ingest_seconds_count", status="200")
        assert ingested > ingest_before
        assert sample(text, "hitl_time_to_assign_seconds_count") == assign_before + 1
        for name in (
            "hitl_outbox_delivery_seconds_count",
            "hitl_livechat_webhook_ingest_seconds_bucket",
        ):
            assert name in text

        # a backlog shows while the relay is stopped
        await env.gateway.relay.stop()
        await env.start_handoff("conv-m4")
        assert "hitl_outbox_backlog 1.0" in await metrics_text(env)
