"""Fetching files a bot sends by URL, before they are uploaded to LiveChat.

The gateway fetches on a bot's behalf, so it refuses private, loopback and link-local
addresses unless the allow-list names the host or network (server-side request forgery).
"""

from __future__ import annotations

import asyncio
import ipaddress
import mimetypes
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from livechat_hitl.livechat.wire import MAX_UPLOAD_BYTES


class FileRefused(Exception):
    """The file cannot be sent (address not allowed, too large, not found): permanent."""


@dataclass(frozen=True, slots=True)
class FetchedFile:
    name: str
    content: bytes
    content_type: str


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class FileFetcher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        allow: list[str] | None = None,
        only_allowed: bool = False,
        max_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        self._http = http
        self._only_allowed = only_allowed
        self._hosts = {a.lower() for a in allow or [] if "/" not in a}
        self._networks = [ipaddress.ip_network(a, strict=False) for a in allow or [] if "/" in a]
        self._max = max_bytes

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise FileRefused(f"only http(s) URLs can be sent, not {parts.scheme or 'this'}")
        if self._host_allowed(host):
            return
        if self._only_allowed:
            # Nothing outside the allow-list is even resolved.
            try:
                literal = ipaddress.ip_address(host)
            except ValueError:
                literal = None
            if literal is None or not any(literal in net for net in self._networks):
                raise FileRefused(f"{host} is not in HITL_FETCH_ALLOWLIST")
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
        except socket.gaierror as exc:
            raise FileRefused(f"cannot resolve {host}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if any(address in net for net in self._networks):
                continue
            if not _public(address):
                raise FileRefused(
                    f"{host} resolves to a non-public address; allow it in HITL_FETCH_ALLOWLIST"
                )

    def _host_allowed(self, host: str) -> bool:
        return any(
            host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:]))
            for allowed in self._hosts
        )

    async def precheck(self, url: str, *, timeout: float = 5.0) -> None:
        """What can be refused before accepting a file message: an address that is not
        allowed, or a size LiveChat would refuse (from a HEAD's Content-Length). A URL
        that does not answer HEAD is accepted here and checked again when fetched."""
        await self.check(url)
        try:
            response = await self._http.head(url, follow_redirects=False, timeout=timeout)
        except httpx.HTTPError:
            return
        length = response.headers.get("content-length", "")
        if response.status_code == 200 and length.isdigit() and int(length) > self._max:
            raise FileRefused(
                f"the file is {int(length) // (1024 * 1024)} MB; LiveChat takes at most "
                f"{self._max // (1024 * 1024)} MB"
            )

    async def fetch(self, url: str, *, name: str | None = None) -> FetchedFile:
        await self.check(url)
        async with self._http.stream("GET", url, follow_redirects=False) as response:
            if response.status_code != 200:
                error = f"fetching the file answered {response.status_code}"
                if response.status_code >= 500 or response.status_code == 429:
                    raise httpx.HTTPStatusError(error, request=response.request, response=response)
                raise FileRefused(error)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max:
                    raise FileRefused("the file is larger than LiveChat's 10 MB limit")
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
        path_name = urlsplit(url).path.rsplit("/", 1)[-1] or "file"
        final_name = name or path_name
        guessed = mimetypes.guess_type(final_name)[0]
        return FetchedFile(
            name=final_name,
            content=bytes(body),
            content_type=content_type or guessed or "application/octet-stream",
        )
