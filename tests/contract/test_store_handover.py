"""New outbox rows handed straight to the relay (`HandsOverRows`, SQLite only).

A row that heads its lane is leased in the transaction that writes it and handed to the
taker after the commit; anything else that may be claimable (a row not handed over, a
row waiting behind one just delivered) makes `claim_hint` grow, so a relay knows when a
claim may find something. PostgreSQL does not hand rows over (several processes claim
from one database) and says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from store_builders import create, handoff, item

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import Change, Handoff, OutboxItem, OutboxRow, OutboxTarget
from livechat_hitl.ports import HandsOverRows, RowsWanted
from livechat_hitl.store import SqlStore

LIVECHAT = OutboxTarget.LIVECHAT
BOT = OutboxTarget.BOT_WEBHOOK
LEASE = 30.0


class Taker:
    def __init__(self, limit: int = 10, targets: tuple[OutboxTarget, ...] = (LIVECHAT, BOT)):
        self.wanted: RowsWanted | None = RowsWanted(
            targets=frozenset(targets), limit=limit, lease_seconds=LEASE
        )
        self.taken: list[list[OutboxRow]] = []

    def rows_wanted(self) -> RowsWanted | None:
        return self.wanted

    def take(self, rows: list[OutboxRow]) -> None:
        self.taken.append(rows)

    def ids(self) -> list[str]:
        return [row.id for rows in self.taken for row in rows]


@pytest.fixture
def taker(store: SqlStore) -> Taker:
    taker = Taker()
    assert isinstance(store, HandsOverRows)
    if not store.hand_rows_to(taker):
        assert store.backend == "postgresql"
        pytest.skip("PostgreSQL does not hand rows over")
    return taker


async def _claim(store: SqlStore, clock: FrozenClock) -> list[str]:
    rows = await store.claim_due(
        now=clock.now(), lease_seconds=LEASE, limit=50, targets=(LIVECHAT, BOT)
    )
    return [row.id for row in rows]


async def test_postgresql_hands_nothing_over(store: SqlStore, clock: FrozenClock) -> None:
    taker = Taker()
    handing = store.hand_rows_to(taker)
    assert handing == (store.backend == "sqlite")
    h = handoff(clock.now())
    row = item(h)
    assert await store.commit(create(h, outbox=(row,)))
    assert taker.ids() == ([row.id] if handing else [])


async def test_a_row_heading_its_lane_is_handed_over_leased(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    h = handoff(clock.now())
    first, bot = item(h), item(h, BOT)
    hint = store.claim_hint
    assert await store.commit(create(h, outbox=(first, bot)))
    assert taker.ids() == [first.id, bot.id]
    for row in taker.taken[0]:
        assert row.lease_until == clock.now() + timedelta(seconds=LEASE)
        assert row.attempts == 0
    assert store.claim_hint == hint  # nothing else to claim
    assert await _claim(store, clock) == []  # they are held


async def _one_in_flight(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> tuple[Handoff, OutboxItem, datetime | None]:
    """A new handoff whose first row was handed over: (handoff, row, its lease)."""
    h = handoff(clock.now())
    first = item(h)
    assert await store.commit(create(h, outbox=(first,)))
    return h, first, taker.taken[-1][0].lease_until


async def test_a_row_behind_one_in_flight_waits_and_the_delivery_says_so(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    h, first, lease = await _one_in_flight(store, clock, taker)
    second = item(h)
    hint = store.claim_hint
    assert await store.commit(Change(outbox=(second,)))
    assert taker.ids() == [first.id]  # not the head: not handed over
    assert store.claim_hint > hint
    assert await _claim(store, clock) == []  # blocked behind the first
    hint = store.claim_hint
    assert await store.commit(Change(outbox_done=(first.id,), outbox_lease=lease))
    assert store.claim_hint > hint  # the second may go now
    assert await _claim(store, clock) == [second.id]


async def test_a_delivery_with_nothing_behind_it_leaves_the_hint(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    _h, first, lease = await _one_in_flight(store, clock, taker)
    hint = store.claim_hint
    assert await store.commit(Change(outbox_done=(first.id,), outbox_lease=lease))
    assert store.claim_hint == hint


async def test_the_next_row_of_a_lane_delivered_in_the_same_commit_is_handed_over(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    h, first, lease = await _one_in_flight(store, clock, taker)
    second = item(h)
    assert await store.commit(Change(outbox=(second,), outbox_done=(first.id,), outbox_lease=lease))
    assert taker.ids() == [first.id, second.id]


async def test_what_the_taker_does_not_want_is_left_to_a_claim(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    taker.wanted = RowsWanted(targets=frozenset({LIVECHAT}), limit=1, lease_seconds=LEASE)
    a, b = handoff(clock.now()), handoff(clock.now())
    a_row, b_row, bot = item(a), item(b), item(a, BOT)
    assert await store.commit(create(a))
    assert await store.commit(create(b))
    hint = store.claim_hint
    assert await store.commit_many([Change(outbox=(a_row, bot)), Change(outbox=(b_row,))])
    assert taker.ids() == [a_row.id]  # one wanted, and only LiveChat rows
    assert store.claim_hint > hint
    assert sorted(await _claim(store, clock)) == sorted([bot.id, b_row.id])
    taker.wanted = None  # e.g. every delivery slot busy
    c = handoff(clock.now())
    c_row = item(c)
    assert await store.commit(create(c, outbox=(c_row,)))
    assert taker.ids() == [a_row.id]
    assert await _claim(store, clock) == [c_row.id]


async def test_a_change_that_is_not_written_hands_nothing_over(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    h = handoff(clock.now())
    assert await store.commit(create(h))
    row = item(h)
    assert await store.commit(Change(outbox=(row,), dedup_key="k1"))
    again = item(h)
    assert not await store.commit(Change(outbox=(again,), dedup_key="k1"))  # seen
    results = await store.commit_many(
        [Change(outbox=(item(h),), dedup_key="k1"), Change(outbox=(item(h),), dedup_key="k1")]
    )
    assert results == [False, False]
    assert taker.ids() == [row.id]


async def test_nobody_takes_once_the_taker_is_gone(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    store.hand_rows_to(None)
    h = handoff(clock.now())
    row = item(h)
    hint = store.claim_hint
    assert await store.commit(create(h, outbox=(row,)))
    assert taker.ids() == []
    assert store.claim_hint > hint
    assert await _claim(store, clock) == [row.id]


async def test_each_lane_of_a_handoff_keeps_its_own_waiting_rows(
    store: SqlStore, clock: FrozenClock, taker: Taker
) -> None:
    """A delivery in one lane with nothing behind it says nothing about the handoff's
    other lane: a bot event waiting there still makes the hint grow when its turn
    comes."""
    h = handoff(clock.now())
    bot_first, bot_second, message = item(h, BOT), item(h, BOT), item(h)
    assert await store.commit(create(h, outbox=(bot_first,)))
    assert await store.commit(Change(outbox=(bot_second,)))  # behind the first
    assert await store.commit(Change(outbox=(message,)))
    leases = {row.id: row.lease_until for rows in taker.taken for row in rows}
    assert set(leases) == {bot_first.id, message.id}
    assert await store.commit(Change(outbox_done=(message.id,), outbox_lease=leases[message.id]))
    hint = store.claim_hint
    done = Change(outbox_done=(bot_first.id,), outbox_lease=leases[bot_first.id])
    assert await store.commit(done)
    assert store.claim_hint > hint
    assert await _claim(store, clock) == [bot_second.id]
