"""Fault injection and the `/_sim/` control routes."""

from __future__ import annotations

import asyncio
import base64

import pytest

from livechat_hitl.simulator import SimulatorConfig
from livechat_hitl.simulator.config import ConfigError

from .conftest import Harness


async def test_429_with_retry_after_then_normal(harness: Harness) -> None:
    r = await harness.http.post(
        "/_sim/faults", json={"kind": "429", "count": 2, "method": "send_event", "retry_after": 7}
    )
    assert r.status_code == 200
    assert (await harness.agent("start_chat", {})).status_code == 200  # other methods unaffected
    for _ in range(2):
        r = await harness.agent("send_event", {})
        assert r.status_code == 429
        assert r.headers["retry-after"] == "7"
        assert r.json()["error"]["type"] == "too_many_requests"
    assert (await harness.agent("send_event", {})).json()["error"]["type"] == "validation"


async def test_500_misdirected_and_hang(harness: Harness) -> None:
    harness.sim.inject_fault("500")
    r = await harness.agent("list_routing_statuses")
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "internal"
    harness.sim.inject_fault("misdirected", region="fra")
    r = await harness.agent("list_routing_statuses")
    assert r.json()["error"] == {
        "type": "misdirected_request",
        "message": "Wrong region",
        "data": {"region": "fra"},
    }
    harness.sim.inject_fault("hang", hang_seconds=5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(harness.agent("list_routing_statuses"), 0.1)
    assert (await harness.agent("list_routing_statuses")).status_code == 200


async def test_a_misdirected_fault_lets_requests_naming_its_region_through(
    harness: Harness,
) -> None:
    harness.sim.inject_fault("misdirected", region="dal")
    headers = {**harness.basic, "X-Region": "dal"}
    assert (await harness.agent("list_chats", headers=headers)).status_code == 200
    r = await harness.agent("list_chats")  # no X-Region: misdirected, the fault is spent
    assert r.json()["error"]["data"] == {"region": "dal"}
    assert (await harness.agent("list_chats")).status_code == 200


async def test_bad_fault_kind_is_validation(harness: Harness) -> None:
    r = await harness.http.post("/_sim/faults", json={"kind": "teapot"})
    assert r.json()["error"]["type"] == "validation"


async def test_control_routes_drive_a_chat(harness: Harness) -> None:
    await harness.hooks("incoming_event")
    r = await harness.http.post(
        "/_sim/agents", json={"email": "dan@sandbox.example", "name": "Dan"}
    )
    assert r.json() == {"id": "dan@sandbox.example", "name": "Dan", "status": "accepting_chats"}
    harness.sim.set_agent_status("alice@sandbox.example", "not_accepting_chats")
    harness.sim.set_agent_status("bob@sandbox.example", "not_accepting_chats")
    chat_id, _, _ = await harness.handoff_chat()
    harness.sim.set_agent_status("bob@sandbox.example", "accepting_chats")
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/reply", json={"agent_id": "dan@sandbox.example", "text": "hello"}
    )
    assert r.status_code == 200
    assert r.json()["text"] == "hello"
    content = base64.b64encode(b"PDFDATA").decode()
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/reply",
        json={
            "agent_id": "dan@sandbox.example",
            "file": {"name": "a.pdf", "content_base64": content, "content_type": "application/pdf"},
        },
    )
    file_event = r.json()
    assert (file_event["type"], file_event["name"], file_event["size"]) == ("file", "a.pdf", 7)
    assert (await harness.http.get(file_event["url"])).content == b"PDFDATA"
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/reply",
        json={
            "agent_id": "dan@sandbox.example",
            "rich_message": {"template_id": "quick_replies", "elements": [{"title": "Pick"}]},
        },
    )
    assert r.json()["template_id"] == "quick_replies"
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/reply", json={"agent_id": "alice@sandbox.example", "text": "x"}
    )
    assert r.json()["error"]["type"] == "authorization"
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/transfer", json={"agent_id": "bob@sandbox.example"}
    )
    assert r.status_code == 200
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/close", json={"agent_id": "bob@sandbox.example"}
    )
    assert r.status_code == 200
    chats = (await harness.http.get("/_sim/chats")).json()
    assert chats[0]["threads"][0]["active"] is False
    await harness.sim.drain()
    log = (await harness.http.get("/_sim/webhooks/deliveries")).json()
    assert [d["body"]["payload"]["event"].get("text") for d in log][:1] == ["hello"]
    r = await harness.http.post("/_sim/agents/bob@sandbox.example/status", json={"status": "bogus"})
    assert r.json()["error"]["type"] == "validation"
    r = await harness.http.post("/_sim/agents", content=b"{oops")
    assert r.json()["error"]["type"] == "validation"


async def test_control_accept_duplicate_and_token_routes(harness: Harness) -> None:
    r = await harness.http.post("/_sim/agent_tokens", json={"agent_id": "alice@sandbox.example"})
    token = r.json()["access_token"]
    assert token.startswith("dal:")
    r = await harness.http.post("/_sim/webhooks/duplicate", json={"count": 2, "concurrent": True})
    assert r.status_code == 200
    assert harness.sim.core.emitter._duplicates_left == 2
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    r = await harness.http.post(
        f"/_sim/chats/{chat_id}/accept", json={"agent_id": "alice@sandbox.example"}
    )
    assert r.json()["error"]["type"] == "validation"


def test_from_env_defaults_and_errors() -> None:
    config = SimulatorConfig.from_env({})
    assert config.defaulted >= {"pat", "account_id", "client_id", "organization_id", "agents"}
    assert len(config.agents) == 2
    assert config.base_url == "http://127.0.0.1:8090"
    token = base64.b64encode(b"acc-1:fra:secretpat").decode()
    config = SimulatorConfig.from_env(
        {
            "HITL_LIVECHAT_AGENT_TOKEN": token,
            "HITL_LIVECHAT_GROUP_ID": "3",
            "HITL_SIMULATOR_AGENTS": "a@x.io:Ann, b@x.io:Ben",
            "HITL_SIMULATOR_PORT": "9999",
        }
    )
    assert (config.account_id, config.pat, config.group_id) == ("acc-1", "fra:secretpat", 3)
    assert config.agents == [("a@x.io", "Ann"), ("b@x.io", "Ben")]
    assert "pat" not in config.defaulted
    assert config.region == "fra"
    with pytest.raises(ConfigError) as caught:
        SimulatorConfig.from_env(
            {
                "HITL_LIVECHAT_PAT": "x",
                "HITL_LIVECHAT_GROUP_ID": "g",
                "HITL_SIMULATOR_AGENTS": "nope",
                "HITL_LIVECHAT_ORGANIZATION_ID": "z",
                "HITL_SIMULATOR_PORT": "0",
            }
        )
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "HITL_LIVECHAT_ACCOUNT_ID",
        "HITL_LIVECHAT_ORGANIZATION_ID",
        "HITL_LIVECHAT_GROUP_ID",
        "HITL_SIMULATOR_AGENTS",
        "HITL_SIMULATOR_PORT",
    ]


def test_server_exits_2_and_never_prints_env_pat(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from livechat_hitl.simulator import server

    monkeypatch.setenv("HITL_LIVECHAT_GROUP_ID", "x")
    assert server.run_from_env() == 2
    assert "HITL_LIVECHAT_GROUP_ID" in capsys.readouterr().err
    config = SimulatorConfig.from_env(
        {"HITL_LIVECHAT_ACCOUNT_ID": "acc", "HITL_LIVECHAT_PAT": "dal:topsecret"}
    )
    text = "\n".join(server.describe(config))
    assert "topsecret" not in text
    assert "alice@sandbox.example" in text
    sandbox = "\n".join(server.describe(SimulatorConfig.from_env({})))
    assert "sandbox-pat" in sandbox
