"""Everything that differs between SQLite and PostgreSQL, and nothing else.

- URLs: `sqlite:///…` and `postgresql://…` map to the async drivers.
- SQLite connections: WAL, busy_timeout, foreign keys, synchronous=NORMAL on every
  connection; SQLAlchemy emits BEGIN itself so writers can ask for BEGIN IMMEDIATE.
- Writers: SQLite has one writer, so writes are serialised in-process; PostgreSQL takes
  row locks (`FOR UPDATE SKIP LOCKED` when claiming) and advisory locks so that log
  positions (event and outbox `seq`) become visible in the order they were allocated.
- Idempotent inserts and upserts (`ON CONFLICT`), which both backends spell the same
  way but through different SQLAlchemy constructs.
- Cross-process wake-ups: PostgreSQL writers `NOTIFY` inside the transaction (the
  server delivers it at commit, when the rows are visible); SQLite has one process.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, Table, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option a write transaction sets so that SQLite takes the write lock at BEGIN.
IMMEDIATE = "hitl_begin_immediate"
# Key of the advisory lock PostgreSQL writers of the event log take (any constant).
_EVENT_LOG_LOCK = 0x68_69_74_6C
# Key of the advisory lock migrations take, so processes starting together migrate in turn.
_MIGRATION_LOCK = 0x68_69_74_6D
# LISTEN/NOTIFY channel of commits that add events or outbox rows (per database).
COMMIT_CHANNEL = "livechat_hitl_commits"


def async_url(url: str) -> URL:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; `postgresql://` → `+asyncpg`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def is_sqlite(engine_or_conn: AsyncEngine | AsyncConnection | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine(url: str) -> AsyncEngine:
    target = async_url(url)
    if target.get_backend_name() != "sqlite":
        return create_async_engine(target, pool_pre_ping=True)
    if is_memory_sqlite(target):
        engine = create_async_engine(
            target, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        # aiosqlite: migrations and tools. The store's own statements on a file go
        # through `sync_twin` instead, in the loop's thread (SqlStore).
        engine = create_async_engine(target)
    _configure_sqlite(engine)
    return engine


def runs_inline(engine: AsyncEngine) -> bool:
    """Whether the store runs this engine's statements in the loop's thread, on a
    synchronous twin: SQLite on a local file, without driver options in the URL."""
    url = engine.url
    return is_sqlite(engine) and not is_memory_sqlite(url) and not url.query


def sync_twin(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the same SQLite file (the standard sqlite3 driver), for
    statements run in the loop's thread without SQLAlchemy's asyncio layer."""
    twin = sa_create_engine(engine.url.set(drivername="sqlite"))
    _configure_sqlite_engine(twin)
    return twin


def _configure_sqlite(engine: AsyncEngine) -> None:
    _configure_sqlite_engine(engine.sync_engine)


def _configure_sqlite_engine(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below) instead of the driver's legacy control.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Statement journals (a multi-row statement inside a transaction) in memory,
            # not in a temporary file opened and closed around the statement.
            cursor.execute("PRAGMA temp_store=MEMORY")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the lock up front: a deferred transaction that reads and then
        # writes could fail to upgrade while another process writes.
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement on its own (the store's persistent reader)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(IMMEDIATE, False) else "BEGIN")


def serialises_writers(engine: AsyncEngine) -> bool:
    """SQLite has one writer: queue writers in-process rather than on busy_timeout."""
    return is_sqlite(engine)


def insert_ignoring_conflicts(conn: AsyncConnection, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING: rowcount 0 means the key existed."""
    if is_sqlite(conn):
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


def upsert(conn: AsyncConnection, table: Table, values: dict[str, Any], key: str) -> Insert:
    """INSERT … ON CONFLICT (key) DO UPDATE SET every other column."""
    updates = {name: value for name, value in values.items() if name != key}
    if is_sqlite(conn):
        sqlite_stmt = sqlite.insert(table).values(values)
        return sqlite_stmt.on_conflict_do_update(index_elements=[key], set_=updates)
    pg_stmt = postgresql.insert(table).values(values)
    return pg_stmt.on_conflict_do_update(index_elements=[key], set_=updates)


def lock_for_claim(conn: AsyncConnection, query: Select[Any], table: Table) -> Select[Any]:
    """Claiming query: PostgreSQL skips rows another process is claiming right now.

    SQLite needs nothing: the claim runs in a BEGIN IMMEDIATE transaction."""
    if is_sqlite(conn):
        return query
    return query.with_for_update(skip_locked=True, of=table)


async def serialise_log_writes(
    conn: AsyncConnection, *, events: bool, outbox_handoffs: Iterable[str]
) -> None:
    """Make `seq` order equal commit order for the event log and each handoff's outbox.

    Under PostgreSQL two transactions may take sequence values 7 and 8 and commit 8
    first; a reader of "everything after 6" would then see 8 and move past 7 for good.
    A transaction-scoped advisory lock serialises the writers (SQLite already has one).
    """
    if is_sqlite(conn):
        return
    keys = sorted({_lock_key(f"outbox:{handoff_id}") for handoff_id in outbox_handoffs})
    if events:
        keys = sorted({*keys, _EVENT_LOG_LOCK})
    for key in keys:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def serialise_migrations(conn: AsyncConnection) -> None:
    """Several gateway processes started at once on a fresh PostgreSQL database: the
    first migrates, the others wait for its commit and then find the schema at head."""
    if is_sqlite(conn):
        return  # BEGIN IMMEDIATE already admits one migrating writer
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


async def announce_commit(conn: AsyncConnection) -> None:
    """Wake every process's waiters once this transaction commits (PostgreSQL only).

    NOTIFY is transactional: listeners hear it only after the commit, so a woken reader
    always finds the new rows; a rolled-back transaction announces nothing. Several
    NOTIFYs with the same payload in one transaction reach listeners once."""
    if is_sqlite(conn):
        return
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": COMMIT_CHANNEL})


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode())


def violates(exc: IntegrityError, constraint: str) -> bool:
    """Whether an IntegrityError comes from the named constraint (or its column).

    SQLite names the column ("UNIQUE constraint failed: handoffs.open_conversation_id"),
    PostgreSQL the constraint ("uq_handoffs_open_conversation_id")."""
    return constraint in str(exc.orig)
