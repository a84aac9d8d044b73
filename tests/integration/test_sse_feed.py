"""`GET /v1/events`: the event log as Server-Sent Events, with `Last-Event-ID` resume.

httpx's ASGITransport buffers a whole response, so an endless stream is read from the
real route served by uvicorn on a loopback port of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn

KEY = "Bearer test-api-key"  # the harness's bot API key


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(5):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        try:
            async with asyncio.timeout(5):
                await task
        finally:
            sock.close()


async def read_events(
    base: str, count: int, *, last_event_id: str | None = None, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Open the stream, parse `count` events (id, event, data), and hang up."""
    headers = {"Authorization": KEY}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", "/v1/events", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line == "":
                        if "data" in current:
                            events.append(current)
                            if len(events) == count:
                                return events
                        current = {}
                        continue
                    if line.startswith(":"):
                        continue
                    key, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    current[key] = json.loads(value) if key == "data" else value
    raise AssertionError(f"the stream ended after {len(events)} events")


async def test_stream_resume_and_follow(make_env: Any) -> None:
    async with make_env() as env:
        assert env.api.headers["Authorization"] == KEY
        handoff = await env.assigned("conv-sse")
        await env.settle()
        logged = [e["id"] for e in env.bot.events]
        assert len(logged) == 3
        async with served(env.app) as base:
            first = await read_events(base, 3)
            assert [e["data"]["id"] for e in first] == logged
            assert [e["event"] for e in first] == [
                "handoff.started",
                "handoff.queued",
                "handoff.assigned",
            ]
            positions = [int(e["id"]) for e in first]
            assert positions == sorted(positions)
            assert len(set(positions)) == 3
            # the data is the very JSON the webhook receiver got
            assert [e["data"] for e in first] == env.bot.events

            # resume after the first event: the rest, nothing repeated
            resumed_task = asyncio.create_task(read_events(base, 4, last_event_id=first[0]["id"]))
            await asyncio.sleep(0.2)  # the stream is open and caught up; now new events
            env.sim.agent_reply(env.agents[0], handoff["livechat"]["chat_id"], "live!")
            await env.wait_event(handoff["id"], "handoff.message")
            await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
            resumed = await resumed_task
            assert [e["data"]["id"] for e in resumed[:2]] == logged[1:]
            assert [e["event"] for e in resumed[2:]] == ["handoff.message", "handoff.closed"]
            assert resumed[2]["data"]["data"]["message"]["text"] == "live!"

            # from the last position seen: nothing missed, nothing repeated
            await env.settle()
            everything = await read_events(base, 5)
            assert [e["data"]["id"] for e in everything] == [e["id"] for e in env.bot.events]
            assert [e["id"] for e in everything] == [first[0]["id"]] + [e["id"] for e in resumed]


async def test_a_bad_last_event_id_is_a_400_problem(make_env: Any) -> None:
    async with make_env() as env:
        for bad in ("abc", "-1", "1.5", "9" * 30, "evt_123"):
            response = await env.api.get("/v1/events", headers={"Last-Event-ID": bad})
            assert response.status_code == 400, bad
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["status"] == 400
            assert body["detail"]
