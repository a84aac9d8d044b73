"""A Python client for bots: the bot API v1, its event stream and webhook verification.

    async with HitlClient("https://hitl.example.com", api_key="…") as hitl:
        handoff = await hitl.start_handoff("conv-42", user={"id": "u-1", "name": "Ada"},
                                           transcript=[{"role": "user", "text": "refund"}])
        await hitl.send_text(handoff["id"], "Order 1234", message_id="m-1")
        async for event in hitl.events():            # resumes after a dropped connection
            if event["type"] == "handoff.message":
                ...

Webhook receivers verify deliveries with `verify_webhook(body, headers, secret)`.
Answers are the API's JSON objects (CONTRACT §3); errors raise `HitlApiError`, which
carries the problem details.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

JSON = dict[str, Any]


class HitlApiError(Exception):
    """The gateway answered with an error (`application/problem+json`)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.detail = str(problem.get("detail") or problem.get("title") or status)
        super().__init__(f"{status}: {self.detail}")


class WebhookVerificationError(Exception):
    """A delivery's Standard Webhooks signature does not verify."""


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> JSON:
    """The event of a signed delivery, or `WebhookVerificationError` when the signature,
    the timestamp (±5 minutes) or the secret does not match. `secret` is `whsec_…`."""
    from standardwebhooks.webhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError as Invalid

    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        event = Webhook(secret).verify(body, lowered)
    except Invalid as exc:
        raise WebhookVerificationError(str(exc)) from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event


class HitlClient:
    """Async client of one gateway. Use as an async context manager, or pass your own
    `httpx.AsyncClient` (then closing it is yours)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    def __repr__(self) -> str:  # never the key
        return f"HitlClient({self._base!r})"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        response = await self._http.request(
            method,
            f"{self._base}{path}",
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers=self._headers,
        )
        try:
            document = response.json()
        except ValueError:
            document = {"detail": response.text[:200]}
        if response.status_code >= 400:
            raise HitlApiError(response.status_code, document if isinstance(document, dict) else {})
        if not isinstance(document, dict):
            raise HitlApiError(response.status_code, {"detail": "unexpected answer"})
        return document

    # -- handoffs --------------------------------------------------------------------------

    async def start_handoff(
        self,
        conversation_id: str,
        *,
        user: Mapping[str, Any],
        title: str | None = None,
        description: str | None = None,
        transcript: Sequence[Mapping[str, Any]] = (),
        group_id: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Start a handoff, or get the open one of this conversation (never a second)."""
        body: JSON = {"conversation_id": conversation_id, "user": dict(user)}
        optional = {
            "title": title,
            "description": description,
            "group_id": group_id,
            "metadata": dict(metadata) if metadata else None,
            "transcript": [dict(t) for t in transcript] or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return await self._call("POST", "/v1/handoffs", body=body)

    async def get_handoff(self, handoff_id: str) -> JSON:
        return await self._call("GET", f"/v1/handoffs/{handoff_id}")

    async def list_handoffs(
        self,
        *,
        conversation_id: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JSON:
        """One page: `{"items": [...], "next_cursor": ...}`."""
        params = {"conversation_id": conversation_id, "state": state, "limit": limit}
        return await self._call("GET", "/v1/handoffs", params={**params, "cursor": cursor})

    async def send_text(self, handoff_id: str, text: str, *, message_id: str | None = None) -> JSON:
        """The user's message for the agent; a repeated `message_id` is accepted once."""
        body: JSON = {"type": "text", "text": text}
        if message_id is not None:
            body["id"] = message_id
        return await self._call("POST", f"/v1/handoffs/{handoff_id}/messages", body=body)

    async def send_file(
        self,
        handoff_id: str,
        url: str,
        *,
        name: str | None = None,
        content_type: str | None = None,
        message_id: str | None = None,
    ) -> JSON:
        """A file by URL: the gateway fetches it and uploads it to LiveChat (≤ 10 MB)."""
        body: JSON = {"type": "file", "url": url}
        extra = {"name": name, "content_type": content_type, "id": message_id}
        body.update({k: v for k, v in extra.items() if v is not None})
        return await self._call("POST", f"/v1/handoffs/{handoff_id}/messages", body=body)

    async def messages(self, handoff_id: str) -> list[JSON]:
        """Every message both ways, oldest first, with its delivery status."""
        items = (await self._call("GET", f"/v1/handoffs/{handoff_id}/messages"))["items"]
        return [dict(m) for m in items]

    async def close(self, handoff_id: str, *, reason: str | None = None) -> JSON:
        """Hand the conversation back to the bot; closing twice is harmless."""
        body = {"reason": reason} if reason is not None else None
        return await self._call("POST", f"/v1/handoffs/{handoff_id}/close", body=body)

    async def availability(self, group_id: int | None = None) -> JSON:
        return await self._call("GET", "/v1/availability", params={"group_id": group_id})

    # -- events ----------------------------------------------------------------------------

    async def events(
        self,
        *,
        last_event_id: str | None = None,
        reconnect_delay: float = 1.0,
        max_reconnects: int | None = None,
    ) -> AsyncIterator[JSON]:
        """Every event from the gateway's log, in order, as they come (SSE).

        A dropped connection is resumed after the last event seen (`Last-Event-ID`), so
        nothing is missed or repeated. Each event carries `_position` (its log position),
        to resume a later call from with `last_event_id`.
        """
        position = last_event_id
        reconnects = 0
        while True:
            headers = dict(self._headers)
            if position is not None:
                headers["Last-Event-ID"] = position
            try:
                async with self._http.stream(
                    "GET",
                    f"{self._base}/v1/events",
                    headers=headers,
                    timeout=httpx.Timeout(None, connect=10.0),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise HitlApiError(response.status_code, _problem(response))
                    async for event_id, data in _sse(response.aiter_lines()):
                        position = event_id or position
                        event = json.loads(data)
                        event["_position"] = position
                        yield event
            except (httpx.TransportError, httpx.RemoteProtocolError):
                pass
            reconnects += 1
            if max_reconnects is not None and reconnects > max_reconnects:
                return
            await asyncio.sleep(reconnect_delay)


def _problem(response: httpx.Response) -> JSON:
    try:
        document = response.json()
    except ValueError:
        return {"detail": response.text[:200]}
    return document if isinstance(document, dict) else {}


async def _sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """(id, data) of each SSE message; comments (pings) and other fields are skipped."""
    event_id: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event_id, "\n".join(data)
            event_id, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
