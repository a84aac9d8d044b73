"""`GroupCommitter` over the real store, on every backend: each caller gets its own
answer, a failure reaches only the caller(s) it belongs to, and stopping flushes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest
from store_builders import create, event, handoff, item, stored

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import Change
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.errors import StaleHandoff
from livechat_hitl.store import SqlStore
from livechat_hitl.store.group_commit import GroupCommitter


class Spy:
    """The store, recording the size of every batch; `fail_next` breaks one batch."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.batches: list[int] = []
        self.fail_next: Exception | None = None
        self.short_next = False  # a broken store: one result too few
        self.gate: asyncio.Event | None = None

    async def commit(self, change: Change) -> bool:
        return await self.store.commit(change)

    async def commit_many(self, changes: Sequence[Change]) -> list[bool | Exception]:
        self.batches.append(len(changes))
        if self.gate is not None:
            await self.gate.wait()
        failure, self.fail_next = self.fail_next, None
        if failure is not None:
            raise failure
        results = await self.store.commit_many(changes)
        if self.short_next:
            self.short_next = False
            return results[:-1]
        return results


async def test_concurrent_callers_get_their_own_results(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    spy = Spy(store)
    stale = Change(handoff=replace(h, state=HandoffState.ASSIGNED, version=7))
    changes = [
        Change(outbox=(item(h),), dedup_key=f"k{n % 10}") for n in range(20)
    ]  # each key twice
    changes.insert(5, stale)
    async with GroupCommitter(spy, max_batch=8) as committer:
        results = await asyncio.gather(
            *(committer.commit(c) for c in changes), return_exceptions=True
        )
    assert isinstance(results[5], StaleHandoff)  # the failure reached its caller only
    rest = results[:5] + results[6:]
    assert rest == [True] * 10 + [False] * 10  # the first of each key wins
    assert max(spy.batches) == 8  # grouped, never past the cap
    assert sum(spy.batches) == len(changes)
    stored_ids = [r.id for r in await store.list_outbox()]
    assert stored_ids == [c.outbox[0].id for c in changes[:5] + changes[6:11]]
    got = await store.get_handoff(h.id)
    assert got == stored(h)


async def test_a_failed_transaction_reaches_its_batch_and_the_next_goes_through(
    store: SqlStore, clock: FrozenClock
) -> None:
    h = handoff(clock.now())
    assert await store.commit(create(h))
    spy = Spy(store)
    spy.fail_next = ConnectionError("database went away")
    async with GroupCommitter(spy) as committer:
        first = await asyncio.gather(
            *(committer.commit(Change(events=(event(h, clock.now()),))) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, ConnectionError) for r in first)
        assert await committer.commit(Change(events=(event(h, clock.now()),))) is True
    assert len(await store.events_after(0)) == 1


async def test_stop_flushes_what_is_queued(store: SqlStore, clock: FrozenClock) -> None:
    h = handoff(clock.now())
    assert await store.commit(create(h))
    spy = Spy(store)
    spy.gate = asyncio.Event()  # the first batch hangs in the store ...
    committer = await GroupCommitter(spy, max_batch=2).__aenter__()
    first = asyncio.create_task(committer.commit(Change(outbox=(item(h),))))
    while not spy.batches:
        await asyncio.sleep(0)
    # ... while more callers queue up behind it
    later = [asyncio.create_task(committer.commit(Change(outbox=(item(h),)))) for _ in range(5)]
    await asyncio.sleep(0)
    stopping = asyncio.create_task(committer.stop())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="not running"):
        await committer.commit(Change(outbox=(item(h),)))
    spy.gate.set()
    await stopping
    assert [t.result() for t in [first, *later]] == [True] * 6
    assert spy.batches == [1, 2, 2, 1]
    assert len(await store.list_outbox()) == 6


async def test_a_caller_cancelled_while_queued_is_not_written(
    store: SqlStore, clock: FrozenClock
) -> None:
    h = handoff(clock.now())
    assert await store.commit(create(h))
    spy = Spy(store)
    spy.gate = asyncio.Event()
    async with GroupCommitter(spy) as committer:
        first = asyncio.create_task(committer.commit(Change(outbox=(item(h),))))
        while not spy.batches:
            await asyncio.sleep(0)
        gave_up = asyncio.create_task(committer.commit(Change(outbox=(item(h),))))
        kept = asyncio.create_task(committer.commit(Change(outbox=(item(h),))))
        await asyncio.sleep(0)
        gave_up.cancel()
        spy.gate.set()
        assert await first is True
        assert await kept is True
    assert gave_up.cancelled()
    assert spy.batches == [1, 1]
    assert len(await store.list_outbox()) == 2


async def test_a_change_without_a_result_fails_instead_of_hanging(
    store: SqlStore, clock: FrozenClock
) -> None:
    h = handoff(clock.now())
    assert await store.commit(create(h))
    spy = Spy(store)
    spy.short_next = True
    async with GroupCommitter(spy) as committer:
        answers = await asyncio.gather(
            *(committer.commit(Change(outbox=(item(h),))) for _ in range(3)),
            return_exceptions=True,
        )
        assert answers[:2] == [True, True]
        assert isinstance(answers[2], RuntimeError)
        assert await committer.commit(Change(outbox=(item(h),))) is True  # still running
