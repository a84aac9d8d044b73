"""Leases across processes, on every backend: a relay whose lease ran out and whose row
another process has since claimed records nothing over the new holder (neither a
failure nor a completion), and a dead process's rows are taken over after the lease.

Each `open_store` below has its own engine (its own connection pool), standing in for
another gateway process on the same database.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from store_builders import create, event, handoff, item

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import (
    Change,
    EventType,
    OutboxRow,
    OutboxStatus,
    OutboxTarget,
)
from livechat_hitl.outbox.relay import DELIVERED, SUPERSEDED, OutboxRelay
from livechat_hitl.outbox.sinks import Delivered, Failed
from livechat_hitl.store import LocalNotifier, SqlStore, open_store
from livechat_hitl.store.sql_store import ABANDONED

LIVECHAT = (OutboxTarget.LIVECHAT,)
LEASE = 30.0


async def _lane(store: SqlStore, now: datetime, rows: int = 2) -> tuple[str, list[str]]:
    h = handoff(now)
    items = tuple(item(h) for _ in range(rows))
    assert await store.commit(create(h, outbox=items))
    return h.id, [i.id for i in items]


async def _claim_one(store: SqlStore, now: datetime) -> OutboxRow:
    [row] = await store.claim_due(now=now, lease_seconds=LEASE, limit=1, targets=LIVECHAT)
    assert row.lease_until == now + timedelta(seconds=LEASE)
    return row


async def _row(store: SqlStore, row_id: str) -> OutboxRow:
    row = await store.get_outbox_row(row_id)
    assert row is not None
    return row


async def test_a_late_release_leaves_the_new_holder_alone(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    now = clock.now()
    handoff_id, [first, _second] = await _lane(store, now)
    ours = await _claim_one(store, now)
    later = now + timedelta(seconds=LEASE + 1)
    async with open_store(store_url, clock=clock) as other:
        theirs = await _claim_one(other, later)
        assert theirs.id == ours.id == first
        h = await store.get_handoff(handoff_id)
        assert h is not None
        failure = Change(events=(event(h, now, EventType.FAILED),))
        released = await store.release(
            first,
            error="timeout",
            next_attempt_at=later,
            dead=True,
            change=failure,
            lease_until=ours.lease_until,
        )
        assert released is False
        row = await _row(other, first)
        # the abandoned claim counts as an attempt: the peer may already have the row
        assert (row.status, row.lease_until, row.attempts, row.last_error) == (
            OutboxStatus.PENDING,
            theirs.lease_until,
            1,
            ABANDONED,
        )
        assert theirs.attempts == 1
        assert await other.events_after(0) == []  # the late relay's change is not written
        # the holder records its own outcome
        assert await other.release(
            first, error="503", next_attempt_at=later, dead=False, lease_until=theirs.lease_until
        )
        assert (await _row(other, first)).attempts == 2


async def test_a_late_completion_leaves_the_row_to_its_new_holder(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    now = clock.now()
    handoff_id, [first, second] = await _lane(store, now)
    h = await store.get_handoff(handoff_id)
    assert h is not None
    ours = await _claim_one(store, now)
    later = now + timedelta(seconds=LEASE + 1)
    async with open_store(store_url, clock=clock) as other:
        theirs = await _claim_one(other, later)
        late = Change(
            outbox_done=(first,),
            outbox_lease=ours.lease_until,
            events=(event(h, now, EventType.STARTED),),
        )
        assert await store.commit(late) is False
        row = await _row(other, first)
        assert (row.status, row.lease_until) == (OutboxStatus.PENDING, theirs.lease_until)
        assert await other.events_after(0) == []
        # the lane stays blocked behind the row its holder is still delivering
        assert (
            await other.claim_due(now=later, lease_seconds=LEASE, limit=9, targets=LIVECHAT) == []
        )

        own = event(h, later, EventType.STARTED)
        done = Change(outbox_done=(first,), outbox_lease=theirs.lease_until, events=(own,))
        assert await other.commit(done) is True
        assert [e.id for e in await other.events_after(0)] == [own.id]
        assert (await _row(other, first)).status is OutboxStatus.DELIVERED
        assert [
            r.id
            for r in await other.claim_due(
                now=later, lease_seconds=LEASE, limit=9, targets=LIVECHAT
            )
        ] == [second]


async def test_an_expired_lease_nobody_took_still_records(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    _h, [first, second] = await _lane(store, now)
    lease = (await _claim_one(store, now)).lease_until
    clock.advance(LEASE * 3)  # slow, but nobody claimed the row meanwhile
    assert await store.release(
        first, error="slow", next_attempt_at=clock.now(), dead=False, lease_until=lease
    )
    lease = (await _claim_one(store, clock.now())).lease_until
    clock.advance(LEASE * 3)
    assert await store.commit(Change(outbox_done=(first,), outbox_lease=lease))
    assert [
        r.id
        for r in await store.claim_due(
            now=clock.now(), lease_seconds=LEASE, limit=9, targets=LIVECHAT
        )
    ] == [second]


class _GatedSink:
    """Delivers when `gate` opens; records what it was handed."""

    def __init__(self, outcome: Delivered | Failed, gate: asyncio.Event | None = None) -> None:
        self.outcome = outcome
        self.gate = gate
        self.seen: list[OutboxRow] = []
        self.started = asyncio.Event()

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        self.seen.append(row)
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.outcome


async def test_a_relay_that_overran_its_lease_records_nothing(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    """Relay A hangs on a row past its lease; relay B (another engine) takes the row over
    and delivers it; when A finally comes back, its outcome is dropped (`superseded`),
    whether it delivered or failed."""
    for late_outcome in (Delivered(), Failed(error="boom", retryable=False)):
        _h, [first, second] = await _lane(store, clock.now())
        gate = asyncio.Event()
        slow = _GatedSink(late_outcome, gate)
        relay_a = OutboxRelay(
            store, {OutboxTarget.LIVECHAT: slow}, clock, LocalNotifier(), lease_seconds=LEASE
        )
        pending_a = asyncio.create_task(relay_a.run_once())
        await slow.started.wait()
        clock.advance(LEASE + 1)
        async with open_store(store_url, clock=clock) as other:
            fast = _GatedSink(Delivered())
            relay_b = OutboxRelay(
                other, {OutboxTarget.LIVECHAT: fast}, clock, LocalNotifier(), lease_seconds=LEASE
            )
            assert await relay_b.run_once() == 1
            assert [r.id for r in fast.seen] == [first]
            gate.set()
            assert await pending_a == 1
            assert relay_a.counts == {SUPERSEDED: 1}
            assert relay_b.counts == {DELIVERED: 1}
            row = await _row(other, first)
            assert (row.status, row.attempts) == (OutboxStatus.DELIVERED, 2)  # A's, then B's
            assert await relay_b.run_once() == 1  # the lane moves on
            assert [r.id for r in fast.seen] == [first, second]
