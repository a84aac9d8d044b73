"""The gateway's ASGI app: doors wired to a `Gateway`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from livechat_hitl import __version__
from livechat_hitl.http import health, livechat_webhooks, openapi, problems, v1
from livechat_hitl.http.auth import ApiKeys
from livechat_hitl.http.limits import BodyLimit
from livechat_hitl.http.livechat_webhooks import WebhookDoor
from livechat_hitl.livechat.errors import LiveChatError
from livechat_hitl.runtime import Gateway

MAX_REQUEST_BYTES = 4 * 1024 * 1024


class GatewayApp(FastAPI):
    """The FastAPI app, with `POST /livechat/webhooks` handed to the `WebhookDoor` before
    any middleware or routing: LiveChat's deliveries are the bulk of the traffic, and
    the door does its own body cap, answers and metric (the route stays for the docs)."""

    webhook_door: WebhookDoor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self.webhook_door
        if (
            door is not None
            and scope["type"] == "http"
            and scope["path"] == livechat_webhooks.PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await door(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def bind(app: GatewayApp, gateway: Gateway) -> None:
    """Point the doors at a started gateway."""
    settings = gateway.settings
    app.state.gateway = gateway
    app.state.store = gateway.store
    app.state.notifier = gateway.notifier
    app.state.handoffs = gateway.handoffs
    app.state.api_keys = ApiKeys(list(settings.api_key_list))
    app.state.default_group_id = settings.livechat_group_id
    app.state.agents_accepting = gateway.agents_accepting
    secret = settings.livechat_webhook_secret
    app.webhook_door = WebhookDoor(
        gateway.store,
        gateway.committer,
        secret=secret.get_secret_value() if secret else "",
        organization_id=settings.livechat_organization_id,
    )


async def _livechat_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LiveChatError)
    return problems.problem(503, f"LiveChat did not answer as expected ({exc.type})")


def create_app(gateway: Gateway, *, manage_gateway: bool = True) -> GatewayApp:
    """The app. With `manage_gateway`, its lifespan starts and stops the gateway;
    otherwise the caller starts it and calls `bind(app, gateway)` (bound at once here
    when it is already started)."""

    @asynccontextmanager
    async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
        if manage_gateway:
            async with gateway:
                bind(app, gateway)
                yield
        else:
            yield

    app = GatewayApp(
        title="livechat-hitl",
        version=__version__,
        summary="Human-in-the-loop gateway between chatbots and LiveChat agents",
        lifespan=lifespan,
    )
    # The largest valid bot request (a long transcript) is far below this cap.
    app.add_middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)
    problems.install(app)
    app.add_exception_handler(LiveChatError, _livechat_unavailable)

    app.include_router(v1.router)
    app.include_router(livechat_webhooks.router)
    app.include_router(health.router)
    openapi.install(app)
    if not manage_gateway and gateway.started:
        bind(app, gateway)
    return app
