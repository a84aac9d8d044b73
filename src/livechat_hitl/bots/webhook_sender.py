"""POSTs bot events to `HITL_BOT_WEBHOOK_URL`, signed per Standard Webhooks.

One outbox row (target `bot_webhook`) carries one event in its wire form. Every attempt
sends the same JSON with `webhook-id` = the event id, so the bot can de-duplicate
retries, and a fresh `webhook-timestamp` (receivers refuse stale ones). The relay owns
retries and backoff; this sink only says what happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import SecretStr

from livechat_hitl import metrics
from livechat_hitl.bots.signing import WebhookSigner
from livechat_hitl.domain.models import OutboxRow, OutboxTarget
from livechat_hitl.logs import redact
from livechat_hitl.outbound import AiohttpTransport
from livechat_hitl.outbox.sinks import Delivered, Failed, LaneOutcome, deliver_in_turn
from livechat_hitl.ports import Clock

log = logging.getLogger(__name__)

BODY_EXCERPT = 200  # characters of the bot's answer kept in `last_error`
_READ_LIMIT = 4096  # bytes of the bot's answer read at all
_MAX_REDIRECTS = 3
_USER_AGENT = "livechat-hitl"
# After a 410 Gone, events are not POSTed for this long (they go dead at once, visible and
# replayable); the next event after it probes the endpoint again.
GONE_RECHECK = timedelta(minutes=10)


def event_body(payload: dict[str, object]) -> bytes:
    """The exact bytes POSTed (and signed) for an event's wire JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


class BotWebhookSink:
    """The `LaneSink` for `OutboxTarget.BOT_WEBHOOK` rows: a backlog of one handoff's
    events goes out one POST after the other, recorded in one commit."""

    lane_size = 32

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        url: str,
        secret: str | SecretStr,
        clock: Clock,
        timeout: float = 15.0,
        gone_recheck: timedelta = GONE_RECHECK,
    ) -> None:
        # The transport, not a client: the sink needs none of httpx's client layer
        # (auth, cookies, redirects: it follows same-origin 307/308 itself), which cost
        # more CPU per POST than the POST itself over aiohttp (bench/).
        self._transport = transport
        self._url = url
        self._parsed_url = httpx.URL(url)
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._signer = WebhookSigner(secret)
        self._clock = clock
        self._timeout = timeout
        self._gone_recheck = gone_recheck
        self.gone_since: datetime | None = None
        metrics.BOT_WEBHOOK_GONE.set(0)

    def _still_gone(self, now: datetime) -> bool:
        return self.gone_since is not None and now - self.gone_since < self._gone_recheck

    def _mark_gone(self, now: datetime) -> None:
        if self.gone_since is None:
            log.warning(
                "the bot endpoint answered 410 Gone: events are no longer POSTed to it for "
                "%s (their outbox rows go dead, `livechat-hitl outbox ls --dead`); they stay "
                "on GET /v1/events. Fix HITL_BOT_WEBHOOK_URL, then `livechat-hitl outbox "
                "retry --all-dead`",
                self._gone_recheck,
            )
        self.gone_since = now
        metrics.BOT_WEBHOOK_GONE.set(1)

    def _mark_back(self) -> None:
        if self.gone_since is not None:
            log.warning("the bot endpoint accepts events again")
        self.gone_since = None
        metrics.BOT_WEBHOOK_GONE.set(0)

    async def deliver_lane(self, rows: list[OutboxRow]) -> LaneOutcome:
        return await deliver_in_turn(self, rows)

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        if row.target is not OutboxTarget.BOT_WEBHOOK:
            return Failed(error=f"not a bot webhook row ({row.target})", retryable=False)
        event_id = row.payload.get("id")
        if not isinstance(event_id, str) or not event_id:
            return Failed(error="bot webhook row carries no event id", retryable=False)

        attempt_at = self._clock.now()
        if self._still_gone(attempt_at):
            assert self.gone_since is not None
            since = self.gone_since.isoformat(timespec="seconds")
            return Failed(
                error=f"not sent: the bot endpoint answered 410 Gone at {since}",
                retryable=False,
            )
        body = event_body(row.payload)
        headers = {
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
            **self._signer.sign(event_id, attempt_at, body),
        }
        try:
            async with asyncio.timeout(self._timeout):  # the whole exchange, not per read
                response_or_failure = await self._post(headers, body)
        except (httpx.TimeoutException, TimeoutError):
            return Failed(
                error=f"bot endpoint did not answer within {self._timeout:g} s", retryable=True
            )
        except httpx.HTTPError as exc:
            return Failed(
                error=_short(f"bot endpoint unreachable: {_describe(exc)}"), retryable=True
            )
        if isinstance(response_or_failure, Failed):
            return response_or_failure
        status, excerpt, retry_after_header = response_or_failure

        if 200 <= status < 300:
            log.debug("event delivered to the bot", extra={"event_id": event_id, "status": status})
            self._mark_back()
            return Delivered()
        if status == 410:
            self._mark_gone(attempt_at)
            return Failed(
                error=_short(f"bot endpoint answered 410 Gone: {excerpt}"), retryable=False
            )
        return Failed(
            error=_short(f"bot endpoint answered {status}: {excerpt}"),
            retryable=True,
            retry_after=parse_retry_after(retry_after_header, attempt_at),
        )

    async def _post(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, str | None] | Failed:
        """POST, following only 307/308 redirects that stay on the same origin."""
        url = self._url
        for _ in range(_MAX_REDIRECTS + 1):
            status, answer_headers, answer = await self._send(url, headers, body)
            location = answer_headers.get("location")
            if status not in (301, 302, 303, 307, 308):
                return status, _excerpt(answer), answer_headers.get("retry-after")
            target = urljoin(url, location) if location else None
            if status not in (307, 308) or target is None or not _same_origin(url, target):
                # a POST must not turn into a GET, nor go to another host
                return Failed(
                    error=f"bot endpoint answered {status} redirect; not followed", retryable=True
                )
            url = target
        return Failed(error="bot endpoint redirected too many times", retryable=True)

    async def _send(
        self, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One POST: the status, the headers and up to `_READ_LIMIT` bytes of the body."""
        if isinstance(self._transport, AiohttpTransport):
            # No httpx request or response objects on the busiest path (outbound.py).
            reply = await self._transport.exchange(
                "POST",
                url,
                headers=headers,
                content=body,
                timeout=self._timeouts,
                read_limit=_READ_LIMIT,
            )
            return reply.status_code, reply.headers, reply.content
        request = httpx.Request(
            "POST",
            self._parsed_url if url == self._url else url,
            content=body,
            headers=headers,
            extensions={"timeout": self._timeouts},
        )
        response = await self._transport.handle_async_request(request)
        try:
            return response.status_code, response.headers, await _read_upto(response)
        finally:
            await response.aclose()


async def _read_upto(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _READ_LIMIT:
            break
    return b"".join(chunks)[:_READ_LIMIT]


def _excerpt(answer: bytes) -> str:
    text = answer[:_READ_LIMIT].decode("utf-8", errors="replace")
    return " ".join(text.split())[:BODY_EXCERPT]


def _describe(exc: httpx.HTTPError) -> str:
    detail = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def _short(text: str) -> str:
    """`last_error` text: one line, bounded, with secrets scrubbed."""
    return redact(" ".join(text.split()))[: BODY_EXCERPT + 80]
