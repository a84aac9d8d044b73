"""In-process wake-ups after commits (one process; PostgreSQL LISTEN/NOTIFY comes later)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref


class LocalNotifier:
    """`notify()` wakes every `wait()`er; nothing is missed between two waits.

    Each waiting task remembers the last notification it saw: a notify that arrives
    while the task is busy (between two `wait` calls) makes its next `wait` return at
    once instead of sleeping through it. A task's first `wait` only sees later notifies.
    """

    def __init__(self) -> None:
        self._generation = 0
        self._event = asyncio.Event()
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[object], int] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        self._generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout: float) -> None:
        task = asyncio.current_task()
        seen = self._seen.get(task, self._generation) if task is not None else self._generation
        if seen == self._generation and timeout > 0:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._event.wait()
        if task is not None:
            self._seen[task] = self._generation
