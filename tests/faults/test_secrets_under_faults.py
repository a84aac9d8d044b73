"""No secret in any output (issue 4, security): the gateway runs at debug level through a
whole handoff plus failures (LiveChat 429/500/hang, the bot endpoint 500 then 410, a
LiveChat delivery with the wrong secret, a bot with a wrong API key), and no configured
secret, nor any customer token or cookie LiveChat issued, shows in anything any process
printed."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.procs import Processes

from .harness import call, inject, start_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check}")


async def test_debug_output_of_every_process_carries_no_secret(
    processes: Processes, tmp_path: Path
) -> None:
    world = start_world(processes, tmp_path, HITL_LOG_LEVEL="debug")
    env = world.gateway_env
    agent_token = base64.b64encode(
        f"{env['HITL_LIVECHAT_ACCOUNT_ID']}:{env['HITL_LIVECHAT_PAT']}".encode()
    ).decode()
    auth = {"Authorization": f"Bearer {world.api_key}"}
    try:
        async with (
            httpx.AsyncClient(base_url=world.gateway_url, headers=auth, timeout=10) as api,
            httpx.AsyncClient(base_url=world.sim_url, timeout=30) as sim,
        ):
            # LiveChat fails the start and the first sends in every way it can.
            for kind in ("429", "500", "hang"):
                await inject(world.sim_url, kind=kind, method="send_event", hang_seconds=3)
            await inject(world.sim_url, kind="500", method="start_chat")
            body = {
                "conversation_id": "conv-secrets",
                "user": {"id": "user-secrets", "name": "Ada", "email": "ada@example.com"},
                "transcript": [{"role": "user", "text": "my order is late"}],
            }
            created = await call(api, "POST", "/v1/handoffs", ok=(201,), json=body)
            handoff_id = created.json()["id"]

            async def assigned() -> dict[str, Any] | None:
                answer = await api.get(f"/v1/handoffs/{handoff_id}")
                return answer.json() if answer.json()["state"] == "assigned" else None

            handoff = await _until(assigned)
            chat_id, agent_id = handoff["livechat"]["chat_id"], handoff["agent"]["id"]
            for i in range(4):
                message = {"type": "text", "text": f"bot line {i}", "id": f"s-{i}"}
                await call(
                    api, "POST", f"/v1/handoffs/{handoff_id}/messages", ok=(202,), json=message
                )
            # The bot's endpoint fails (500), then is gone (410).
            world.bot.mode = "error"
            await sim.post(
                f"/_sim/chats/{chat_id}/reply", json={"agent_id": agent_id, "text": "hello"}
            )
            await _until(lambda: world.bot.answered["error"] >= 2)
            world.bot.mode = "gone"
            await _until(lambda: world.bot.answered["gone"] >= 1, timeout=20)
            await sim.post(
                f"/_sim/chats/{chat_id}/reply", json={"agent_id": agent_id, "text": "again"}
            )
            # A delivery with the wrong secret; a bot with a wrong API key.
            forged = {
                "webhook_id": "w",
                "secret_key": "not-the-secret",
                "action": "incoming_event",
                "organization_id": env["HITL_LIVECHAT_ORGANIZATION_ID"],
                "payload": {},
                "additional_data": {},
            }
            door = await api.post("/livechat/webhooks", json=forged, headers={"Authorization": ""})
            assert door.status_code == 401
            wrong = await api.get(
                "/v1/handoffs", headers={"Authorization": f"Bearer {world.api_key}x"}
            )
            assert wrong.status_code == 401

            async def messages_sent() -> bool:
                items = (await api.get(f"/v1/handoffs/{handoff_id}/messages")).json()["items"]
                mine = [m for m in items if m["direction"] == "to_agent"]
                return len(mine) == 4 and all(m["status"] == "delivered" for m in mine)

            await _until(messages_sent, timeout=60)
            closed = await api.post(f"/v1/handoffs/{handoff_id}/close")
            assert closed.status_code == 200
            await asyncio.sleep(1.0)
            metrics = (await api.get("/metrics")).text
        assert "hitl_bot_webhook_gone 1.0" in metrics
    finally:
        world.bot.stop()
        processes.stop_all()  # flush and close every output

    issued: list[str] = []
    for token, cookies in world.sql("SELECT access_token, cookies FROM identities"):
        issued.append(str(token))
        for value in (json.loads(cookies).get("cookies") or {}).values():
            issued.append(str(value))
    assert issued, "LiveChat issued no customer token: the check would prove nothing"
    configured = [*world.secrets, agent_token]
    outputs = {p.name: p.output() for p in processes.started}
    outputs["setup"] = world.setup_output
    assert "debug" in outputs["gateway-1"].lower() or "DEBUG" in outputs["gateway-1"]
    leaks = [
        (name, secret[:6] + "…")
        for name, text in outputs.items()
        for secret in [*configured, *issued]
        if secret and secret in text
    ]
    assert leaks == []
