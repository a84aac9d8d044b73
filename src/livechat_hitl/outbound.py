"""httpx's client interface over aiohttp's connection pool, for the busy outbound paths.

The gateway talks to LiveChat and to the bot through `httpx.AsyncClient` (tests inject
`ASGITransport` / `MockTransport`). httpx's own transport (httpcore) measured 0.8 ms of
CPU per request on one keep-alive connection and 1.5-1.9 ms with 16 in flight (its pool
walks every connection and request on each step); the same POSTs through this
transport cost ~0.3 ms, most of it httpx's client layer (bench/, and the comparison in
the commit that added this module). aiohttp does the HTTP/1.1 work; this module only
translates requests, responses, timeouts and errors.

`AiohttpTransport.exchange` is the busiest paths' way round httpx's objects altogether
(the LiveChat client's action calls, the bot webhook's POSTs): building an
`httpx.Request` and reading an `httpx.Response` (URL parsing, header normalisation,
byte streams) cost as much CPU as aiohttp's own request (cProfile at 300 agent
messages/s, bench/RESULTS.md). It sends the bytes given and returns the status, the
headers and the body (up to a limit), with the same errors as the transport.

What the adapter keeps of httpx's transport: no redirects followed (the client decides),
no cookies, no proxy or `.netrc` from the environment, bodies passed through as sent
(aiohttp's decompression is off: httpx decodes `Content-Encoding` itself), the
`timeout` request extension (connect / read), and httpx's exception types.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import httpx
import yarl

_CHUNK = 64 * 1024
_URLS = 256  # parsed URLs kept by `exchange` (the action and webhook URLs repeat)


@dataclass(frozen=True, slots=True)
class Reply:
    """What `AiohttpTransport.exchange` read: the status, the headers (a case-insensitive
    mapping) and the body, decoded from gzip/deflate, cut at the limit asked for."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}

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

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: Mapping[str, float | None],
        read_limit: int | None = None,
    ) -> Reply:
        """Send `content` (already encoded) with exactly `headers` to `url` (already
        encoded) and read the answer, at most `read_limit` bytes of its body (None: all
        of it). `timeout`: httpx's phases (`httpx.Timeout(...).as_dict()`). Raises
        httpx's exceptions, like `handle_async_request`."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = yarl.URL(url, encoded=True)
            if len(self._urls) < _URLS:
                self._urls[url] = parsed
        with _mapped(None):
            response = await self._send(method, parsed, content, headers, timeout)
            try:
                if read_limit is None:
                    body = await response.read()
                else:
                    body = await _read_upto(response, read_limit)
            finally:
                _finish(response)
        return Reply(response.status, response.headers, _decoded(response.headers, body))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = yarl.URL(str(request.url), encoded=True)
        body = await request.aread()
        phases = request.extensions.get("timeout", {})
        with _mapped(request):
            response = await self._send(
                request.method, url, body, request.headers.multi_items(), phases
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": b""},
            request=request,
        )

    async def _send(
        self,
        method: str,
        url: yarl.URL,
        body: bytes | None,
        headers: Mapping[str, str] | list[tuple[str, str]],
        phases: Mapping[str, float | None],
    ) -> aiohttp.ClientResponse:
        """The request as given: no redirects followed, no compression added; httpx's
        timeout phases as aiohttp's."""
        return await self._client().request(
            method,
            url,
            data=body or None,
            headers=headers,
            allow_redirects=False,
            timeout=_timeout(phases),
            compress=None,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _timeout(phases: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
    """httpx's timeout phases as aiohttp's: each read, the connection, the pool."""
    return aiohttp.ClientTimeout(
        total=None,
        sock_connect=phases.get("connect"),
        sock_read=phases.get("read"),
        connect=phases.get("pool"),
    )


async def _read_upto(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.readany()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit]


def _finish(response: aiohttp.ClientResponse) -> None:
    if response.content.at_eof():
        response.release()  # the connection goes back to the pool
    else:
        response.close()  # a body left unread: the connection cannot be reused


def _decoded(headers: Mapping[str, str], body: bytes) -> bytes:
    """`body` without its `Content-Encoding` (gzip, deflate), as httpx would read it."""
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity") or not body:
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
        if encoding == "deflate":
            try:
                return zlib.decompressobj().decompress(body)
            except zlib.error:  # deflate without its zlib header, as some servers send it
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)
    except zlib.error as error:
        raise httpx.DecodingError(f"cannot decode the {encoding} body: {error}") from error
    raise httpx.DecodingError(f"unsupported Content-Encoding {encoding!r}")


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        _finish(self._response)


class _mapped:
    """aiohttp's and asyncio's errors as the httpx exceptions callers handle."""

    def __init__(self, request: httpx.Request | None) -> None:
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
