"""`InlineConnection`: SQLite statements run in the event loop's thread, straight on the
`sqlite3` connection for the store's prepared statements.

For SQLite on a local file, in WAL mode with synchronous=NORMAL, a statement takes
microseconds and a commit does not fsync, so running it inline is cheaper than any
hand-off (aiosqlite's worker thread cost ~8 thread round trips per query, and
SQLAlchemy's asyncio layer a greenlet per statement). The one thing that can block is
another process's write lock (`busy_timeout`): the gateway is the only writer of its
SQLite file (several processes are PostgreSQL's job), and this process's writers queue
on an asyncio lock in the store.

Even synchronously, SQLAlchemy's execution of a cached statement (cache key, execution
context, events, result metadata) cost ~5x the SQLite work itself on the store's hot
statements (bench/RESULTS.md). A statement the store marks with `prepared()` is
compiled by SQLAlchemy once (per set of parameter names), then executed on the DBAPI
cursor with the same bind and result processors SQLAlchemy would apply, and errors
wrapped the same way (`sqlalchemy.exc.IntegrityError` …). Any other statement goes
through SQLAlchemy on the same connection. Transactions and savepoints are issued
directly, so both kinds of statement share them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, Update, UpdateBase
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

Processor = Callable[[Any], Any] | None
_Slot = tuple[str, int, Processor]  # a placeholder's parameter, list index (-1: none), binder
S = TypeVar("S", bound=ClauseElement)

# Statements the store prepared: id -> the statement itself (kept alive, so the id stays
# its own). Only long-lived statements (module constants, per-dialect caches) belong here.
_PREPARED: dict[int, ClauseElement] = {}


def prepared(statement: S) -> S:
    """Mark a long-lived statement to be run on the DBAPI cursor by `InlineConnection`."""
    _PREPARED[id(statement)] = statement
    return statement


class _Plan:
    """One compiled form of a prepared statement, with its processors."""

    __slots__ = (
        "binders",
        "compiled",
        "expanding",
        "keys",
        "lists",
        "loaders",
        "names",
        "returns",
        "shapes",
        "sql",
    )

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        column_keys = list(keys) if isinstance(statement, Insert | Update) else None
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.expanding = "POSTCOMPILE" in compiled.string
        # The expanding (list) parameters, and the expanded SQL per set of list lengths.
        self.lists = tuple(
            name for name in compiled.positiontup or () if compiled.binds[name].expanding
        )
        self.shapes: dict[tuple[int, ...], tuple[str, tuple[_Slot, ...]]] = {}
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        self.binders = tuple(_binder(compiled.binds[name].type, dialect) for name in self.names)
        columns: Sequence[Any] = ()
        if isinstance(statement, SelectBase):
            columns = list(statement.selected_columns)
        elif isinstance(statement, UpdateBase):
            columns = list(statement.exported_columns)
        self.returns = bool(columns)
        self.keys: tuple[str, ...] | None = None  # named by the cursor, as SQLAlchemy does
        self.loaders = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def bind(self, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        values = self.compiled.construct_params(params)
        if not self.expanding:
            return self.sql, _process(self.names, self.binders, values)
        # IN (…) of a list: SQLAlchemy renders one placeholder per item, each taking
        # the processor of the parameter it came from. The SQL depends only on the
        # lists' lengths: it is expanded once per set of lengths (SQLAlchemy's
        # expansion costs ~10x the binding itself).
        if self.compiled.literal_execute_params:  # values rendered into the SQL
            sql, slots = self._expand(values)
        else:
            lengths = tuple(len(values[name]) for name in self.lists)
            shape = self.shapes.get(lengths)
            if shape is None:
                shape = self.shapes[lengths] = self._expand(values)
            sql, slots = shape
        out = []
        for name, index, binder in slots:
            value = values[name] if index < 0 else values[name][index]
            out.append(value if binder is None else binder(value))
        return sql, tuple(out)

    def _expand(self, values: Mapping[str, Any]) -> tuple[str, tuple[_Slot, ...]]:
        state = self.compiled.construct_expanded_state(values)
        binder = dict(zip(self.names, self.binders, strict=True))
        source = {name: (name, -1) for name in self.names}
        for name, expanded in state.parameter_expansion.items():
            for index, item in enumerate(expanded):
                source[item] = (name, index)
        slots = []
        for placeholder in state.positiontup or ():
            name, index = source[placeholder]
            slots.append((name, index, binder.get(name)))
        return state.statement, tuple(slots)

    def named(self, cursor: sqlite3.Cursor) -> tuple[str, ...]:
        if self.keys is None:
            if not cursor.description:  # nothing was executed (an empty batch)
                return ()
            self.keys = tuple(column[0] for column in cursor.description)
        return self.keys

    def load(self, raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        loaders = self.loaders
        if not any(loaders):
            return raw
        return [
            tuple(v if f is None or v is None else f(v) for f, v in zip(loaders, r, strict=True))
            for r in raw
        ]


def _binder(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """SQLAlchemy's bind processor of `type_`; for a datetime, one that remembers its last
    value: a batch binds one `now` to several columns of every row, and the processing
    (to UTC, then to text) costs microseconds each time."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    impl = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    if process is None or not isinstance(impl, DateTime):
        return process
    last: list[Any] = [_NOTHING, None]  # the value (datetimes are immutable), its result

    def remembered(value: Any) -> Any:
        if value is not last[0]:
            last[1] = process(value)
            last[0] = value
        return last[1]

    return remembered


_NOTHING = object()


def _process(
    names: tuple[str, ...], binders: tuple[Processor, ...], values: Mapping[str, Any]
) -> tuple[Any, ...]:
    out = []
    for name, binder in zip(names, binders, strict=True):
        value = values[name]
        out.append(value if binder is None else binder(value))
    return tuple(out)


class Rows:
    """The part of SQLAlchemy's `Result` the store uses, over fetched rows."""

    __slots__ = ("_keys", "_rows", "rowcount")

    def __init__(self, keys: tuple[str, ...], rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._keys = keys
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[_Row]:
        return iter(self.all())

    def all(self) -> list[_Row]:
        index = {key: i for i, key in enumerate(self._keys)}
        return [_Row(index, row) for row in self._rows]

    def mappings(self) -> _Mappings:
        return _Mappings([dict(zip(self._keys, row, strict=True)) for row in self._rows])

    def scalars(self) -> Iterator[Any]:
        return (row[0] for row in self._rows)

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise sa_exc.MultipleResultsFound("expected at most one row")
        return self._rows[0][0] if self._rows else None


class _Row(tuple[Any, ...]):
    """A row with attribute access by column key (like SQLAlchemy's `Row`)."""

    _index: dict[str, int]

    def __new__(cls, index: dict[str, int], values: tuple[Any, ...]) -> _Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None


class _Mappings(list[dict[str, Any]]):
    def first(self) -> dict[str, Any] | None:
        return self[0] if self else None


class InlineConnection:
    """The part of `AsyncConnection` the store uses, over a synchronous SQLAlchemy
    connection to SQLite whose statements run right here in the loop's thread.

    `immediate`: transactions take the write lock at BEGIN (the store's writer). Without
    a transaction every statement commits on its own (the store's reader)."""

    def __init__(self, conn: Connection, *, immediate: bool = False) -> None:
        # SQLAlchemy must not begin or end transactions on this connection: this class
        # does, on the DBAPI connection, for its own statements and SQLAlchemy's alike.
        self._conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        self._raw = raw
        self._begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}
        self._savepoints = 0
        self.dialect = conn.dialect

    @property
    def closed(self) -> bool:
        return self._conn.closed

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if id(statement) not in _PREPARED:
            return self._conn.execute(statement, parameters)
        many = isinstance(parameters, list)
        batch: list[Mapping[str, Any]] = parameters if many else [parameters or {}]
        keys = tuple(sorted(batch[0])) if batch else ()
        plan = self._plans.get((id(statement), keys))
        if plan is None:
            plan = self._plans[(id(statement), keys)] = _Plan(statement, self.dialect, keys)
        cursor = self._raw.cursor()
        sql = ""
        try:
            if many and plan.returns:  # RETURNING for several rows: one at a time
                fetched: list[tuple[Any, ...]] = []
                for params in batch:
                    sql, values = plan.bind(params)
                    fetched += cursor.execute(sql, values).fetchall()
                return Rows(plan.named(cursor), plan.load(fetched), len(fetched))
            if many and not plan.expanding:
                sql = plan.sql
                cursor.executemany(sql, [plan.bind(params)[1] for params in batch])
                return Rows((), [], cursor.rowcount)
            if many:
                count = 0
                for params in batch:
                    sql, values = plan.bind(params)
                    count += cursor.execute(sql, values).rowcount
                return Rows((), [], count)
            sql, values = plan.bind(batch[0])
            cursor.execute(sql, values)
            if not plan.returns:
                return Rows((), [], cursor.rowcount)
            raw = cursor.fetchall()
            return Rows(plan.named(cursor), plan.load(raw), cursor.rowcount)
        except sqlite3.Error as error:
            raise _wrapped(sql, parameters, error) from error
        finally:
            cursor.close()

    def pragma(self, sql: str) -> None:
        """Run a statement of SQL text as is (a `PRAGMA`), outside any transaction."""
        self._run(sql)

    def _run(self, sql: str) -> None:
        try:
            self._raw.execute(sql)
        except sqlite3.Error as error:
            raise _wrapped(sql, None, error) from error

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        self._run(self._begin_sql)
        try:
            yield
            self._run("COMMIT")
        except BaseException:
            if self._raw.in_transaction:  # the body failed, or the COMMIT did
                self._run("ROLLBACK")
            raise

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"sp_{self._savepoints}"
        self._run(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._run(f"ROLLBACK TO SAVEPOINT {name}")
            self._run(f"RELEASE SAVEPOINT {name}")
            raise
        self._run(f"RELEASE SAVEPOINT {name}")

    def close(self) -> None:
        if self._raw.in_transaction:
            self._raw.rollback()
        self._conn.close()


def _wrapped(sql: str, parameters: Any, error: sqlite3.Error) -> Exception:
    """The SQLAlchemy exception SQLAlchemy would raise for `error` (IntegrityError …)."""
    # Parameters stay out of the message: they may hold a customer's token.
    return sa_exc.DBAPIError.instance(sql, parameters, error, sqlite3.Error, hide_parameters=True)
