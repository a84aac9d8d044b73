"""Wake-ups across processes on PostgreSQL: LISTEN on the commit channel.

Every store transaction that adds events or outbox rows NOTIFYs
`dialects.COMMIT_CHANNEL` (see `SqlStore`); PostgreSQL delivers the notification at
commit, to every listening connection of the database. `PgNotifier` keeps one dedicated
asyncpg connection LISTENing and turns each notification into a local `notify()`, so the
SSE feeds and the outbox relay of this process wake on any process's commit.

The connection is watched (termination callback plus a periodic `SELECT 1`). When it
drops, the notifier logs it, wakes its waiters (they re-read instead of trusting that
nothing happened), and reconnects with backoff; while it is away it wakes the waiters on
every attempt, so the process degrades to polling rather than going deaf. SQLite has one
process and needs none of this: `listen_for_commits` yields None there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import asyncpg
from sqlalchemy.engine import make_url

from livechat_hitl.store.dialects import COMMIT_CHANNEL
from livechat_hitl.store.notifier import LocalNotifier

log = logging.getLogger(__name__)


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` or `postgresql://…` → a DSN asyncpg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgNotifier:
    """An `EventNotifier` whose waiters also wake on other processes' commits.

    `notify()` and `wait()` are those of `local` (in-process); entering the context
    starts LISTENing (and fails if the database does not answer), leaving it stops.
    """

    def __init__(
        self,
        url: str,
        local: LocalNotifier | None = None,
        *,
        channel: str = COMMIT_CHANNEL,
        check_seconds: float = 10.0,
        connect_timeout: float = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.local = local or LocalNotifier()
        self._dsn = asyncpg_dsn(url)
        self._channel = channel
        self._check_seconds = check_seconds
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.heard = 0  # notifications received (all processes, this one included)
        self.reconnects = 0

    # -- EventNotifier ---------------------------------------------------------------

    def notify(self) -> None:
        self.local.notify()

    async def wait(self, timeout: float) -> None:
        await self.local.wait(timeout)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def __aenter__(self) -> Self:
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._supervise(), name="pg-notifier")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._connect_timeout)

    async def _connect(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        try:
            self._lost = asyncio.Event()
            conn.add_termination_listener(self._on_termination)
            await conn.add_listener(self._channel, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        return conn

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self.heard += 1
        self.local.notify()

    def _on_termination(self, _conn: Any) -> None:
        self._lost.set()

    # -- supervision -----------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            reason = await self._watch()
            log.warning("LISTEN connection to PostgreSQL lost (%s); reconnecting", reason)
            old, self._conn = self._conn, None
            if old is not None:
                old.terminate()
            self.local.notify()  # waiters re-read: a commit may have gone unheard
            self._conn = await self._reconnect()
            self.reconnects += 1
            log.info("LISTEN connection to PostgreSQL restored")
            self.local.notify()  # whatever was committed while nobody listened

    async def _watch(self) -> str:
        """Return why the connection is no longer usable."""
        while True:
            conn = self._conn
            if conn is None or conn.is_closed():
                return "connection closed"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_seconds):
                    await self._lost.wait()
                return "connection terminated"
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await conn.execute("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                return f"health check failed: {type(exc).__name__}"

    async def _reconnect(self) -> asyncpg.Connection:
        delay = 0.1
        while True:
            try:
                return await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "cannot LISTEN on PostgreSQL yet (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            self.local.notify()  # meanwhile, waiters poll at this pace
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)


@contextlib.asynccontextmanager
async def listen_for_commits(url: str, local: LocalNotifier) -> AsyncIterator[PgNotifier | None]:
    """On PostgreSQL, wake `local`'s waiters on every process's commits; on SQLite (one
    process, the store notifies `local` itself) do nothing."""
    if make_url(url).get_backend_name() not in ("postgresql", "postgres"):
        yield None
        return
    async with PgNotifier(url, local) as notifier:
        yield notifier
