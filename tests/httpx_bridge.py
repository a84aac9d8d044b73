"""A loopback HTTP server in front of an `httpx.MockTransport`-style handler.

The gateway's busy paths talk HTTP through aiohttp (`outbound.AiohttpTransport`), not
through httpx's transports, so a scripted handler written for `httpx.MockTransport`
cannot stand in for the other side there. `bridged(handler, base)` serves it on
127.0.0.1: each request is handed to `handler` as the `httpx.Request` it would have
been for `base` (same method, path, query, headers and body), and the handler's
`httpx.Response` goes back over the wire. A handler that raises cuts the connection.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from aiohttp import web

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}


@asynccontextmanager
async def bridged(handler: Handler, base: str) -> AsyncIterator[str]:
    """Serve `handler` on loopback; yields the server's base URL."""

    async def relay(request: web.Request) -> web.StreamResponse:
        as_httpx = httpx.Request(
            request.method,
            base.rstrip("/") + request.raw_path,
            headers=[(k, v) for k, v in request.headers.items() if k.lower() != "host"],
            content=await request.read(),
        )
        try:
            answer = handler(as_httpx)
            response = await answer if inspect.isawaitable(answer) else answer
        except Exception:
            assert request.transport is not None
            request.transport.close()  # what a failed exchange looks like on the wire
            raise
        body = await response.aread()
        headers = [(k, v) for k, v in response.headers.multi_items() if k not in _HOP_BY_HOP]
        out = web.Response(status=response.status_code, body=body)
        for name, value in headers:
            out.headers.add(name, value)
        return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
