"""In-process gateway + LiveChat simulator + bot receiver, wired by ASGI transports.

No sockets: the gateway calls the simulator through `httpx.ASGITransport(sim.app)`, the
simulator delivers webhooks through `httpx.ASGITransport(gateway_app)`, and bot events
go to an in-process receiver that verifies Standard Webhooks signatures.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livechat_hitl.config import Settings
from livechat_hitl.http.app import bind, create_app
from livechat_hitl.outbox.retry import RetryPolicy
from livechat_hitl.runtime import Gateway
from livechat_hitl.simulator import Simulator, SimulatorConfig, create_simulator

SIM = "http://sim.test"
GATEWAY = "http://gateway.test"
BOT = "http://bot.test"
FILES = "http://files.test"
API_KEY = "test-api-key"
WEBHOOK_SECRET = "test-livechat-webhook-secret"
BOT_SECRET = "whsec_" + base64.b64encode(b"bot-signing-secret-for-tests-123").decode()


@dataclass
class BotReceiver:
    """The bot's webhook endpoint: verifies every signature, records events in order."""

    secret: str
    events: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # scripted answers, then 200
    bad_signatures: int = 0

    def app(self) -> Starlette:
        verifier = Webhook(self.secret)

        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                verifier.verify(body, headers)
            except Exception:
                self.bad_signatures += 1
                return JSONResponse({}, status_code=400)
            self.deliveries.append(
                {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
            )
            status = self.statuses.pop(0) if self.statuses else 200
            if status < 300:
                self.events.append(json.loads(body))
            return JSONResponse({}, status_code=status)

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def types(self, handoff_id: str | None = None) -> list[str]:
        return [
            e["type"] for e in self.events if handoff_id is None or e["handoff_id"] == handoff_id
        ]


def file_server(files: dict[str, tuple[bytes, str]]) -> Starlette:
    async def serve(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            return Response(status_code=404)
        return Response(found[0], media_type=found[1])

    return Starlette(routes=[Route("/{name}", serve)])


class Env:
    """One wired world. `api` talks to the gateway as a bot would."""

    def __init__(
        self,
        sim: Simulator,
        gateway: Gateway,
        api: httpx.AsyncClient,
        bot: BotReceiver,
        files: dict[str, tuple[bytes, str]],
    ) -> None:
        self.sim = sim
        self.gateway = gateway
        self.api = api
        self.bot = bot
        self.files = files
        self.agents = [email for email, _ in sim.config.agents]
        self.app: Any = None  # the gateway's ASGI app (to serve it on a real socket)

    async def start_handoff(self, conversation_id: str = "conv-1", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "conversation_id": conversation_id,
            "user": {"id": f"user-{conversation_id}", "name": "Ada", "email": "ada@example.com"},
            **extra,
        }
        response = await self.api.post("/v1/handoffs", json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def handoff(self, handoff_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/handoffs/{handoff_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the simulator delivered every webhook and the outbox is empty."""
        async with asyncio.timeout(timeout):
            while True:
                await self.sim.drain()
                if await self.gateway.store.outbox_backlog() == 0:
                    await self.sim.drain()
                    if await self.gateway.store.outbox_backlog() == 0:
                        return
                await asyncio.sleep(0.01)

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.01)

    async def wait_state(
        self, handoff_id: str, state: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def reached() -> bool:
            found.update(await self.handoff(handoff_id))
            return found["state"] == state

        try:
            await self.wait_for(reached, timeout)
        except TimeoutError:
            lost = [
                (d["action"], d["outcome"], d["attempts"])
                for d in self.sim.deliveries()
                if d["outcome"] != "delivered"
            ]
            backlog = [
                (r.kind, str(r.status), r.attempts, r.last_error)
                for r in await self.gateway.store.list_outbox(limit=1000)
                if str(r.status) != "delivered"
            ]
            raise AssertionError(
                f"handoff stayed {found.get('state')}, wanted {state}; "
                f"webhooks not delivered: {lost}; outbox not done: {backlog}"
            ) from None
        return found

    async def queued(self, conversation_id: str = "conv-1", **extra: Any) -> dict[str, Any]:
        """Start a handoff and wait until LiveChat has queued its chat (manual routing)."""
        handoff = await self.start_handoff(conversation_id, **extra)
        return await self.wait_state(handoff["id"], "queued")

    async def assigned(
        self, conversation_id: str = "conv-1", agent: int = 0, **extra: Any
    ) -> dict[str, Any]:
        """Start a handoff and have `self.agents[agent]` accept it."""
        handoff = await self.queued(conversation_id, **extra)
        self.sim.accept_chat(self.agents[agent], handoff["livechat"]["chat_id"])
        return await self.wait_state(handoff["id"], "assigned")

    def events(self, handoff_id: str | None = None, type_: str | None = None) -> list[Any]:
        """Bot events received so far (of one handoff, of one type)."""
        return [
            e
            for e in self.bot.events
            if (handoff_id is None or e["handoff_id"] == handoff_id)
            and (type_ is None or e["type"] == type_)
        ]

    async def wait_event(
        self, handoff_id: str, type_: str, count: int = 1, timeout: float = 10.0
    ) -> list[Any]:
        """Wait until the bot received `count` events of this type; return them."""
        try:
            await self.wait_for(lambda: len(self.events(handoff_id, type_)) >= count, timeout)
        except TimeoutError:
            got = self.bot.types(handoff_id)
            raise AssertionError(f"wanted {count} x {type_}, the bot got {got}") from None
        return self.events(handoff_id, type_)

    async def post_webhook(
        self, body: Any, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST to the gateway's LiveChat door as LiveChat would (no API key)."""
        if content is None:
            content = json.dumps(body).encode()
        return await self.api.post(
            "/livechat/webhooks",
            content=content,
            headers={"Content-Type": "application/json", "Authorization": "", **(headers or {})},
        )

    def chat(self, chat_id: str) -> dict[str, Any]:
        return next(c for c in self.sim.list_chats() if c["id"] == chat_id)

    def chat_events(self, chat_id: str) -> list[dict[str, Any]]:
        return [e for t in self.chat(chat_id)["threads"] for e in t["events"]]


def sim_config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "seed": 11,
        # Short retries keep tests fast; a generous timeout keeps a loaded machine (two
        # cores, other suites on the same PostgreSQL) from losing a delivery outright.
        "webhook_retry_schedule": [0.02, 0.1, 0.5],
        "webhook_timeout": 10.0,
        "base_url": SIM,
        "routing_mode": "manual",
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def gateway_settings(database_url: str, sim: SimulatorConfig, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "public_url": GATEWAY,
        "api_keys": API_KEY,
        "bot_webhook_url": f"{BOT}/hooks",
        "bot_webhook_secret": BOT_SECRET,
        "livechat_api_url": SIM,
        "livechat_accounts_url": SIM,
        "livechat_agent_token": sim.agent_token,
        "livechat_client_id": sim.client_id,
        "livechat_organization_id": sim.organization_id,
        "livechat_webhook_secret": WEBHOOK_SECRET,
        "livechat_group_id": sim.group_id,
        "fetch_allowlist": "files.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


FAST_RETRIES = RetryPolicy(base=0.01, cap=0.2, max_age=timedelta(hours=24))


@pytest.fixture
def make_env(database_url: str) -> Callable[..., Any]:
    """`async with make_env(**settings) as env:` builds and tears down one world,
    on each store backend (see tests/conftest.py). `run_relay=False` leaves the outbox
    relay stopped (drive it with `env.gateway.relay.run_once()` or `.start()`)."""
    import contextlib

    @contextlib.asynccontextmanager
    async def build(
        *,
        sim_overrides: dict[str, Any] | None = None,
        run_relay: bool = True,
        **overrides: Any,
    ) -> AsyncIterator[Env]:
        config = sim_config(**(sim_overrides or {}))
        settings = gateway_settings(
            overrides.pop("database_url", database_url), config, **overrides
        )
        bot = BotReceiver(BOT_SECRET)
        files: dict[str, tuple[bytes, str]] = {}
        holder: dict[str, Any] = {}

        gateway_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_late(holder)), base_url=GATEWAY
        )
        sim = create_simulator(config, webhook_http=gateway_http)
        sim_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM)
        files_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=file_server(files)), base_url=FILES
        )
        gateway = Gateway(
            settings,
            livechat_http=sim_http,
            bot_transport=httpx.ASGITransport(app=bot.app()),
            fetch_http=files_http,
            retry_policy=FAST_RETRIES,
            run_relay=run_relay,
        )
        app = create_app(gateway, manage_gateway=False)
        holder["app"] = app
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=GATEWAY,
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        async with sim, gateway:
            bind(app, gateway)
            registered = await _register_webhooks(gateway)
            assert not registered.problems, registered.problems
            env = Env(sim, gateway, api, bot, files)
            env.app = app
            try:
                yield env
            finally:
                await gateway.relay.stop()  # a test may have started it by hand
                await api.aclose()
        for client in (gateway_http, sim_http, files_http):
            await client.aclose()

    return build


def _late(holder: dict[str, Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    return app


async def _register_webhooks(gateway: Gateway) -> Any:
    from livechat_hitl.livechat.setup import setup_livechat

    return await setup_livechat(
        gateway.livechat,
        webhook_url=f"{GATEWAY}/livechat/webhooks",
        secret=WEBHOOK_SECRET,
        group_id=gateway.settings.livechat_group_id,
    )
