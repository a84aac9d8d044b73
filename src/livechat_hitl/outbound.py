"""httpx's client interface over aiohttp's connection pool, for the busy outbound paths.

The gateway talks to LiveChat and to the bot through `httpx.AsyncClient` (tests inject
`ASGITransport` / `MockTransport`). httpx's own transport (httpcore) measured 0.8 ms of
CPU per request on one keep-alive connection and 1.5-1.9 ms with 16 in flight (its pool
walks every connection and request on each step); the same POSTs through this
transport cost ~0.3 ms, most of it httpx's client layer (bench/, and the comparison in
the commit that added this module). aiohttp does the HTTP/1.1 work; this module only
translates requests, responses, timeouts and errors.

What the adapter keeps of httpx's transport: no redirects followed (the client decides),
no cookies, no proxy or `.netrc` from the environment, bodies passed through as sent
(aiohttp's decompression is off: httpx decodes `Content-Encoding` itself), the
`timeout` request extension (connect / read), and httpx's exception types.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl

_CHUNK = 64 * 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=self._keepalive_expiry
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
            connect=timeouts.get("pool"),
        )
        body = await request.aread()
        with _mapped(request):
            response = await self._client().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                data=body or None,
                headers=request.headers.multi_items(),
                allow_redirects=False,
                timeout=timeout,
                compress=None,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": b""},
            request=request,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # the connection goes back to the pool
        else:
            self._response.close()  # unread body: the connection cannot be reused


class _mapped:
    """aiohttp's and asyncio's errors as the httpx exceptions callers handle."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if not isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError):
            return
        mapped = next(
            (httpx_type for types, httpx_type in _ERRORS if isinstance(exc, types)),
            httpx.TransportError,
        )
        raise mapped(str(exc) or type(exc).__name__, request=self._request) from exc


# Most specific first: aiohttp's timeout errors are also OSErrors and ClientErrors.
_ERRORS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], type[httpx.TransportError]], ...
] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    ((aiohttp.ServerTimeoutError, asyncio.TimeoutError), httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    ((aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError), httpx.RemoteProtocolError),
    ((aiohttp.ClientPayloadError, aiohttp.ClientOSError), httpx.ReadError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
)
