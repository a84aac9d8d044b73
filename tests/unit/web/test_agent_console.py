"""The agent console over an in-process simulator: page, actions, redirects, errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from livechat_hitl.simulator import Simulator, SimulatorConfig, create_simulator
from livechat_hitl.web.console import create_console_app

SIM = "http://sim.test"
ALICE, BOB = "alice+agent@sandbox.example", "bob@sandbox.example"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(
        seed=5,
        base_url=SIM,
        routing_mode="manual",
        route_agent_started_chats=True,
        agents=[(ALICE, "Alice Agent"), (BOB, "Bob Agent")],
    )
    async with create_simulator(config) as simulator:
        yield simulator


def console_client(sim: Simulator, transport: httpx.AsyncBaseTransport | None = None) -> Any:
    console = create_console_app(
        SIM, list(sim.config.agents), transport or httpx.ASGITransport(app=sim.app)
    )
    app = Starlette(routes=[Mount("/console", app=console)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def start_chat(sim: Simulator, text: str) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM) as http:
        response = await http.post(
            "/v3.6/agent/action/start_chat",
            json={
                "chat": {
                    "access": {"group_ids": [0]},
                    "thread": {
                        "events": [{"type": "message", "text": text, "visibility": "agents"}]
                    },
                }
            },
            headers={"Authorization": f"Basic {sim.config.agent_token}"},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["chat_id"])


def status_of(page: str, chat_id: str) -> str:
    found = re.search(rf'data-chat-id="{chat_id}" data-status="(\w+)"', page)
    assert found, page
    return found.group(1)


async def test_accept_reply_close_redirect_back_to_the_console_page(sim: Simulator) -> None:
    chat_id = await start_chat(sim, "Transcript: the parcel never came.")
    async with console_client(sim) as console:
        page = await console.get("/console/", params={"agent": ALICE})
        assert page.status_code == 200
        assert status_of(page.text, chat_id) == "queued"
        assert "Transcript: the parcel never came." in page.text
        assert f'action="chats/{chat_id}/accept"' in page.text

        for action, form in [
            ("accept", {}),
            ("reply", {"text": "Hello & welcome?"}),
            ("close", {}),
        ]:
            answer = await console.post(
                f"/console/chats/{chat_id}/{action}", data={"agent": ALICE, **form}
            )
            assert answer.status_code == 303
            location = urlsplit(answer.headers["location"])
            # Back to the page itself, not relative to the action's URL.
            assert location.path == "/console/"
            assert parse_qs(location.query) == {"agent": [ALICE]}
            followed = await console.get(answer.headers["location"])
            assert followed.status_code == 200

        assert status_of(followed.text, chat_id) == "closed"
        assert "Hello &amp; welcome?" in followed.text


async def test_a_refused_action_comes_back_as_a_readable_error(sim: Simulator) -> None:
    chat_id = await start_chat(sim, "hi")
    async with console_client(sim) as console:
        # Replying before accepting: the simulator refuses, as LiveChat would.
        answer = await console.post(
            f"/console/chats/{chat_id}/reply", data={"agent": ALICE, "text": "too early"}
        )
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["agent"] == [ALICE]
        [error] = query["error"]
        page = await console.get(answer.headers["location"])
        assert re.search(r'role="alert" id="error">([^<]+)<', page.text).group(1) == error
        assert "too early" not in page.text


async def test_a_missing_simulator_is_reported_on_the_page(sim: Simulator) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with console_client(sim, httpx.MockTransport(refuse)) as console:
        page = await console.get("/console/")
        assert page.status_code == 502
        assert "not reachable" in page.text
        answer = await console.post("/console/chats/X/accept", data={"agent": ALICE})
        assert answer.status_code == 303
        assert "not reachable" in parse_qs(urlsplit(answer.headers["location"]).query)["error"][0]


async def test_transfer_hands_the_chat_to_the_other_agent(sim: Simulator) -> None:
    chat_id = await start_chat(sim, "hi")
    async with console_client(sim) as console:
        await console.post(f"/console/chats/{chat_id}/accept", data={"agent": ALICE})
        page = await console.get("/console/", params={"agent": ALICE})
        assert f'<option value="{BOB}">Bob Agent</option>' in page.text
        answer = await console.post(
            f"/console/chats/{chat_id}/transfer", data={"agent": ALICE, "to": BOB}
        )
        assert "error" not in parse_qs(urlsplit(answer.headers["location"]).query)
        as_alice = await console.get(answer.headers["location"])
        assert "Assigned to another agent" in as_alice.text
        assert 'name="send"' not in as_alice.text
        as_bob = await console.get("/console/", params={"agent": BOB})
        assert status_of(as_bob.text, chat_id) == "assigned"
        assert 'name="send"' in as_bob.text
