"""The baseline: a bare ASGI app on the same server stack as `livechat-hitl serve`.

It reads the request body and answers 200 with a small JSON body, nothing else, under
uvicorn with the flags `serve` uses (uvloop and httptools when installed, no log
config, proxy headers). The gateway's throughput is printed as a ratio to this one's,
measured by the same load generator in the same run, so figures from different
machines compare.

Run: `python -m bench.baseline_app PORT`.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"11")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def serve(asgi_app: Any, port: int) -> None:
    """Run `asgi_app` with the flags of `livechat-hitl serve` (cli.py), so only the app
    differs."""
    config = uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


def main() -> None:
    serve(app, int(sys.argv[1]))


if __name__ == "__main__":
    main()
