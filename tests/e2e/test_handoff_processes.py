"""One whole handoff across real processes, as an operator runs them.

`livechat-hitl simulator` stands in for LiveChat, `livechat-hitl setup` registers the
gateway's webhooks on it, `livechat-hitl serve` runs the gateway, and a bot receiver
checks the Standard Webhooks signature of every event it gets.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from livechat_hitl.simulator.config import SANDBOX_AGENTS

from .procs import (
    LOOPBACK,
    BotReceiver,
    Process,
    Processes,
    children,
    clean_env,
    free_port,
    fresh_credentials,
    gateway_settings,
    run_command,
    wait_http,
    wait_port,
    wait_until,
)

pytestmark = pytest.mark.slow


@dataclass
class World:
    gateway_url: str
    simulator_url: str
    api: httpx.Client
    sim: httpx.Client
    bot: BotReceiver
    gateway: Process
    simulator: Process
    setup_output: str
    secrets: list[str]

    def handoff(self, handoff_id: str) -> dict[str, Any]:
        response = self.api.get(f"/v1/handoffs/{handoff_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_state(self, handoff_id: str, state: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.handoff(handoff_id))
            return seen["state"] == state

        wait_until(
            reached,
            what=f"handoff {handoff_id} to be {state} (it is {seen.get('state')})",
            alive=[self.gateway, self.simulator],
        )
        return seen

    def chat(self, chat_id: str) -> dict[str, Any]:
        chats = self.sim.get("/_sim/chats").json()
        return dict(next(c for c in chats if c["id"] == chat_id))

    def wait_bot_event(self, event_type: str, handoff_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = wait_until(
            lambda: self.bot.of_type(event_type, handoff_id),
            what=f"{event_type} at the bot (got {self.bot.types(handoff_id)})",
            alive=[self.gateway, self.simulator],
        )
        return found[-1]


@pytest.fixture
def world(processes: Processes, tmp_path: Path) -> Any:
    sim_port, gateway_port = free_port(), free_port()
    simulator_url = f"http://{LOOPBACK}:{sim_port}"
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    # Our own LiveChat credentials (not the sandbox defaults), given to both processes.
    creds = fresh_credentials("e2e")
    bot = BotReceiver(creds.bot_secret)
    bot.start()

    simulator = processes.start(
        "simulator",
        ["simulator"],
        clean_env(HITL_SIMULATOR_PORT=str(sim_port), **creds.livechat),
    )
    wait_port(sim_port, simulator)

    gateway_env = clean_env(
        **gateway_settings(
            creds,
            port=gateway_port,
            simulator_url=simulator_url,
            database=tmp_path / "gateway.db",
            bot_url=bot.url,
            HITL_API_KEYS=f"other-key,{creds.api_key}",
            HITL_LOG_LEVEL="debug",
        )
    )
    setup = run_command(["setup"], gateway_env, cwd=tmp_path)
    assert setup.returncode == 0, f"setup failed:\n{setup.stdout}\n{setup.stderr}"

    gateway = processes.start("gateway", ["serve"], gateway_env)
    wait_http(f"{gateway_url}/healthz", gateway)
    api = httpx.Client(
        base_url=gateway_url, headers={"Authorization": f"Bearer {creds.api_key}"}, timeout=10.0
    )
    sim = httpx.Client(base_url=simulator_url, timeout=10.0)
    try:
        yield World(
            gateway_url,
            simulator_url,
            api,
            sim,
            bot,
            gateway,
            simulator,
            setup.stdout + setup.stderr,
            creds.secrets,
        )
    finally:
        api.close()
        sim.close()
        bot.stop()


def test_whole_handoff_across_processes(world: World) -> None:
    assert world.api.get("/readyz").status_code == 200

    created = world.api.post(
        "/v1/handoffs",
        json={
            "conversation_id": "conv-e2e-1",
            "user": {"id": "user-e2e-1", "name": "Ada Lovelace", "email": "ada@example.com"},
            "title": "Refund for order 1234",
            "transcript": [
                {"role": "user", "text": "I want a refund for order 1234."},
                {"role": "bot", "text": "Let me get you a human."},
            ],
        },
    )
    assert created.status_code == 201, created.text
    handoff_id = created.json()["id"]

    # The simulator routes automatically: one of its human agents gets the chat.
    assigned = world.wait_state(handoff_id, "assigned")
    chat_id = assigned["livechat"]["chat_id"]
    agent_id = assigned["agent"]["id"]
    chat = world.chat(chat_id)
    customer = next(u for u in chat["users"] if u["type"] == "customer")
    assert agent_id in {email for email, _ in SANDBOX_AGENTS}
    assert agent_id != customer["id"]
    assert world.wait_bot_event("handoff.assigned", handoff_id)["data"]["agent"]["id"] == agent_id
    transcript = " ".join(e.get("text", "") for t in chat["threads"] for e in t["events"])
    assert "I want a refund for order 1234." in transcript

    # The agent answers in LiveChat; the bot gets it, signed.
    reply = world.sim.post(
        f"/_sim/chats/{chat_id}/reply", json={"agent_id": agent_id, "text": "Hello Ada, on it."}
    )
    assert reply.status_code == 200, reply.text
    message = world.wait_bot_event("handoff.message", handoff_id)
    assert message["data"]["message"]["text"] == "Hello Ada, on it."
    assert message["data"]["agent"]["id"] == agent_id
    assert message["conversation_id"] == "conv-e2e-1"

    # The bot answers; LiveChat shows it as the customer's message.
    posted = world.api.post(
        f"/v1/handoffs/{handoff_id}/messages",
        json={"type": "text", "text": "Thanks, the order is 1234.", "id": "bot-msg-1"},
    )
    assert posted.status_code == 202, posted.text

    def customer_said() -> list[dict[str, Any]]:
        events = [e for t in world.chat(chat_id)["threads"] for e in t["events"]]
        return [
            e
            for e in events
            if e.get("text") == "Thanks, the order is 1234." and e["author_id"] == customer["id"]
        ]

    assert len(wait_until(customer_said, what="the bot's message in the LiveChat chat")) == 1

    # The agent closes the chat; the bot hears why.
    closed = world.sim.post(f"/_sim/chats/{chat_id}/close", json={"agent_id": agent_id})
    assert closed.status_code == 200, closed.text
    event = world.wait_bot_event("handoff.closed", handoff_id)
    assert event["data"]["reason"] == "agent_closed"
    final = world.wait_state(handoff_id, "closed")
    assert final["close_reason"] == "agent_closed"
    assert final["closed_at"] is not None

    types = world.bot.types(handoff_id)
    assert types[0] == "handoff.started"
    assert types[-1] == "handoff.closed"
    assert types.index("handoff.assigned") < types.index("handoff.message")
    assert world.bot.bad_signatures == 0
    ids = [h["webhook-id"] for h in world.bot.headers]
    assert ids == [e["id"] for e in world.bot.events]

    # Both directions are on record, delivered.
    messages = world.api.get(f"/v1/handoffs/{handoff_id}/messages").json()["items"]
    assert [(m["direction"], m["text"], m["status"]) for m in messages] == [
        ("to_bot", "Hello Ada, on it.", "delivered"),
        ("to_agent", "Thanks, the order is 1234.", "delivered"),
    ]

    # No secret given in the environment shows up in any output, at debug level.
    outputs = world.gateway.output() + world.simulator.output() + world.setup_output
    for secret in world.secrets:
        assert secret not in outputs


def test_debug_logs_carry_no_customer_credentials(world: World) -> None:
    created = world.api.post(
        "/v1/handoffs",
        json={"conversation_id": "conv-e2e-2", "user": {"id": "user-e2e-2", "name": "Bo"}},
    )
    assert created.status_code == 201, created.text
    world.wait_state(created.json()["id"], "assigned")
    output = world.gateway.output()
    # Customer tokens the simulator issues look like LiveChat's: `dal:` + 27 characters.
    assert not re.search(r"dal:[A-Za-z0-9]{27}\b", output)
    assert "__lc_cst" not in output


def _running(pid: int) -> bool:
    """Whether `pid` still runs (an exited process nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_outbound_process_ends_with_the_gateway(world: World, how: str) -> None:
    # `serve` makes its outbound calls from one child process (HITL_OUTBOUND_PROCESS);
    # it must not outlive the gateway, however the gateway ends.
    [child] = children(world.gateway.popen.pid)
    cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    assert b"livechat_hitl.outbound_process" in cmdline
    world.gateway.popen.send_signal(getattr(signal, how))
    world.gateway.popen.wait(timeout=15)
    wait_until(lambda: not _running(child), what=f"the outbound process to end after {how}")
