"""Fixtures: an in-process simulator, API clients and a webhook receiver."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livechat_hitl.simulator import Simulator, SimulatorConfig, create_simulator

BASE = "http://sim.test"
HOOK_URL = "http://receiver.test/hooks"


class Receiver:
    """A webhook receiver app: records bodies, answers scripted statuses."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.bodies.append(await request.json())
            status = self.statuses.pop(0) if self.statuses else 200
            return JSONResponse({}, status_code=status)

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def actions(self) -> list[str]:
        return [b["action"] for b in self.bodies]

    def of(self, action: str) -> list[dict[str, Any]]:
        return [b["payload"] for b in self.bodies if b["action"] == action]


def make_config(**overrides: Any) -> SimulatorConfig:
    defaults: dict[str, Any] = {
        "seed": 7,
        "frozen_time": datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "webhook_retry_schedule": [0.01, 0.02, 0.03],
        "webhook_timeout": 1.0,
        "base_url": BASE,
    }
    defaults.update(overrides)
    return SimulatorConfig(**defaults)


class Harness:
    def __init__(self, sim: Simulator, http: httpx.AsyncClient, receiver: Receiver) -> None:
        self.sim = sim
        self.http = http
        self.receiver = receiver
        self.basic = {"Authorization": f"Basic {sim.config.agent_token}"}

    async def agent(self, method: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", self.basic)
        return await self.http.post(
            f"/v3.6/agent/action/{method}", json=body or {}, headers=headers, **kw
        )

    async def config_api(self, method: str, body: Any = None) -> httpx.Response:
        return await self.http.post(
            f"/v3.6/configuration/action/{method}", json=body or {}, headers=self.basic
        )

    async def customer(
        self, token: str, method: str, body: Any = None, **kw: Any
    ) -> httpx.Response:
        org = self.sim.config.organization_id
        return await self.http.post(
            f"/v3.6/customer/action/{method}?organization_id={org}",
            json=body or {},
            headers={"Authorization": f"Bearer {token}"},
            **kw,
        )

    async def customer_token(self, cookies: dict[str, str] | None = None) -> httpx.Response:
        body = {
            "grant_type": "cookie",
            "client_id": self.sim.config.client_id,
            "organization_id": self.sim.config.organization_id,
            "redirect_uri": "https://gateway.test",
            "response_type": "token",
        }
        self.http.cookies.clear()
        for name, value in (cookies or {}).items():
            self.http.cookies.set(name, value, path="/v2/customer")
        try:
            return await self.http.post("/v2/customer/token", json=body)
        finally:
            self.http.cookies.clear()

    async def new_customer(self) -> tuple[str, str]:
        data = (await self.customer_token()).json()
        return data["access_token"], data["entity_id"]

    async def hooks(self, *actions: str, **extra: Any) -> None:
        for action in actions:
            r = await self.config_api(
                "register_webhook",
                {
                    "action": action,
                    "secret_key": "s3cret",
                    "url": HOOK_URL,
                    "type": "license",
                    "owner_client_id": self.sim.config.client_id,
                    **extra,
                },
            )
            assert r.status_code == 200, r.text
        r = await self.config_api(
            "enable_license_webhooks", {"owner_client_id": self.sim.config.client_id}
        )
        assert r.status_code == 200

    async def handoff_chat(self, ignore: bool = True) -> tuple[str, str, str]:
        """The gateway's flow: agent start_chat, add customer, transfer to the group."""
        token, customer_id = await self.new_customer()
        r = await self.agent(
            "start_chat",
            {
                "chat": {
                    "access": {"group_ids": [0]},
                    "thread": {
                        "events": [{"type": "message", "text": "ctx", "visibility": "agents"}]
                    },
                }
            },
        )
        assert r.status_code == 200, r.text
        chat_id = r.json()["chat_id"]
        r = await self.agent(
            "add_user_to_chat",
            {
                "chat_id": chat_id,
                "user_id": customer_id,
                "user_type": "customer",
                "visibility": "all",
                "ignore_requester_presence": True,
            },
        )
        assert r.status_code == 200, r.text
        r = await self.agent(
            "transfer_chat",
            {
                "id": chat_id,
                "target": {"type": "group", "ids": [0]},
                "ignore_agents_availability": ignore,
            },
        )
        assert r.status_code == 200, r.text
        return chat_id, token, customer_id


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def harness(receiver: Receiver, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    marker = request.node.get_closest_marker("sim")
    overrides = marker.kwargs if marker else {}
    hook_http = httpx.AsyncClient(transport=httpx.ASGITransport(receiver.app()))
    sim = create_simulator(make_config(**overrides), webhook_http=hook_http)
    async with (
        sim,
        httpx.AsyncClient(transport=httpx.ASGITransport(sim.app), base_url=BASE) as http,
    ):
        yield Harness(sim, http, receiver)
        await sim.drain()
    await hook_http.aclose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**overrides): SimulatorConfig overrides")
