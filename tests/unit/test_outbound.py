"""The aiohttp transport under httpx, against a real server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from livechat_hitl.outbound import AiohttpTransport
from livechat_hitl.outbound_process import ProcessTransport

seen: list[dict[str, object]] = []


async def _echo(request: web.Request) -> web.StreamResponse:
    seen.append(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": dict(request.headers),
            "body": await request.read(),
        }
    )
    return web.Response(status=201, body=b'{"ok":true}', headers={"X-Answer": "yes"})


async def _redirect(request: web.Request) -> web.StreamResponse:
    return web.Response(status=307, headers={"Location": "/elsewhere"})


async def _gzipped(request: web.Request) -> web.StreamResponse:
    return web.Response(body=gzip.compress(b"hello " * 100), headers={"Content-Encoding": "gzip"})


async def _big(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"x" * 1_000_000)


async def _silent(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1)
    return web.Response()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/gzip", _gzipped)
    app.router.add_get("/big", _big)
    app.router.add_get("/silent", _silent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    seen.clear()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def the_echoed_request() -> dict[str, str]:
    """The one request `/echo` saw, checked as sent by the tests below; its headers."""
    [request] = seen
    assert request["method"] == "POST"
    assert request["path_qs"] == "/echo?a=1%2F2&b=%C3%A9"  # not re-quoted
    assert request["body"] == b'{"x":1}'
    headers = request["headers"]
    assert isinstance(headers, dict)
    assert headers["webhook-id"] == "evt_1"
    assert headers["Content-Length"] == "7"
    return headers


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=5.0) as client:
        yield client


async def test_a_request_goes_out_as_httpx_built_it(server: str, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{server}/echo?a=1%2F2&b=%C3%A9",
        content=b'{"x":1}',
        headers={"content-type": "application/json", "webhook-id": "evt_1"},
    )
    assert (response.status_code, response.json(), response.headers["x-answer"]) == (
        201,
        {"ok": True},
        "yes",
    )
    headers = the_echoed_request()
    assert headers["User-Agent"].startswith("python-httpx")  # httpx's, not aiohttp's


async def test_redirects_are_not_followed(server: str, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{server}/redirect")
    assert (response.status_code, response.headers["location"]) == (307, "/elsewhere")


async def test_a_compressed_body_is_decoded_once(server: str, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{server}/gzip")).text == "hello " * 100


async def test_a_body_left_unread_does_not_break_the_next_request(
    server: str, http: httpx.AsyncClient
) -> None:
    for _ in range(3):
        async with http.stream("GET", f"{server}/big") as response:
            async for chunk in response.aiter_bytes():
                assert chunk
                break  # read a little, then close
        assert (await http.post(f"{server}/echo", content=b"again")).status_code == 201


async def test_a_refused_connection_is_a_connect_error(http: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_silent_server_is_a_read_timeout(server: str) -> None:
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server}/silent")


# -- exchange: the busy paths' way round httpx's objects ------------------------------

TIMEOUTS = httpx.Timeout(5.0).as_dict()


@pytest.fixture(params=["in this process", "in a child process"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[AiohttpTransport]:
    """The transport whose `exchange` the tests below use: `AiohttpTransport`, or
    `ProcessTransport` (the same, from its child process)."""
    transport = AiohttpTransport() if request.param == "in this process" else ProcessTransport()
    try:
        yield transport
    finally:
        await transport.aclose()


async def test_exchange_sends_exactly_what_it_is_given(
    server: str, transport: AiohttpTransport
) -> None:
    reply = await transport.exchange(
        "POST",
        f"{server}/echo?a=1%2F2&b=%C3%A9",
        headers={"Content-Type": "application/json", "webhook-id": "evt_1"},
        content=b'{"x":1}',
        timeout=TIMEOUTS,
    )
    assert (reply.status_code, reply.content, reply.headers["x-answer"]) == (
        201,
        b'{"ok":true}',
        "yes",
    )
    assert reply.is_success
    headers = the_echoed_request()
    assert "User-Agent" not in headers  # nothing of aiohttp's own
    assert "Accept-Encoding" not in headers


async def test_exchange_decodes_a_compressed_body(server: str, transport: AiohttpTransport) -> None:
    reply = await transport.exchange(
        "GET", f"{server}/gzip", headers={}, content=None, timeout=TIMEOUTS
    )
    assert reply.content == b"hello " * 100


async def test_exchange_reads_up_to_the_limit_and_the_next_request_still_works(
    server: str, transport: AiohttpTransport
) -> None:
    for _ in range(3):
        reply = await transport.exchange(
            "GET", f"{server}/big", headers={}, content=None, timeout=TIMEOUTS, read_limit=10
        )
        assert reply.content == b"x" * 10
    again = await transport.exchange(
        "POST", f"{server}/echo", headers={}, content=b"again", timeout=TIMEOUTS
    )
    assert again.status_code == 201


async def test_exchange_raises_httpx_errors(transport: AiohttpTransport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        with pytest.raises(httpx.ConnectError):
            await transport.exchange("GET", refused, headers={}, content=None, timeout=TIMEOUTS)


async def test_exchange_read_timeout(server: str, transport: AiohttpTransport) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await transport.exchange(
            "GET",
            f"{server}/silent",
            headers={},
            content=None,
            timeout=httpx.Timeout(5, read=0.2).as_dict(),
        )
