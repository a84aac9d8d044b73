"""Several outbox relays, each on its own engine with its own LISTEN connection, sharing
one PostgreSQL database: every row delivered once, each handoff's rows one at a time and
in order, and the rows of a relay that hangs (a frozen or killed process) taken over
once its lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from livechat_hitl.clock import SystemClock
from livechat_hitl.domain.models import (
    Change,
    EndUser,
    Handoff,
    OutboxItem,
    OutboxRow,
    OutboxStatus,
    OutboxTarget,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.outbox.relay import OutboxRelay
from livechat_hitl.outbox.retry import RetryPolicy
from livechat_hitl.outbox.sinks import Delivered, Failed
from livechat_hitl.store import LocalNotifier, PgNotifier, SqlStore, open_store

pytestmark = pytest.mark.postgres

HANDOFFS = 12
ROWS_PER_HANDOFF = 12


@dataclass
class Peer:
    """What the far side saw, across every relay."""

    deliveries: list[tuple[str, str, int]] = field(default_factory=list)  # relay, handoff, n
    in_flight: dict[str, str] = field(default_factory=dict)  # handoff → row being delivered
    overlaps: list[str] = field(default_factory=list)

    def by_handoff(self) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = defaultdict(list)
        for _relay, handoff_id, n in self.deliveries:
            seen[handoff_id].append(n)
        return seen


class RecordingSink:
    def __init__(self, name: str, peer: Peer, *, hang: bool = False) -> None:
        self.name = name
        self.peer = peer
        self.hang = hang
        self.started = asyncio.Event()

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        self.started.set()
        if self.hang:
            await asyncio.Event().wait()  # a frozen process: holds its leases, says nothing
        if row.handoff_id in self.peer.in_flight:
            self.peer.overlaps.append(f"{row.id} while {self.peer.in_flight[row.handoff_id]}")
        self.peer.in_flight[row.handoff_id] = row.id
        try:
            await asyncio.sleep(random.uniform(0, 0.004))
            if random.random() < 0.1:
                return Failed(error="flaky peer", retryable=True)
            self.peer.deliveries.append((self.name, row.handoff_id, int(row.payload["n"])))
            return Delivered()
        finally:
            del self.peer.in_flight[row.handoff_id]


@contextlib.asynccontextmanager
async def process(
    url: str, name: str, peer: Peer, *, hang: bool = False, lease: float = 30.0
) -> AsyncIterator[tuple[SqlStore, OutboxRelay, RecordingSink]]:
    """One gateway process's share: an engine, a LISTEN connection and a relay whose
    only wake-ups besides its own are NOTIFYs (idle wait one minute)."""
    local = LocalNotifier()
    sink = RecordingSink(name, peer, hang=hang)
    async with open_store(url, notifier=local) as store, PgNotifier(url, local):
        relay = OutboxRelay(
            store,
            {OutboxTarget.LIVECHAT: sink},
            SystemClock(),
            local,
            RetryPolicy(base=0.01, cap=0.05),
            lease_seconds=lease,
            batch=8,
            concurrency=8,
            idle_wait=60.0,
            stop_grace=0.0,
        )
        async with relay:
            yield store, relay, sink


def _handoff(n: int) -> Handoff:
    now = datetime.now(UTC)
    return Handoff(
        id=f"h{n:03d}",
        conversation_id=f"conv-{n}",
        state=HandoffState.REQUESTED,
        user=EndUser(id=f"u-{n}"),
        group_id=0,
        created_at=now,
        updated_at=now,
    )


def _rows(h: Handoff, numbers: range) -> tuple[OutboxItem, ...]:
    return tuple(
        OutboxItem(
            id=f"ob-{h.id}-{n:03d}",
            handoff_id=h.id,
            target=OutboxTarget.LIVECHAT,
            kind="send_message",
            payload={"n": n},
        )
        for n in numbers
    )


async def _write_lanes(writer: SqlStore) -> None:
    """Each handoff gets its rows in small commits, the handoffs concurrently."""
    handoffs = [_handoff(n) for n in range(HANDOFFS)]
    for h in handoffs:
        assert await writer.commit(Change(handoff=h))

    async def lane(h: Handoff) -> None:
        for start in range(0, ROWS_PER_HANDOFF, 3):
            await writer.commit(Change(outbox=_rows(h, range(start, start + 3))))
            await asyncio.sleep(random.uniform(0, 0.01))

    await asyncio.gather(*(lane(h) for h in handoffs))


async def _drained(store: SqlStore, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await store.outbox_backlog():
            await asyncio.sleep(0.05)


async def test_three_relays_deliver_every_row_once_in_order_per_handoff(pg_url: str) -> None:
    peer = Peer()
    async with (
        open_store(pg_url) as writer,
        process(pg_url, "p1", peer),
        process(pg_url, "p2", peer),
        process(pg_url, "p3", peer),
    ):
        await asyncio.sleep(0.2)  # every relay has found nothing and sleeps a minute
        await _write_lanes(writer)  # a fourth process writes: only NOTIFY wakes the relays
        await _drained(writer, timeout=30)
        delivered = await writer.list_outbox(limit=10_000)
    assert peer.overlaps == []
    expected = list(range(ROWS_PER_HANDOFF))
    assert peer.by_handoff() == {f"h{n:03d}": expected for n in range(HANDOFFS)}
    assert {row.status for row in delivered} == {OutboxStatus.DELIVERED}
    relays = {relay for relay, _h, _n in peer.deliveries}
    assert len(relays) >= 2, f"one relay did all the work: {relays}"


async def test_a_frozen_relays_rows_are_taken_over_after_its_lease(pg_url: str) -> None:
    peer = Peer()
    lease = 1.0
    async with (
        open_store(pg_url) as writer,
        process(pg_url, "frozen", peer, hang=True, lease=lease) as (_s, _r, frozen),
    ):
        await _write_lanes(writer)
        await frozen.started.wait()
        await asyncio.sleep(0.2)  # it holds up to 8 leases now
        held = [row for row in await writer.list_outbox(limit=10_000) if row.lease_until]
        assert held
        async with (
            process(pg_url, "p2", peer, lease=lease),
            process(pg_url, "p3", peer, lease=lease),
        ):
            await _drained(writer, timeout=30)
    # leaving the block cancelled the frozen relay's deliveries: it never recorded
    assert peer.overlaps == []
    expected = list(range(ROWS_PER_HANDOFF))
    assert peer.by_handoff() == {f"h{n:03d}": expected for n in range(HANDOFFS)}
    assert {relay for relay, _h, _n in peer.deliveries} <= {"p2", "p3"}
