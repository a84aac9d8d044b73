"""`GroupCommitter`: many concurrent small commits written as one transaction.

Each caller awaits `commit(change)` and gets what `Store.commit` would give it: True,
False (dedup key seen) or its own exception. One flusher task takes everything queued
so far (up to `max_batch`) and writes it with `Store.commit_many`; there is no timer:
the flusher writes as soon as it runs, and while it writes, the next batch queues up.
Under load one write transaction (and one wake-up of the relay) serves dozens of
requests; alone, a commit waits for nothing but the loop's next turn.

An async context manager: stopping flushes what is queued, then ends the flusher.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

from livechat_hitl.domain.models import Change
from livechat_hitl.ports import Store

log = logging.getLogger(__name__)

_Pending = tuple[Change, asyncio.Future[bool]]


class GroupCommitter:
    def __init__(self, store: Store, *, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max(1, max_batch)
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def __aenter__(self) -> Self:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._flush_forever(), name="group-commit")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Write what is queued, then end the flusher."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        await task

    async def commit(self, change: Change) -> bool:
        """Commit `change` with the next batch: as `Store.commit` (raises its errors)."""
        if self._task is None or self._task.done() or self._stopping:
            raise RuntimeError("the group committer is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((change, future))
        self._wake.set()
        return await future

    async def _flush_forever(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                    await self._write(batch)
                if self._stopping:
                    return
        finally:  # cancelled from outside: nobody may wait forever
            queued, self._queue = self._queue, []
            _fail(queued, RuntimeError("the group committer stopped"))

    async def _write(self, batch: list[_Pending]) -> None:
        # A caller that gave up (cancelled) before its batch was taken is not written.
        batch = [(change, future) for change, future in batch if not future.done()]
        if not batch:
            return
        results: list[bool | Exception]
        try:
            results = await self._store.commit_many([change for change, _ in batch])
        except asyncio.CancelledError:
            _fail(batch, RuntimeError("the group committer was cancelled"))
            raise
        except Exception as exc:
            log.warning("a group commit of %d changes failed: %s", len(batch), type(exc).__name__)
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=False):
            if future.done():
                continue  # its caller was cancelled meanwhile; the change stands
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        _fail(batch, RuntimeError("the store returned no result for this change"))


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
