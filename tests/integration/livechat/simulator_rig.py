"""Shared rig: the real LiveChat client on the real simulator, in-process (no mocks).

`Rig` holds one simulator (frozen clock, seeded ids, auto routing), the `httpx.AsyncClient`
that reaches it through `httpx.ASGITransport(sim.app)`, and the requests as they left that
client (`sent`), so tests can read which headers went out. `rig.client(...)` builds a
`LiveChatClient` with other credentials or a shorter timeout on the same transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from livechat_hitl.livechat import AgentCredentials, LiveChatClient
from livechat_hitl.livechat.accounts import CustomerIdentities, CustomerSession
from livechat_hitl.simulator import Simulator, SimulatorConfig, create_simulator

BASE = "http://sim.test"
REDIRECT_URI = "https://gateway.test"
FROZEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ALICE = "alice@sandbox.example"
BOB = "bob@sandbox.example"


def sim_config(**overrides: Any) -> SimulatorConfig:
    defaults: dict[str, Any] = {"seed": 5, "frozen_time": FROZEN, "base_url": BASE}
    defaults.update(overrides)
    return SimulatorConfig(**defaults)


@dataclass
class Rig:
    sim: Simulator
    http: httpx.AsyncClient
    sent: list[httpx.Request] = field(default_factory=list)

    @property
    def config(self) -> SimulatorConfig:
        return self.sim.config

    @property
    def api_agent(self) -> str:
        return self.sim.config.api_agent_id

    def client(
        self,
        credentials: AgentCredentials | None = None,
        *,
        timeout: float = 5.0,
    ) -> LiveChatClient:
        """A client as the gateway builds it; the PAT of the simulator unless told."""
        return LiveChatClient(
            self.http,
            api_url=BASE,
            accounts_url=BASE,
            agent_credentials=credentials
            or AgentCredentials.from_agent_token(self.sim.config.agent_token),
            client_id=self.sim.config.client_id,
            organization_id=self.sim.config.organization_id,
            redirect_uri=REDIRECT_URI,
            timeout=timeout,
        )

    def headers_of(self, action: str) -> list[httpx.Headers]:
        """Headers of every request sent to `.../<action>` (`get_chat`, `customer/token`)."""
        suffix = f"/{action}"
        return [r.headers for r in self.sent if r.url.path.endswith(suffix)]

    def identities(self, lc: LiveChatClient) -> CustomerIdentities:
        """Customer grants whose token expiry is read on the simulator's frozen clock."""
        return lc.customer_identities(clock=self.sim.clock.now)

    async def new_customer(self, lc: LiveChatClient) -> CustomerSession:
        return await self.identities(lc).cookie_grant()


@asynccontextmanager
async def open_rig(config: SimulatorConfig | None = None) -> AsyncIterator[Rig]:
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with create_simulator(config or sim_config()) as sim:
        transport = httpx.ASGITransport(sim.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE, event_hooks={"request": [record]}
        ) as http:
            yield Rig(sim, http, sent)
