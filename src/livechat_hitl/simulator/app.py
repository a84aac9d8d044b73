"""The simulator's ASGI app and the `Simulator` object tests and the sandbox drive.

One app serves both LiveChat hosts' paths: `/v3.6/...` (api.livechatinc.com),
`/v2/...` (accounts.livechat.com) and `/cdn/...` (files), plus `/_sim/` control routes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livechat_hitl.livechat.wire import API_VERSION

from . import agent_api, configuration_api, customer_api
from .accounts import customer_token
from .config import Clock, SimulatorConfig
from .control import Controls, control_routes
from .core import Core
from .errors import OAuthError, SimError, validation
from .files import CDN_PREFIX
from .world import Json, Requester, World

log = logging.getLogger("livechat_hitl.simulator")


class Simulator(Controls):
    """A LiveChat stand-in. `async with sim:` runs its webhook emitter."""

    def __init__(
        self, config: SimulatorConfig, webhook_http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.core = Core(config, webhook_http)
        self.app = self._build_app()

    @property
    def clock(self) -> Clock:
        return self.core.clock

    @property
    def world(self) -> World:
        return self.core.world

    async def __aenter__(self) -> Simulator:
        await self.core.emitter.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.core.emitter.__aexit__(exc_type, exc, tb)

    async def drain(self, timeout: float | None = 30.0) -> None:
        """Wait until every webhook delivery (with its retries) has settled."""
        await self.core.emitter.drain(timeout)

    # --- HTTP ------------------------------------------------------------------------

    def _error(self, error: SimError) -> JSONResponse:
        status = self.config.error_status.get(error.type, 400)
        return JSONResponse(error.body(), status_code=status, headers=error.headers)

    async def _body(self, request: Request, method: str) -> Json:
        if method == "upload_file":
            return await self._upload(request)
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise validation("Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise validation("Request body must be a JSON object")
        return body

    async def _upload(self, request: Request) -> Json:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise validation("upload_file needs multipart/form-data with a `file` part")
        try:
            form = await request.form(max_part_size=64 * 1024 * 1024)
        except Exception:
            raise validation("Malformed multipart body") from None
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise validation("`file` is required")
        content = await part.read()
        stored = self.core.files.put(part.filename or "file", content, part.content_type)
        return {"url": stored.url}

    async def _api(self, request: Request, api: str) -> Response:
        method = request.path_params["method"]
        try:
            if request.path_params["version"] != API_VERSION:
                raise SimError("unsupported_version")
            region = request.headers.get("x-region")
            if region and region != self.config.region:
                raise SimError("misdirected_request", data={"region": self.config.region})
            await self.core.faults.apply(method, region)
            handlers: dict[str, Any] = {
                "agent": agent_api.HANDLERS,
                "customer": customer_api.HANDLERS,
                "configuration": configuration_api.HANDLERS,
            }[api]
            requester = self._authenticate(request, api, method)
            if method == "upload_file" and api in ("agent", "customer"):
                return JSONResponse(await self._upload(request))
            handler = handlers.get(method)
            if handler is None:
                raise SimError("not_found", f"Unknown method `{method}`")
            body = await self._body(request, method)
            return JSONResponse(handler(self.core, requester, body))
        except SimError as error:
            return self._error(error)

    def _authenticate(self, request: Request, api: str, method: str) -> Requester | None:
        authorization = request.headers.get("authorization")
        if api == "customer":
            organization_id = request.query_params.get("organization_id")
            if not organization_id:
                raise validation("`organization_id` query parameter is required")
            if organization_id != self.config.organization_id:
                raise SimError("authorization", "Unknown organization_id")
            return self.core.credentials.customer_requester(authorization)
        if api == "configuration" and method in configuration_api.UNAUTHENTICATED:
            return None
        return self.core.credentials.agent_requester(authorization)

    async def _customer_token(self, request: Request) -> Response:
        try:
            await self.core.faults.apply("customer_token")
            return await customer_token(self.core, request)
        except OAuthError as error:
            return JSONResponse(error.body(), status_code=error.status)
        except SimError as error:
            return self._error(error)

    async def _cdn(self, request: Request) -> Response:
        stored = self.core.files.get_path(request.url.path)
        if stored is None:
            return JSONResponse(SimError("not_found", "File not found").body(), status_code=404)
        return Response(stored.content, media_type=stored.content_type)

    def _build_app(self) -> Starlette:
        async def agent(request: Request) -> Response:
            return await self._api(request, "agent")

        async def customer(request: Request) -> Response:
            return await self._api(request, "customer")

        async def configuration(request: Request) -> Response:
            return await self._api(request, "configuration")

        async def on_sim_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, SimError)
            return self._error(exc)

        async def on_http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            if exc.status_code == 404:
                return self._error(SimError("not_found", "No such endpoint"))
            return self._error(SimError("validation", f"HTTP {exc.status_code}: {exc.detail}"))

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with self:
                yield

        routes = [
            Route("/v{version}/agent/action/{method}", agent, methods=["POST"]),
            Route("/v{version}/customer/action/{method}", customer, methods=["POST", "GET"]),
            Route("/v{version}/configuration/action/{method}", configuration, methods=["POST"]),
            Route("/v2/customer/token", self._customer_token, methods=["POST"]),
            Route(
                "/v2/customer/{organization_id}/{group_id}/token",
                self._customer_token,
                methods=["POST"],
            ),
            Route(CDN_PREFIX + "/{path:path}", self._cdn, methods=["GET"]),
            *control_routes(self),
        ]
        guarded = [Route(r.path, self._guard(r.endpoint), methods=r.methods) for r in routes]
        return Starlette(
            routes=guarded,
            exception_handlers={SimError: on_sim_error, HTTPException: on_http_error},
            lifespan=lifespan,
        )

    def _guard(self, endpoint: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
        """Every answer is LiveChat's envelope: `internal` only for genuine simulator bugs."""

        async def guarded(request: Request) -> Response:
            try:
                response: Response = await endpoint(request)
                return response
            except SimError as error:
                return self._error(error)
            except Exception:
                log.exception("simulator bug while serving %s", request.url.path)
                return self._error(SimError("internal"))

        return guarded


def create_simulator(
    config: SimulatorConfig, *, webhook_http: httpx.AsyncClient | None = None
) -> Simulator:
    """Build a simulator; pass `webhook_http` to deliver webhooks in-process."""
    return Simulator(config, webhook_http)
