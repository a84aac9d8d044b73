"""Webhook delivery as LiveChat does it: POST the envelope, 200 within the timeout or retry.

A delivery is retried on any status other than 200, on a transport error and on no
answer within `webhook_timeout`, up to 3 times on `webhook_retry_schedule`. Deliveries
run as supervised tasks owned by the emitter (an async context manager); `drain()`
waits until every delivery, including ones started while draining, has settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from livechat_hitl.livechat.wire import format_timestamp

from .config import Clock, SimulatorConfig

MAX_RETRIES = 3


@dataclass
class Attempt:
    at: str
    status: int | None
    error: str | None
    seconds: float

    def render(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "error": self.error, "seconds": self.seconds}


@dataclass
class Delivery:
    id: int
    webhook_id: str
    url: str
    action: str
    body: dict[str, Any]
    copy: int = 1
    attempts: list[Attempt] = field(default_factory=list)
    outcome: str = "pending"  # pending | delivered | failed

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "url": self.url,
            "action": self.action,
            "copy": self.copy,
            "outcome": self.outcome,
            "attempts": [a.render() for a in self.attempts],
            "body": self.body,
        }


class WebhookEmitter:
    def __init__(
        self, config: SimulatorConfig, clock: Clock, http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self._http = http
        self._owns_http = http is None
        self._tasks: set[asyncio.Task[None]] = set()
        self.log: list[Delivery] = []
        self._duplicates_left = 0
        self._duplicates_concurrent = False
        self._started = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> WebhookEmitter:
        self._started += 1
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._started -= 1
        if self._started > 0:
            return
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    def duplicate_next(self, count: int, *, concurrent: bool = False) -> None:
        """Deliver each of the next `count` webhooks twice (LiveChat retries can)."""
        self._duplicates_left = count
        self._duplicates_concurrent = concurrent

    def submit(self, webhook_id: str, url: str, action: str, body: dict[str, Any]) -> None:
        first = self._record(webhook_id, url, action, body, 1)
        if self._duplicates_left > 0:
            self._duplicates_left -= 1
            second = self._record(webhook_id, url, action, body, 2)
            if self._duplicates_concurrent:
                self._spawn(self._deliver(first))
                self._spawn(self._deliver(second))
            else:
                self._spawn(self._deliver_in_turn(first, second))
            return
        self._spawn(self._deliver(first))

    def _record(
        self, webhook_id: str, url: str, action: str, body: dict[str, Any], copy: int
    ) -> Delivery:
        delivery = Delivery(len(self.log) + 1, webhook_id, url, action, body, copy)
        self.log.append(delivery)
        return delivery

    def _spawn(self, work: Any) -> None:
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is not None and (self._loop is None or current is self._loop):
            self._create(work)
        elif self._loop is not None:
            # Control methods called from another thread (a sync test driving a server).
            self._loop.call_soon_threadsafe(self._create, work)
        else:
            work.close()
            raise RuntimeError("the webhook emitter is not running (use `async with sim`)")

    def _create(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_in_turn(self, *deliveries: Delivery) -> None:
        for delivery in deliveries:
            await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        delays = list(self.config.webhook_retry_schedule[:MAX_RETRIES])
        for attempt_number in range(len(delays) + 1):
            if attempt_number > 0:
                await asyncio.sleep(delays[attempt_number - 1])
            if await self._attempt(delivery):
                delivery.outcome = "delivered"
                return
        delivery.outcome = "failed"

    async def _attempt(self, delivery: Delivery) -> bool:
        started = time.monotonic()
        at = format_timestamp(self.clock.now())
        status: int | None = None
        error: str | None = None
        try:
            response = await asyncio.wait_for(
                self.http.post(delivery.url, json=delivery.body), self.config.webhook_timeout
            )
            status = response.status_code
        except TimeoutError:
            error = "timeout"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a receiver app that crashes in-process
            error = f"{type(exc).__name__}: {exc}"
        delivery.attempts.append(Attempt(at, status, error, round(time.monotonic() - started, 4)))
        return status == 200

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until all deliveries (and retries) have settled."""

        async def settle() -> None:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

        await asyncio.wait_for(settle(), timeout)
