"""`SqlStore`: the `Store` port on SQLAlchemy Core (async), SQLite or PostgreSQL.

Every write is one transaction. Backend differences live in `dialects.py`.

Outbox ordering: a row is claimable only when no earlier row of the same handoff AND
the same target is undelivered (pending, leased or dead). The two targets (LiveChat,
the bot's webhook) are independent peers, so a bot webhook that is down does not hold
back the user's messages to LiveChat. A dead row keeps blocking the later rows of its
handoff and target until an operator retries (`retry_outbox`) or purges it.

Leases: `claim_due` stamps `lease_until`, and that value is the claim's token. A relay
records an outcome (`release`, or `commit` with `Change.outbox_lease`) only while the
row still carries its lease: once the lease ran out and another process claimed the
row, the late relay's outcome is dropped and the new holder's counts. Claiming a row
whose lease ran out without an outcome counts that lost try in `attempts`, so a sink sees
`attempts > 0` whenever the peer may already have the row.

Hand-over (SQLite): with a `RowTaker` (the relay) registered, a new row that heads its
lane is leased in the transaction that writes it and handed to the taker after the
commit; `claim_hint` grows whenever something else may have become claimable.

Several processes: on PostgreSQL, a transaction that adds events or outbox rows (or
makes rows due again) NOTIFYs `dialects.COMMIT_CHANNEL`, so the `PgListener` of every
process wakes its waiters once the rows are visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from livechat_hitl.clock import SystemClock
from livechat_hitl.domain.models import (
    BotEvent,
    Change,
    CustomerIdentity,
    Direction,
    Handoff,
    Message,
    OutboxItem,
    OutboxRow,
    OutboxStatus,
    OutboxTarget,
    Transition,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.errors import ConversationBusy, StaleHandoff
from livechat_hitl.ports import Clock, EventNotifier, RowTaker
from livechat_hitl.store import dialects, rows
from livechat_hitl.store.checkpointer import BACKSTOP_PAGES, Checkpointer
from livechat_hitl.store.inline import InlineConnection, prepared
from livechat_hitl.store.migrate import migrate_engine
from livechat_hitl.store.notifier import LocalNotifier
from livechat_hitl.store.tables import (
    dedup_keys,
    events,
    handoffs,
    identities,
    messages,
    outbox,
    transitions,
)

PENDING = str(OutboxStatus.PENDING)
DELIVERED = str(OutboxStatus.DELIVERED)
DEAD = str(OutboxStatus.DEAD)
ABANDONED = "lease expired without an outcome (the claiming process stopped or overran)"


@dataclasses.dataclass(frozen=True, slots=True)
class _Handover:
    rows: list[OutboxRow]  # claimed for the taker
    claimable: bool  # something else may be claimable now


def _by_seq(row: OutboxRow) -> int:
    return row.seq


class _AlreadyDone(Exception):
    """Roll the transaction back and report the change as already applied."""


class SqlStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        notifier: EventNotifier | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.notifier: EventNotifier = notifier or LocalNotifier()
        self._writer_lock = asyncio.Lock() if dialects.serialises_writers(engine) else None
        # One shared connection (in-memory SQLite) cannot interleave transactions.
        shared_connection = isinstance(engine.pool, StaticPool)
        self._reader_lock = self._writer_lock if shared_connection else None
        self._write_engine = engine.execution_options(**{dialects.IMMEDIATE: True})
        # SQLite in the loop's thread: one connection for writes and one (autocommit)
        # for reads, kept open, on a synchronous twin of the engine. A pool checkout,
        # BEGIN, ROLLBACK and check-in per read cost ~300 µs of Python against ~40 µs
        # for the statement itself, and SQLAlchemy's asyncio layer (a greenlet per
        # statement, the driver adapter) about half of those 40 µs.
        self._twin = dialects.sync_twin(engine) if dialects.runs_inline(engine) else None
        # The writer commits in the loop's thread: its WAL checkpoints run in a thread.
        self._checkpointer = (
            Checkpointer(str(engine.url.database)) if self._twin is not None else None
        )
        self._reader: InlineConnection | None = None
        self._writer: InlineConnection | None = None
        self._taker: RowTaker | None = None
        self._claim_hint = 0
        # Lanes (handoff, target) where a pending row may wait behind one in flight (a
        # new row that was not handed over, a claimed row with more behind it): only a
        # delivery in one of them can make another row claimable.
        self._crowded: set[tuple[str, str]] = set()

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    # -- transactions ------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections the store keeps open (SQLite); the engine stays."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        reader, writer, self._reader, self._writer = self._reader, self._writer, None, None
        for conn in (reader, writer):
            if conn is not None:
                conn.close()
        if self._twin is not None:
            self._twin.dispose()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self._writer_lock is not None:
                await stack.enter_async_context(self._writer_lock)
            if self._twin is not None:
                if self._writer is None or self._writer.closed:
                    self._writer = InlineConnection(self._twin.connect(), immediate=True)
                    if self._checkpointer is not None:
                        self._writer.pragma(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
                        self._checkpointer.start()
                await stack.enter_async_context(self._writer.begin())
                yield cast(AsyncConnection, self._writer)
                return
            conn = await stack.enter_async_context(self._write_engine.begin())
            yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._twin is not None:
            # Statements run one at a time in this thread, each its own transaction.
            if self._reader is None or self._reader.closed:
                self._reader = InlineConnection(self._twin.connect())
            yield cast(AsyncConnection, self._reader)
            return
        async with contextlib.AsyncExitStack() as stack:
            if self._reader_lock is not None:
                await stack.enter_async_context(self._reader_lock)
            conn = await stack.enter_async_context(self.engine.connect())
            yield conn

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(select(1))

    # -- the one write -------------------------------------------------------------

    async def commit(self, change: Change) -> bool:
        handed: _Handover | None = None
        try:
            async with self._write() as conn:
                now = self.clock.now()
                applied = await self._apply(conn, change, now)
                if applied:
                    handed = await self._hand_over(conn, [change], now)
        except _AlreadyDone:
            return False
        if applied:
            self._committed(handed)
        return applied

    async def commit_many(self, changes: Sequence[Change]) -> list[bool | Exception]:
        """Write several independent changes in ONE transaction (group commit).

        Per change: True (applied), False (its dedup key was seen, also earlier in the
        same batch) or the exception it raised (`StaleHandoff`, `ConversationBusy`,
        `IntegrityError` …), which undid that change only. An error of the transaction
        itself (the connection, the commit) raises, and then nothing is written."""
        if not changes:
            return []
        if len(changes) == 1:
            # Alone in its transaction: no savepoint needed to undo just this change.
            try:
                return [await self.commit(changes[0])]
            except (StaleHandoff, ConversationBusy, IntegrityError) as exc:
                return [exc]
        now = self.clock.now()
        results: list[bool | Exception]
        async with self._write() as conn:
            # Every advisory lock of the batch at once, in key order like a single
            # commit takes its own: two batches never wait on each other in a cycle.
            await dialects.serialise_log_writes(
                conn,
                events=any(change.events for change in changes),
                outbox_handoffs=[i.handoff_id for change in changes for i in change.outbox],
            )
            try:
                # Usually no change fails: one savepoint for the whole batch ...
                async with conn.begin_nested():
                    # In order; each run of changes that only add rows (webhook
                    # deliveries, mostly) a table at a time, the others one by one.
                    results = []
                    for adds_only, run in itertools.groupby(changes, key=_adds_rows_only):
                        if adds_only:
                            results += await self._add_rows(conn, list(run), now)
                        else:
                            results += [await self._apply(conn, c, now, locked=True) for c in run]
            except Exception:
                # ... and when one does, the batch again, a savepoint per change.
                results = [await self._apply_alone(conn, c, now) for c in changes]
            applied = [c for c, result in zip(changes, results, strict=True) if result is True]
            handed = await self._hand_over(conn, applied, now) if applied else None
        if applied:
            self._committed(handed)
        return results

    # -- new rows straight to the relay (SQLite) --------------------------------------

    def hand_rows_to(self, taker: RowTaker | None) -> bool:
        """From now on, claim the new outbox rows `taker` wants in the transaction that
        writes them and hand them over after the commit (SQLite in the loop's thread
        only: there one process writes at a time, so the head-of-line check in the
        writing transaction holds until the commit; PostgreSQL claims as before)."""
        self._taker = taker if self._twin is not None else None
        return self._twin is not None

    @property
    def claim_hint(self) -> int:
        return self._claim_hint

    async def _hand_over(
        self, conn: AsyncConnection, changes: Sequence[Change], now: datetime
    ) -> _Handover:
        """At the end of a write transaction that applied `changes`: lease the new rows
        the taker wants that head their lanes, and tell whether anything else may have
        become claimable (a new row not taken, or one waiting behind a delivered row)."""
        new = [item for change in changes for item in change.outbox]
        wanted = self._taker.rows_wanted() if self._taker is not None and new else None
        taken: list[OutboxRow] = []
        if wanted is not None:
            ids = [item.id for item in new if item.target in wanted.targets][: wanted.limit]
            if ids:
                lease = now + timedelta(seconds=wanted.lease_seconds)
                params = {"ids": ids, "now": now, "lease": lease}
                found = await conn.execute(_TAKE_NEW, params)
                taken = sorted((rows.outbox_from_row(r) for r in found.mappings()), key=_by_seq)
        missed = len(taken) < len(new)  # a new row not handed over: a claim's to take
        claimable = missed
        done = [row_id for change in changes for row_id in change.outbox_done]
        if done and self._crowded:
            # Rows delivered in a lane where a row may wait behind them: does one?
            params = {"ids": done, "now": now}
            lanes: dict[tuple[str, str], bool] = {}
            for handoff_id, target, waiting in await conn.execute(_WAITING_BEHIND, params):
                lanes[(handoff_id, target)] = lanes.get((handoff_id, target), False) or waiting
            for lane, waiting in lanes.items():
                if waiting:
                    claimable = True
                else:
                    self._crowded.discard(lane)
        if missed and self._taker is not None:
            # A new row that was not handed over may wait behind one in flight.
            handed = {row.id for row in taken}
            self._crowded.update((i.handoff_id, str(i.target)) for i in new if i.id not in handed)
        return _Handover(taken, claimable=claimable)

    def _committed(self, handed: _Handover | None) -> None:
        """After a commit that applied something: hand rows over, count the hint, wake up."""
        if handed is not None and handed.rows and self._taker is not None:
            self._taker.take(handed.rows)
        self._outbox_changed(claimable=handed is None or handed.claimable)

    def _outbox_changed(self, *, claimable: bool = True) -> None:
        """After a commit: a claim may find rows now (`claim_hint`); wake the waiters."""
        if claimable:
            self._claim_hint += 1
        self.notifier.notify()

    async def _add_rows(
        self, conn: AsyncConnection, changes: Sequence[Change], now: datetime
    ) -> list[bool | Exception]:
        """Changes that only add rows (a batch of webhook deliveries), written with one
        statement per table rather than per change; what `_apply` does for each."""
        keys = list(dict.fromkeys(c.dedup_key for c in changes if c.dedup_key is not None))
        new_keys: set[str] = set()
        if keys:
            stmt = _insert_dedup_key_returning(conn)
            params = [{"key": key, "created_at": now} for key in keys]
            new_keys = set((await conn.execute(stmt, params)).scalars())
        results: list[bool | Exception] = []
        applied: list[Change] = []
        for change in changes:
            key = change.dedup_key
            fresh = key is None or key in new_keys
            if key is not None:
                new_keys.discard(key)  # a second change with the key in this batch: seen
            results.append(fresh)
            if fresh:
                applied.append(change)
        transition_rows = [_transition(c.transition) for c in applied if c.transition]
        message_rows = [rows.message_values(m) for c in applied for m in c.messages]
        event_rows = [rows.event_values(e) for c in applied for e in c.events]
        outbox_rows = [_new_outbox_row(i, now) for c in applied for i in c.outbox]
        for statement, values in (
            (_INSERT_TRANSITION, transition_rows),
            (_INSERT_MESSAGE, message_rows),
            (_INSERT_EVENT, event_rows),
            (_INSERT_OUTBOX, outbox_rows),
        ):
            if values:
                await conn.execute(statement, values)
        if event_rows or outbox_rows:
            await dialects.announce_commit(conn)
        return results

    async def _apply_alone(
        self, conn: AsyncConnection, change: Change, now: datetime
    ) -> bool | Exception:
        try:
            async with conn.begin_nested():
                return await self._apply(conn, change, now, locked=True)
        except _AlreadyDone:
            return False
        except Exception as exc:  # handed to that change's caller
            return exc

    async def _apply(
        self, conn: AsyncConnection, change: Change, now: datetime, *, locked: bool = False
    ) -> bool:
        """Write `change` inside the caller's transaction. False: dedup key seen.

        `locked`: the caller already took the log-write locks this change needs."""
        if not locked:
            await dialects.serialise_log_writes(
                conn,
                events=bool(change.events),
                outbox_handoffs=[item.handoff_id for item in change.outbox],
            )
        if change.dedup_key is not None:
            stmt = _insert_dedup_key(conn)
            params = {"key": change.dedup_key, "created_at": now}
            if (await conn.execute(stmt, params)).rowcount == 0:
                return False
        if change.handoff is not None:
            await self._write_handoff(conn, change.handoff, change.expected_state)
        if change.transition is not None:
            await conn.execute(_INSERT_TRANSITION, [_transition(change.transition)])
        if change.messages:
            await conn.execute(_INSERT_MESSAGE, [rows.message_values(m) for m in change.messages])
        for message in change.message_updates:
            values = rows.message_values(message)
            for fixed in ("id", "handoff_id", "created_at"):
                del values[fixed]
            await conn.execute(update(messages).where(messages.c.id == message.id).values(values))
        if change.events:
            await conn.execute(_INSERT_EVENT, [rows.event_values(e) for e in change.events])
        if change.outbox:
            await conn.execute(_INSERT_OUTBOX, [_new_outbox_row(i, now) for i in change.outbox])
        if change.events or change.outbox:
            await dialects.announce_commit(conn)
        if change.outbox_done:
            await self._mark_delivered(conn, change.outbox_done, now, change.outbox_lease)
        if change.identity is not None:
            values = rows.identity_values(change.identity)
            await conn.execute(dialects.upsert(conn, identities, values, "user_id"))
        return True

    async def _write_handoff(
        self, conn: AsyncConnection, handoff: Handoff, expected_state: HandoffState | None
    ) -> None:
        values = rows.handoff_values(handoff)
        try:
            if handoff.version == 0:
                await conn.execute(_INSERT_HANDOFF, [{**values, "version": 1}])
                return
            # Not `id` (it never changes): naming it in the UPDATE would make SQLite look
            # for the handoff's rows in every table whose foreign key points at it.
            del values["id"]
            params = {
                **values,
                "version": handoff.version + 1,
                "b_id": handoff.id,
                "b_version": handoff.version,
            }
            stmt = _UPDATE_HANDOFF
            if expected_state is not None:
                stmt, params["b_state"] = _UPDATE_HANDOFF_IN_STATE, str(expected_state)
            if (await conn.execute(stmt, params)).rowcount == 0:
                raise StaleHandoff(handoff.id)
        except IntegrityError as exc:
            if dialects.violates(exc, "open_conversation_id"):
                raise ConversationBusy(handoff.conversation_id) from exc
            if dialects.violates(exc, "handoffs.id") or dialects.violates(exc, "pk_handoffs"):
                raise StaleHandoff(handoff.id) from exc
            raise

    async def _mark_delivered(
        self,
        conn: AsyncConnection,
        row_ids: Sequence[str],
        now: datetime,
        lease_until: datetime | None,
    ) -> None:
        wanted = set(row_ids)
        # A row another relay already delivered (its lease ran out while this one was
        # still busy) must not apply the delivery's change a second time; a row another
        # relay holds now is that relay's to record.
        params: dict[str, Any] = {"ids": list(wanted), "now": now}
        stmt = _MARK_DELIVERED
        if lease_until is not None:
            stmt, params["lease"] = _MARK_DELIVERED_UNDER_LEASE, lease_until
        if (await conn.execute(stmt, params)).rowcount != len(wanted):
            raise _AlreadyDone

    # -- handoffs ----------------------------------------------------------------

    async def get_handoff(self, handoff_id: str) -> Handoff | None:
        return await self._one_handoff(_HANDOFF_BY_ID, handoff_id)

    async def find_open_handoff(self, conversation_id: str) -> Handoff | None:
        return await self._one_handoff(_HANDOFF_BY_OPEN_CONVERSATION, conversation_id)

    async def find_handoff_by_chat(self, chat_id: str) -> Handoff | None:
        return await self._one_handoff(_HANDOFF_BY_CHAT, chat_id)

    async def _one_handoff(self, query: Any, key: str) -> Handoff | None:
        async with self._read() as conn:
            row = (await conn.execute(query, {"key": key})).mappings().first()
        return None if row is None else rows.handoff_from_row(row)

    async def list_handoffs(
        self,
        *,
        conversation_id: str | None = None,
        state: HandoffState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Handoff], str | None]:
        limit = max(1, limit)
        query = select(handoffs)
        if conversation_id is not None:
            query = query.where(handoffs.c.conversation_id == conversation_id)
        if state is not None:
            query = query.where(handoffs.c.state == str(state))
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    handoffs.c.created_at < created_at,
                    and_(handoffs.c.created_at == created_at, handoffs.c.id < last_id),
                )
            )
        query = query.order_by(handoffs.c.created_at.desc(), handoffs.c.id.desc()).limit(limit + 1)
        async with self._read() as conn:
            found = [rows.handoff_from_row(r) for r in (await conn.execute(query)).mappings()]
        page = found[:limit]
        next_cursor = encode_cursor(page[-1]) if len(found) > limit else None
        return page, next_cursor

    async def count_handoffs_by_state(self) -> dict[HandoffState, int]:
        query = select(handoffs.c.state, func.count()).group_by(handoffs.c.state)
        counts = dict.fromkeys(HandoffState, 0)
        async with self._read() as conn:
            for state, count in (await conn.execute(query)).all():
                counts[HandoffState(state)] = count
        return counts

    async def list_transitions(self, handoff_id: str) -> list[Transition]:
        query = (
            select(transitions)
            .where(transitions.c.handoff_id == handoff_id)
            .order_by(transitions.c.seq)
        )
        async with self._read() as conn:
            return [
                Transition(
                    handoff_id=r["handoff_id"],
                    from_state=None if r["from_state"] is None else HandoffState(r["from_state"]),
                    to_state=HandoffState(r["to_state"]),
                    cause=r["cause"],
                    at=r["at"],
                )
                for r in (await conn.execute(query)).mappings()
            ]

    # -- messages ----------------------------------------------------------------

    async def list_messages(self, handoff_id: str) -> list[Message]:
        query = select(messages).where(messages.c.handoff_id == handoff_id).order_by(messages.c.seq)
        async with self._read() as conn:
            return [rows.message_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def relayed_event_ids(self, handoff_id: str, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        params = {"handoff_id": handoff_id, "event_ids": list(event_ids)}
        async with self._read() as conn:
            return {str(v) for v in (await conn.execute(_RELAYED_EVENT_IDS, params)).scalars()}

    async def get_message(self, message_id: str) -> Message | None:
        query = select(messages).where(messages.c.id == message_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.message_from_row(row)

    async def find_message_by_client_id(
        self, handoff_id: str, client_message_id: str
    ) -> Message | None:
        query = select(messages).where(
            messages.c.handoff_id == handoff_id,
            messages.c.client_message_id == client_message_id,
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.message_from_row(row)

    # -- events ------------------------------------------------------------------

    async def events_after(self, seq: int, limit: int = 100) -> list[BotEvent]:
        query = select(events).where(events.c.seq > seq).order_by(events.c.seq).limit(limit)
        async with self._read() as conn:
            return [rows.event_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def get_event(self, event_id: str) -> BotEvent | None:
        query = select(events).where(events.c.id == event_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.event_from_row(row)

    # -- outbox ------------------------------------------------------------------

    async def claim_due(
        self,
        *,
        now: datetime,
        lease_seconds: float,
        limit: int,
        targets: Sequence[OutboxTarget],
        lanes: Mapping[OutboxTarget, int] | None = None,
    ) -> list[OutboxRow]:
        if limit <= 0 or not targets:
            return []
        lease_until = now + timedelta(seconds=lease_seconds)
        async with self._write() as conn:
            # One scan per target, then a fair share of each: claiming in plain `seq`
            # order let a burst of inbound deliveries starve the bot's webhook rows
            # (created later) until the whole burst was applied. Targets are independent
            # lanes; the order that matters (per handoff and target) is kept by the
            # head-of-line condition.
            params = {"now": now, "limit": limit}
            found = [
                list((await conn.execute(scan, params)).all())
                for scan in _claim_scans(conn, tuple(targets))
            ]
            per_target = [[r for rs in found for r in rs if r.target == t] for t in targets]
            heads = _fair_share(per_target, limit)
            if not heads:
                return []
            ids = [head.id for head in heads]
            for head in heads:
                if head.has_next and self._taker is not None:
                    self._crowded.add((head.handoff_id, head.target))
                size = (lanes or {}).get(OutboxTarget(head.target), 1)
                if size > 1 and head.has_next:
                    ids += await _followers(conn, head, now, size - 1)
            # A row still carrying a lease was claimed before and never got an outcome
            # recorded (its holder stopped or overran): count that as an attempt, so the
            # sink knows the peer may already have it (`attempts > 0`).
            leased = await conn.execute(_LEASE_RETURNING, {"ids": ids, "lease": lease_until})
            claimed = [rows.outbox_from_row(r) for r in leased.mappings()]
            return sorted(claimed, key=lambda row: row.seq)

    async def release(
        self,
        row_id: str,
        *,
        error: str,
        next_attempt_at: datetime,
        dead: bool,
        change: Change | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        """Record a failed attempt; with `change`, commit it in the same transaction
        (e.g. marking the handoff failed when the row goes dead).

        With `lease_until` (the value `claim_due` returned), only while the row still
        carries that lease. False, and nothing written (not `change` either), when the
        row is no longer pending under it: delivered, dead, or claimed by another relay
        since this one's lease ran out."""
        stmt = (
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.status == PENDING)
            .values(
                attempts=outbox.c.attempts + 1,
                last_error=error,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                status=DEAD if dead else PENDING,
            )
        )
        if lease_until is not None:
            stmt = stmt.where(outbox.c.lease_until == lease_until)
        try:
            async with self._write() as conn:
                if change is not None:
                    await self._apply(conn, change, self.clock.now())
                if (await conn.execute(stmt)).rowcount == 0:
                    raise _AlreadyDone
        except _AlreadyDone:
            return False  # someone else has (or had) the row: nothing of ours is written
        finally:
            self._outbox_changed()
        return True

    async def unclaim(self, row_ids: Sequence[str], *, lease_until: datetime | None) -> None:
        """Give back rows claimed but not attempted (the rest of a lane batch after a
        failure): their lease goes, and no attempt is counted."""
        if not row_ids:
            return
        stmt = update(outbox).where(outbox.c.id.in_(row_ids), outbox.c.status == PENDING)
        if lease_until is not None:
            stmt = stmt.where(outbox.c.lease_until == lease_until)
        async with self._write() as conn:
            await conn.execute(stmt.values(lease_until=None))
        self._outbox_changed()

    async def list_outbox(self, *, dead_only: bool = False, limit: int = 100) -> list[OutboxRow]:
        query = select(outbox).order_by(outbox.c.seq).limit(limit)
        if dead_only:
            query = query.where(outbox.c.status == DEAD)
        async with self._read() as conn:
            return [rows.outbox_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def get_outbox_row(self, row_id: str) -> OutboxRow | None:
        query = select(outbox).where(outbox.c.id == row_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.outbox_from_row(row)

    async def retry_outbox(self, row_id: str, *, now: datetime) -> bool:
        """Make a dead (or waiting) row due now, with a fresh attempt count."""
        return await self._reschedule(outbox.c.id == row_id, now) > 0

    async def retry_all_dead(self, *, now: datetime) -> int:
        return await self._reschedule(outbox.c.status == DEAD, now)

    async def _reschedule(self, condition: Any, now: datetime) -> int:
        stmt = (
            update(outbox)
            .where(condition, outbox.c.status != DELIVERED)
            .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
        )
        async with self._write() as conn:
            count = (await conn.execute(stmt)).rowcount
            if count:
                await dialects.announce_commit(conn)  # e.g. `outbox retry` from the CLI
        if count:
            self._outbox_changed()
        return count

    async def purge_outbox(self, *, older_than: datetime) -> int:
        """Delete delivered rows delivered before `older_than` and dead rows created
        before it. Purging a dead row unblocks the later rows of its handoff."""
        stmt = delete(outbox).where(
            or_(
                and_(outbox.c.status == DELIVERED, outbox.c.delivered_at < older_than),
                and_(outbox.c.status == DEAD, outbox.c.created_at < older_than),
            )
        )
        async with self._write() as conn:
            count = (await conn.execute(stmt)).rowcount
            if count:
                await dialects.announce_commit(conn)  # purged dead rows unblock their lanes
        if count:
            self._outbox_changed()
        return count

    async def outbox_backlog(self) -> int:
        query = (
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.status == literal_column(f"'{PENDING}'"))  # ix_outbox_pending_target
        )
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def next_due_at(
        self, targets: Sequence[OutboxTarget], *, after: datetime
    ) -> datetime | None:
        """The earliest moment later than `after` at which a pending row becomes due or
        its lease ends (None: no such row). Call it with the `now` of a claim that took
        everything it could: a row due by then was claimed, is held, or waits behind an
        earlier row of its lane, whose end wakes the relay anyway. A plain scan of the
        pending rows, no per-row look-up of the lane (this runs after most claims)."""
        if not targets:
            return None
        params = {"after": after, "targets": [str(t) for t in targets]}
        async with self._read() as conn:
            value = (await conn.execute(_NEXT_DUE, params)).scalar_one_or_none()
        assert value is None or isinstance(value, datetime)
        return value

    # -- identities ----------------------------------------------------------------

    async def get_identity(self, user_id: str) -> CustomerIdentity | None:
        query = select(identities).where(identities.c.user_id == user_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.identity_from_row(row)


def _adds_rows_only(change: Change) -> bool:
    """Whether `change` only inserts rows: a batch of those is written a table at a time."""
    return (
        change.handoff is None
        and not change.message_updates
        and not change.outbox_done
        and change.identity is None
    )


# Hot statements, built once: SQLAlchemy caches their compiled form, but a statement
# built per call pays its construction and cache-key walk each time (~3x the cost of the
# SQLite statement itself in bench/).


def _handoff_by(column: Any) -> Any:
    return prepared(
        select(handoffs)
        .where(column == bindparam("key"))
        .order_by(handoffs.c.created_at.desc(), handoffs.c.id.desc())
        .limit(1)
    )


_HANDOFF_BY_ID = _handoff_by(handoffs.c.id)
_HANDOFF_BY_OPEN_CONVERSATION = _handoff_by(handoffs.c.open_conversation_id)
_HANDOFF_BY_CHAT = _handoff_by(handoffs.c.chat_id)
_INSERT_TRANSITION = prepared(insert(transitions))
_INSERT_MESSAGE = prepared(insert(messages))
_INSERT_EVENT = prepared(insert(events))
_INSERT_OUTBOX = prepared(insert(outbox))
_INSERT_HANDOFF = prepared(insert(handoffs))
_UPDATE_HANDOFF = prepared(
    update(handoffs).where(
        handoffs.c.id == bindparam("b_id"), handoffs.c.version == bindparam("b_version")
    )
)
_UPDATE_HANDOFF_IN_STATE = prepared(_UPDATE_HANDOFF.where(handoffs.c.state == bindparam("b_state")))
_MARK_DELIVERED = prepared(
    update(outbox)
    .where(
        outbox.c.id.in_(bindparam("ids", expanding=True)),
        outbox.c.status != literal_column(f"'{DELIVERED}'"),
    )
    .values(
        status=DELIVERED,
        delivered_at=bindparam("now"),
        lease_until=None,
        attempts=outbox.c.attempts + 1,
    )
)
_MARK_DELIVERED_UNDER_LEASE = prepared(
    _MARK_DELIVERED.where(outbox.c.lease_until == bindparam("lease"))
)
_DEDUP_INSERTS: dict[str, Any] = {}


def _insert_dedup_key(conn: AsyncConnection) -> Any:
    name = conn.dialect.name
    if name not in _DEDUP_INSERTS:
        _DEDUP_INSERTS[name] = prepared(dialects.insert_ignoring_conflicts(conn, dedup_keys))
    return _DEDUP_INSERTS[name]


_DEDUP_INSERTS_RETURNING: dict[str, Any] = {}


def _insert_dedup_key_returning(conn: AsyncConnection) -> Any:
    name = conn.dialect.name
    if name not in _DEDUP_INSERTS_RETURNING:
        stmt = dialects.insert_ignoring_conflicts(conn, dedup_keys).returning(dedup_keys.c.key)
        _DEDUP_INSERTS_RETURNING[name] = prepared(stmt)
    return _DEDUP_INSERTS_RETURNING[name]


_RELAYED_EVENT_IDS = prepared(
    select(messages.c.livechat_event_id).where(
        messages.c.handoff_id == bindparam("handoff_id"),
        messages.c.direction == literal_column(f"'{Direction.TO_BOT}'"),
        messages.c.livechat_event_id.in_(bindparam("event_ids", expanding=True)),
    )
)


_due_or_free = case(
    (
        and_(outbox.c.lease_until.is_not(None), outbox.c.lease_until > outbox.c.next_attempt_at),
        outbox.c.lease_until,
    ),
    else_=outbox.c.next_attempt_at,
)
_after = bindparam("after", type_=outbox.c.next_attempt_at.type)
_NEXT_DUE = prepared(
    select(func.min(_due_or_free)).where(
        outbox.c.status == literal_column(f"'{PENDING}'"),  # ix_outbox_pending_target
        outbox.c.target.in_(bindparam("targets", expanding=True)),
        or_(outbox.c.next_attempt_at > _after, outbox.c.lease_until > _after),
    )
)
_abandoned = outbox.c.lease_until.is_not(None)
_LEASE_RETURNING = prepared(
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        lease_until=bindparam("lease"),
        attempts=case((_abandoned, outbox.c.attempts + 1), else_=outbox.c.attempts),
        last_error=case((_abandoned, ABANDONED), else_=outbox.c.last_error),
    )
    .returning(*outbox.c)
)
_CLAIM_SCANS: dict[tuple[str, tuple[OutboxTarget, ...]], list[Any]] = {}


def _claim_scans(conn: AsyncConnection, targets: tuple[OutboxTarget, ...]) -> list[Any]:
    """The statements finding each target's claimable heads (binds: now, limit): one
    per target under PostgreSQL (FOR UPDATE does not go with UNION), one UNION ALL of
    them under SQLite (a statement costs more in Python than the scan in SQLite)."""
    key = (conn.dialect.name, targets)
    if key not in _CLAIM_SCANS:
        scans = [_claimable(conn, target) for target in targets]  # built once per key
        if dialects.is_sqlite(conn) and len(scans) > 1:
            parts = [select(scan.subquery()) for scan in scans]
            scans = [union_all(*parts)]
        _CLAIM_SCANS[key] = [prepared(scan) for scan in scans]
    return _CLAIM_SCANS[key]


_FOLLOWERS: dict[str, Any] = {}


def _claimable(conn: AsyncConnection, target: OutboxTarget) -> Any:
    """The oldest due rows of `target` that head their handoff's lane (binds: now, limit)."""
    now = bindparam("now", type_=outbox.c.next_attempt_at.type)
    later = outbox.alias("later")
    has_next = select(later.c.seq).where(*_behind(later)).exists().label("has_next")
    query = (
        select(outbox.c.id, outbox.c.handoff_id, outbox.c.target, outbox.c.seq, has_next)
        .where(
            # Literals: the scan follows the partial index `ix_outbox_pending_target` in
            # `seq` order and stops at `limit`, instead of probing every pending row and
            # sorting them (which made a backlog slow down its own draining).
            outbox.c.status == literal_column(f"'{PENDING}'"),
            outbox.c.target == literal_column(f"'{target}'"),
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now),
            _is_head_of_line(),
        )
        .order_by(outbox.c.seq)
        .limit(bindparam("limit", type_=Integer))
    )
    return dialects.lock_for_claim(conn, query, outbox)


def _fair_share(per_target: list[list[Row[Any]]], limit: int) -> list[Row[Any]]:
    """Up to `limit` rows, taking one from each list in turn."""
    chosen: list[Row[Any]] = []
    for batch in itertools.zip_longest(*per_target):
        chosen.extend(row for row in batch if row is not None)
    return chosen[:limit]


async def _followers(conn: AsyncConnection, head: Row[Any], now: datetime, limit: int) -> list[str]:
    """The rows right behind a claimed head in its lane, while they are due and nobody
    holds them: claimed with it, they go out in the same delivery and commit. A row
    that is not due (or is held) ends the run, so the lane's order is kept."""
    name = conn.dialect.name
    if name not in _FOLLOWERS:
        query = (
            select(outbox.c.id, outbox.c.status, outbox.c.next_attempt_at, outbox.c.lease_until)
            .where(
                outbox.c.handoff_id == bindparam("handoff_id"),
                outbox.c.target == bindparam("target"),
                outbox.c.seq > bindparam("seq"),
                outbox.c.status != literal_column(f"'{DELIVERED}'"),
            )
            .order_by(outbox.c.seq)
            .limit(bindparam("limit", type_=Integer))
        )
        if not dialects.is_sqlite(conn):
            # Plain FOR UPDATE, not SKIP LOCKED: skipping a row would open a gap.
            query = query.with_for_update(of=outbox)
        _FOLLOWERS[name] = prepared(query)
    params = {"handoff_id": head.handoff_id, "target": head.target, "seq": head.seq, "limit": limit}
    found: list[str] = []
    for row in await conn.execute(_FOLLOWERS[name], params):
        free = row.lease_until is None or row.lease_until < now
        if row.status != PENDING or row.next_attempt_at > now or not free:
            break
        found.append(row.id)
    return found


def _behind(later: Any) -> tuple[Any, ...]:
    """`later` is an undelivered row behind the outer row in its lane (handoff, target).
    The status is a literal: only then may SQLite use the partial `ix_outbox_undelivered`."""
    return (
        later.c.handoff_id == outbox.c.handoff_id,
        later.c.target == outbox.c.target,
        later.c.seq > outbox.c.seq,
        later.c.status != literal_column(f"'{DELIVERED}'"),
    )


def _is_head_of_line() -> Any:
    earlier = outbox.alias("earlier")
    return ~(
        select(earlier.c.seq)
        .where(
            earlier.c.handoff_id == outbox.c.handoff_id,
            earlier.c.target == outbox.c.target,
            earlier.c.seq < outbox.c.seq,
            # A literal, not a bound parameter: only then may SQLite (and PostgreSQL's
            # generic plans) use the partial index `ix_outbox_undelivered`.
            earlier.c.status != literal_column(f"'{DELIVERED}'"),
        )
        .exists()
    )


# A new row that heads its lane, leased in the transaction that wrote it (binds: ids,
# now, lease); what a claim would have taken, with nobody's lease to count.
_TAKE_NEW = prepared(
    update(outbox)
    .where(
        outbox.c.id.in_(bindparam("ids", expanding=True)),
        outbox.c.status == literal_column(f"'{PENDING}'"),
        outbox.c.lease_until.is_(None),
        outbox.c.next_attempt_at <= bindparam("now", type_=outbox.c.next_attempt_at.type),
        _is_head_of_line(),
    )
    .values(lease_until=bindparam("lease", type_=outbox.c.lease_until.type))
    .returning(*outbox.c)
)
# For each row just delivered (binds: ids, now): its lane (handoff, target), and whether
# a pending row nobody holds waits behind it there (the next claim has one to take).
_later = outbox.alias("later")
_WAITING_BEHIND = prepared(
    select(
        outbox.c.handoff_id,
        outbox.c.target,
        select(_later.c.seq)
        .where(
            *_behind(_later),
            _later.c.status == literal_column(f"'{PENDING}'"),
            or_(
                _later.c.lease_until.is_(None),
                _later.c.lease_until < bindparam("now", type_=outbox.c.lease_until.type),
            ),
        )
        .exists()
        .label("waiting"),
    ).where(outbox.c.id.in_(bindparam("ids", expanding=True)))
)


def _transition(transition: Transition) -> dict[str, Any]:
    return {
        "handoff_id": transition.handoff_id,
        "from_state": None if transition.from_state is None else str(transition.from_state),
        "to_state": str(transition.to_state),
        "cause": transition.cause,
        "at": transition.at,
    }


def _new_outbox_row(item: OutboxItem, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "handoff_id": item.handoff_id,
        "target": str(item.target),
        "kind": item.kind,
        "payload": item.payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


CURSOR_PATTERN = r"^[0-9]{1,16}\.[A-Za-z0-9_-]{1,64}$"
"""A page cursor: the last item's creation time in microseconds since the epoch, a dot,
and its id. Every string of this shape is a valid position, so a cursor never fails."""

_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(handoff: Handoff) -> str:
    micros = (handoff.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{handoff.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError for a string that is not of the cursor's shape."""
    if not _CURSOR.match(cursor):
        raise ValueError("invalid cursor")
    micros, _, handoff_id = cursor.partition(".")
    return _EPOCH + timedelta(microseconds=int(micros)), handoff_id


@contextlib.asynccontextmanager
async def open_store(
    url: str,
    *,
    clock: Clock | None = None,
    notifier: EventNotifier | None = None,
    migrate: bool = True,
) -> AsyncIterator[SqlStore]:
    """Connect to `sqlite:///path.db` or `postgresql://…`, migrate, and dispose on exit."""
    engine = dialects.create_engine(url)
    try:
        if migrate:
            await migrate_engine(engine)
        store = SqlStore(engine, clock=clock, notifier=notifier)
        try:
            yield store
        finally:
            await store.close()
    finally:
        await engine.dispose()
