"""An aiosqlite-shaped connection that runs SQLite calls in the event loop's thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit …) to a worker thread
and back: about eight thread round trips for one small query, each waking the event
loop and contending for the GIL. The benchmark (bench/) measured ~1 ms of CPU for one
indexed SELECT that way. SQLite on a local file in WAL mode with `synchronous=NORMAL`
answers these statements in microseconds and does not fsync on commit, so running them
inline is cheaper than any hand-off.

The one thing that can block is waiting for another process's write lock
(`busy_timeout`): the gateway is the only writer of its SQLite file (several processes
are PostgreSQL's job), and this process's writers queue on an asyncio lock in the store.

SQLAlchemy's aiosqlite dialect drives this object through `async_creator`; it uses the
surface below (`cursor()`, awaitable methods, `isolation_level`, `_conn`, `_tx`,
`_connection`, `stop`), nothing else.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: runs the call at once.

    SQLAlchemy's adapter sets `isolation_level` by queueing `(future, function)` here."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Self:
        self._cursor.execute(sql, () if parameters is None else parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Self:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]  # as sqlite3 takes it

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_connector(path: str) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: a new inline connection to `path`."""

    async def connect() -> InlineConnection:
        # check_same_thread off: SQLAlchemy may close a connection from its pool's
        # finaliser (garbage collection) outside the loop's thread.
        return InlineConnection(sqlite3.connect(path, check_same_thread=False))

    return connect
