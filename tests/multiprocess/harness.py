"""Pieces of the multi-process world: child processes with captured logs, a round-robin
proxy in front of the gateways, a Standard Webhooks bot receiver, uvicorn in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LOOPBACK = "127.0.0.1"
CLI = str(Path(sys.executable).with_name("livechat-hitl"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- child processes -------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Children:
    """Every process the test started; killed (SIGKILL) by `kill_all`, always."""

    log_dir: Path
    env: Mapping[str, str]
    started: list[Child] = field(default_factory=list)

    def spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as sink:
            process = subprocess.Popen(
                [CLI, *args],
                env={**os.environ, **self.env, **(env or {})},
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        child = Child(name, process, log_path)
        self.started.append(child)
        return child

    def run(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> str:
        child = self.spawn(name, *args, env=env)
        code = child.process.wait(timeout=60)
        if code != 0:
            raise AssertionError(f"{name} exited with {code}:\n{child.log()}")
        return child.log()

    def kill_all(self) -> None:
        for child in self.started:
            child.kill()

    def dump_logs(self) -> None:
        for child in self.started:
            print(
                f"\n===== {child.name} (exit {child.process.poll()}) =====\n{child.log()[-20000:]}"
            )


async def wait_http(url: str, child: Child | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if child is not None and child.process.poll() is not None:
                raise AssertionError(f"{child.name} exited early:\n{child.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s")
            await asyncio.sleep(0.1)


# -- in-process servers ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task


_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class RoundRobinProxy:
    """A tiny load balancer: each request goes to the next gateway that accepts a
    connection; one that refuses is skipped from then on. A request that reached a
    gateway which then died answers 502 (the caller retries, as behind a real one)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.dead: set[str] = set()
        self.forwarded: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self._next = 0
        self._http = httpx.AsyncClient(timeout=30.0)

    def _pick(self) -> str | None:
        alive = [b for b in self.backends if b not in self.dead]
        if not alive:
            return None
        backend = alive[self._next % len(alive)]
        self._next += 1
        return backend

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        for _ in range(len(self.backends)):
            backend = self._pick()
            if backend is None:
                break
            url = f"{backend}{request.url.path}"
            if request.url.query:
                url += f"?{request.url.query}"
            try:
                answer = await self._http.request(
                    request.method, url, content=body, headers=headers
                )
            except httpx.ConnectError:
                self.dead.add(backend)
                continue
            except httpx.HTTPError as exc:
                self.failed[backend] += 1
                return JSONResponse({"proxy": f"{type(exc).__name__}"}, status_code=502)
            self.forwarded[backend] += 1
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            kept.pop("content-encoding", None)
            return Response(answer.content, status_code=answer.status_code, headers=kept)
        return JSONResponse({"proxy": "no gateway answers"}, status_code=503)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=methods)])

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass
class BotReceiver:
    """The bot's webhook endpoint: verifies every Standard Webhooks signature and keeps
    each delivery (a redelivery keeps its `webhook-id`)."""

    secret: str
    deliveries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bad_signatures: int = 0

    def app(self) -> Starlette:
        verifier = Webhook(self.secret)

        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verifier.verify(body, dict(request.headers))
            except Exception:
                self.bad_signatures += 1
                return JSONResponse({}, status_code=400)
            self.deliveries.append((request.headers["webhook-id"], json.loads(body)))
            return JSONResponse({})

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def unique(self) -> dict[str, dict[str, Any]]:
        """First delivery of each webhook-id, in arrival order."""
        seen: dict[str, dict[str, Any]] = {}
        for webhook_id, event in self.deliveries:
            seen.setdefault(webhook_id, event)
        return seen
