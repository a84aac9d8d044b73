"""`ProcessTransport`: exchanges made by a child process, against a server on loopback.

What the child does with a request is `AiohttpTransport.exchange`'s (tests/unit/
test_outbound.py runs those tests through both); here: many exchanges at once each get
their own answer, and what happens when the child dies, is signalled, or the caller
gives up."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from livechat_hitl import outbound_process
from livechat_hitl.outbound_process import ProcessTransport

TIMEOUTS = httpx.Timeout(5.0).as_dict()
release: asyncio.Event  # set by the test when /held may answer (one per test: its loop)


async def _echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    return web.Response(body=body, headers={"X-Id": request.headers.get("x-id", "")})


async def _held(request: web.Request) -> web.StreamResponse:
    await release.wait()
    return web.Response(body=b"held")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_get("/held", _held)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    global release
    release = asyncio.Event()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[ProcessTransport]:
    transport = ProcessTransport()
    await transport.start()
    try:
        yield transport
    finally:
        await transport.aclose()


async def _echo_one(transport: ProcessTransport, server: str, n: int) -> tuple[bytes, str]:
    reply = await transport.exchange(
        "POST", f"{server}/echo", headers={"X-Id": str(n)}, content=b"%d" % n, timeout=TIMEOUTS
    )
    return reply.content, reply.headers["x-id"]  # headers: case-insensitive


async def _in_flight(transport: ProcessTransport, server: str) -> asyncio.Task[object]:
    """An exchange the server holds until `release` is set, in flight in the child."""
    task = asyncio.create_task(
        transport.exchange("GET", f"{server}/held", headers={}, content=None, timeout=TIMEOUTS)
    )
    await asyncio.sleep(0.3)
    assert not task.done()
    return task


async def test_many_exchanges_at_once_each_get_their_own_answer(
    transport: ProcessTransport, server: str
) -> None:
    answers = await asyncio.gather(*(_echo_one(transport, server, n) for n in range(300)))
    assert answers == [(b"%d" % n, str(n)) for n in range(300)]


async def test_the_child_is_a_process_of_its_own(transport: ProcessTransport) -> None:
    assert transport.pid is not None
    assert transport.pid != os.getpid()


async def test_a_child_that_dies_fails_what_is_in_flight_and_is_started_again(
    transport: ProcessTransport, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound_process, "_RESPAWN_EVERY", 0.0)
    held = await _in_flight(transport, server)
    first = transport.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with pytest.raises(httpx.TransportError, match="the outbound process ended"):
        await held
    assert await _echo_one(transport, server, 7) == (b"7", "7")
    assert transport.pid not in (None, first)


async def test_it_is_not_started_again_more_than_once_a_second(
    transport: ProcessTransport, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child that cannot start (or dies at once) is not started again on every call.
    monkeypatch.setattr(outbound_process, "_RESPAWN_EVERY", 60.0)
    first = transport.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    for _ in range(100):  # until the loop has seen it end
        if transport.pid is None:
            break
        await asyncio.sleep(0.02)
    with pytest.raises(httpx.TransportError, match="restarting it shortly"):
        await _echo_one(transport, server, 1)
    monkeypatch.setattr(outbound_process, "_RESPAWN_EVERY", 0.0)
    assert await _echo_one(transport, server, 2) == (b"2", "2")


async def test_the_child_ignores_sigint_and_sigterm(
    transport: ProcessTransport, server: str
) -> None:
    # Ctrl-C and service managers signal the whole process group: the gateway decides
    # when its child ends (by closing the pipe), after its own shutdown.
    pid = transport.pid
    assert pid is not None
    held = await _in_flight(transport, server)
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    await asyncio.sleep(0.3)
    release.set()
    reply = await held
    assert reply.content == b"held"  # type: ignore[attr-defined]
    assert transport.pid == pid


async def test_a_cancelled_caller_does_not_disturb_the_others(
    transport: ProcessTransport, server: str
) -> None:
    held = await _in_flight(transport, server)
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    release.set()  # its answer arrives now, and is dropped
    assert await _echo_one(transport, server, 3) == (b"3", "3")


async def test_an_exchange_the_child_never_answers_times_out(
    transport: ProcessTransport, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound_process, "_GRACE", 0.2)
    monkeypatch.setattr(outbound_process, "_SWEEP_EVERY", 0.1)
    pid = transport.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, and silent
    try:
        phases = {"connect": 0.1, "read": 0.1, "write": None, "pool": None}
        with pytest.raises(httpx.ReadTimeout, match="did not answer in time"):
            await transport.exchange(
                "POST", f"{server}/echo", headers={}, content=b"x", timeout=phases
            )
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_closing_ends_the_child(server: str) -> None:
    transport = ProcessTransport()
    assert await _echo_one(transport, server, 1) == (b"1", "1")  # started on first use
    pid = transport.pid
    assert pid is not None
    await transport.aclose()
    assert transport.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    with pytest.raises(httpx.TransportError, match="closed"):
        await _echo_one(transport, server, 2)
