"""The relay against the real SqlStore (temporary SQLite file) and fake sinks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from relay_fakes import FakeLaneSink, FakeSink, eventually, new_handoff, seed

from livechat_hitl.clock import FrozenClock, SystemClock
from livechat_hitl.domain.models import (
    BotEvent,
    Change,
    EventType,
    OutboxItem,
    OutboxRow,
    OutboxStatus,
    OutboxTarget,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.outbox import Delivered, Failed, OutboxRelay, RetryPolicy
from livechat_hitl.store import LocalNotifier, SqlStore
from livechat_hitl.store.group_commit import GroupCommitter

LIVECHAT = OutboxTarget.LIVECHAT
STEADY = RetryPolicy(jitter=lambda: 1.0)  # no randomness: delay = base * 2^(n-1)


def relay(
    store: SqlStore,
    clock: FrozenClock,
    notifier: LocalNotifier,
    sink: FakeSink,
    **options: object,
) -> OutboxRelay:
    policy = options.pop("policy", STEADY)
    return OutboxRelay(
        store,
        {LIVECHAT: sink},
        clock,
        notifier,
        policy,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def count_claims(store: SqlStore) -> list[int]:
    """Counts the store's claims from now on, in the one item of the list returned."""
    claims = [0]
    real_claim = store.claim_due

    async def counting_claim(**kwargs: object) -> list[OutboxRow]:
        claims[0] += 1
        return await real_claim(**kwargs)  # type: ignore[arg-type]

    store.claim_due = counting_claim  # type: ignore[method-assign]
    return claims


async def _status(store: SqlStore, row_id: str) -> OutboxRow:
    row = await store.get_outbox_row(row_id)
    assert row is not None
    return row


async def test_in_order_per_handoff_and_parallel_across_handoffs(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    seeded = [await seed(store, clock, 5) for _ in range(12)]
    sink = FakeSink(delay=0.01)
    async with relay(store, clock, notifier, sink, concurrency=8, batch=4):
        await eventually(lambda: len(sink.delivered) == 60)
    assert not sink.overlapping_handoff  # never two rows of one handoff at once
    assert sink.max_in_flight > 1  # different handoffs went out together
    for h, ids in seeded:
        assert [r.id for r in sink.delivered if r.handoff_id == h.id] == ids
    assert len({r.id for r in sink.attempts}) == len(sink.attempts) == 60  # exactly once
    assert await store.outbox_backlog() == 0


async def test_run_once_handles_one_row_per_handoff(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    (_, [a0, a1]), (_, [b0]) = await seed(store, clock, 2), await seed(store, clock, 1)
    sink = FakeSink()
    worker = relay(store, clock, notifier, sink)
    assert await worker.run_once() == 2
    assert [r.id for r in sink.delivered] == [a0, b0]
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert [r.id for r in sink.delivered] == [a0, b0, a1]
    assert worker.counts == {"delivered": 3}


async def test_delivered_change_commits_with_the_row(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    h, [row_id] = await seed(store, clock, 1)
    started = BotEvent("evt-started", EventType.STARTED, h.id, h.conversation_id, clock.now(), {})
    sink = FakeSink(script=lambda row: Delivered(change=Change(events=(started,))))
    assert await relay(store, clock, notifier, sink).run_once() == 1
    assert (await _status(store, row_id)).status is OutboxStatus.DELIVERED
    assert [e.id for e in await store.events_after(0)] == ["evt-started"]


async def test_retry_after_failure_with_backoff(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, [row_id, second] = await seed(store, clock, 2)
    failures = iter([Failed("503 busy", retryable=True), Failed("503 busy", retryable=True)])
    sink = FakeSink(script=lambda row: next(failures, None))
    worker = relay(store, clock, notifier, sink)
    start = clock.now()

    assert await worker.run_once() == 1
    row = await _status(store, row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 1, "503 busy")
    assert row.next_attempt_at == start + timedelta(seconds=1)
    assert await worker.run_once() == 0  # not due yet, and `second` waits behind it

    clock.advance(1)
    assert await worker.run_once() == 1
    row = await _status(store, row_id)
    assert row.attempts == 2
    assert row.next_attempt_at == clock.now() + timedelta(seconds=2)  # doubled

    clock.advance(2)
    assert await worker.run_once() == 1
    assert (await _status(store, row_id)).status is OutboxStatus.DELIVERED
    assert await worker.run_once() == 1
    assert [r.id for r in sink.delivered] == [row_id, second]
    assert worker.counts == {"retry": 2, "delivered": 2}


async def test_retry_after_is_honoured(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, [row_id] = await seed(store, clock, 1)
    sink = FakeSink(script=lambda row: Failed("429", retryable=True, retry_after=42.0))
    assert await relay(store, clock, notifier, sink).run_once() == 1
    row = await _status(store, row_id)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=42)
    assert await store.next_due_at([LIVECHAT], after=clock.now()) == clock.now() + timedelta(
        seconds=42
    )


async def test_permanent_failure_goes_dead_and_commits_its_change(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    h, [row_id, later] = await seed(store, clock, 2)
    current = await store.get_handoff(h.id)
    assert current is not None
    failed = replace(current, state=HandoffState.FAILED, error={"type": "x", "message": "no"})
    sink = FakeSink(
        script=lambda row: Failed("group_offline", retryable=False, change=Change(handoff=failed))
    )
    worker = relay(store, clock, notifier, sink)
    assert await worker.run_once() == 1
    row = await _status(store, row_id)
    assert (row.status, row.last_error, row.attempts) == (OutboxStatus.DEAD, "group_offline", 1)
    stored = await store.get_handoff(h.id)
    assert stored is not None
    assert stored.state is HandoffState.FAILED
    clock.advance(86400)
    assert await worker.run_once() == 0  # the dead row holds back the handoff's next row
    assert (await _status(store, later)).attempts == 0
    assert worker.counts == {"dead": 1}


async def test_retryable_failure_goes_dead_after_max_age(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, [row_id] = await seed(store, clock, 1)
    policy = RetryPolicy(max_age=timedelta(hours=1), min_attempts=2, jitter=lambda: 1.0)
    sink = FakeSink(script=lambda row: Failed("timeout", retryable=True))
    worker = relay(store, clock, notifier, sink, policy=policy)
    assert await worker.run_once() == 1  # attempt 1, young: retry
    clock.advance(hours=2)
    assert await worker.run_once() == 1  # attempt 2, older than an hour: dead
    row = await _status(store, row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.DEAD, 2, "timeout")
    assert [r.id for r in await store.list_outbox(dead_only=True)] == [row_id]


async def test_a_stale_outcome_is_delivered_again(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    h, [row_id] = await seed(store, clock, 1)
    read_early = await store.get_handoff(h.id)
    assert read_early is not None
    assert await store.commit(Change(handoff=read_early))  # someone else moved it on
    stale = Change(handoff=replace(read_early, chat_id="CHAT"))
    answers = iter([Delivered(change=stale)])
    sink = FakeSink(script=lambda row: next(answers, None))
    worker = relay(store, clock, notifier, sink)
    assert await worker.run_once() == 1
    row = await _status(store, row_id)
    assert row.status is OutboxStatus.PENDING
    assert row.last_error is not None
    assert row.last_error.startswith("StaleHandoff")
    clock.advance(5)
    assert await worker.run_once() == 1
    assert (await _status(store, row_id)).status is OutboxStatus.DELIVERED
    assert worker.counts == {"stale": 1, "delivered": 1}


async def test_crashed_lease_is_recovered_exactly_once(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, [row_id] = await seed(store, clock, 1)
    hanging = FakeSink(delay=3600)
    first = relay(store, clock, notifier, hanging, lease_seconds=30)
    crashed = asyncio.create_task(first.run_once())
    await eventually(lambda: len(hanging.attempts) == 1)
    crashed.cancel()  # the process dies mid-delivery: the row stays leased
    with pytest.raises(asyncio.CancelledError):
        await crashed

    healthy = FakeSink()
    second = relay(store, clock, notifier, healthy, lease_seconds=30)
    assert await second.run_once() == 0  # still leased
    clock.advance(31)
    assert await second.run_once() == 1
    assert await second.run_once() == 0
    assert [r.id for r in healthy.delivered] == [row_id]
    assert hanging.delivered == []
    assert (await _status(store, row_id)).status is OutboxStatus.DELIVERED


async def test_a_raising_sink_does_not_stop_the_loop(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, [row_id] = await seed(store, clock, 1)
    raised = []

    def script(row: OutboxRow) -> Exception | None:
        if not raised:
            raised.append(row.id)
            return RuntimeError("boom")
        return None

    sink = FakeSink(script=script)
    async with relay(store, clock, notifier, sink) as worker:
        await eventually(lambda: bool(raised))
        await asyncio.sleep(0.05)
        row = await _status(store, row_id)
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
        assert row.last_error == "RuntimeError: boom"
        assert worker.running
        clock.advance(5)
        notifier.notify()  # time moved; a real clock would simply reach the due time
        await eventually(lambda: len(sink.delivered) == 1)
        assert worker.running
    assert worker.counts == {"retry": 1, "delivered": 1}


async def test_the_loop_sleeps_until_notified(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    claims = count_claims(store)
    sink = FakeSink()
    async with relay(store, clock, notifier, sink, idle_wait=3600):
        await eventually(lambda: claims[0] >= 1)
        await asyncio.sleep(0.2)
        idle_claims = claims[0]
        assert idle_claims <= 2  # asleep, not polling
        _, [row_id] = await seed(store, clock, 1)  # the commit notifies
        await eventually(lambda: len(sink.delivered) == 1, timeout=2)
        assert sink.delivered[0].id == row_id


async def test_the_loop_wakes_when_a_retry_is_due(store: SqlStore, notifier: LocalNotifier) -> None:
    real = SystemClock()
    h = new_handoff(FrozenClock(real.now()))
    answers = iter([Failed("429", retryable=True, retry_after=0.2)])
    sink = FakeSink(script=lambda row: next(answers, None))
    store.clock = real
    async with relay(store, real, notifier, sink, idle_wait=3600):  # type: ignore[arg-type]
        item = OutboxItem("x-1", h.id, LIVECHAT, "work", {})
        assert await store.commit(Change(handoff=h, outbox=(item,)))
        await eventually(lambda: len(sink.attempts) == 1, timeout=2)
        await eventually(lambda: len(sink.delivered) == 1, timeout=2)  # no notify needed


async def test_stop_cancels_stuck_deliveries(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    await seed(store, clock, 1)
    sink = FakeSink(delay=3600)
    worker = relay(store, clock, notifier, sink, stop_grace=0.05)
    async with worker:
        await eventually(lambda: len(sink.attempts) == 1)
    assert not worker.running
    assert sink.delivered == []


def test_a_relay_needs_a_sink(store: SqlStore, clock: FrozenClock, notifier: LocalNotifier) -> None:
    with pytest.raises(ValueError, match="sink"):
        OutboxRelay(store, {}, clock, notifier)


async def test_outcomes_are_counted_for_prometheus(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        labels = {"target": "livechat", "outcome": outcome}
        return REGISTRY.get_sample_value("hitl_outbox_deliveries_total", labels) or 0.0

    before = count("delivered"), count("dead")
    await seed(store, clock, 1)
    await seed(store, clock, 1)
    answers = iter([None, Failed("no", retryable=False)])
    seen: list[str] = []
    worker = relay(
        store,
        clock,
        notifier,
        FakeSink(script=lambda row: next(answers)),
        on_outcome=lambda row, label: seen.append(label),
    )
    assert await worker.run_once() == 2
    assert sorted(seen) == ["dead", "delivered"]
    assert (count("delivered"), count("dead")) == (before[0] + 1, before[1] + 1)


# -- lanes: a backlog of one handoff goes out as one batch ------------------------------


async def test_a_backlog_goes_out_in_lane_batches_in_order(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    seeded = [await seed(store, clock, 10) for _ in range(3)]
    sink = FakeLaneSink(lane_size=4)
    worker = relay(store, clock, notifier, sink)  # type: ignore[arg-type]
    while await worker.run_once():
        pass
    for h, ids in seeded:
        assert [r.id for r in sink.delivered if r.handoff_id == h.id] == ids
        lanes = [lane for lane in sink.lanes if lane[0].startswith(h.id)]
        assert [len(lane) for lane in lanes] == [4, 4, 2]
    assert worker.counts == {"delivered": 30}
    assert await store.outbox_backlog() == 0


async def test_a_failure_in_a_lane_keeps_what_went_out_and_gives_back_the_rest(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, ids = await seed(store, clock, 5)
    failures = {ids[2]: Failed("503 busy", retryable=True)}
    sink = FakeLaneSink(lane_size=5, script=lambda row: failures.pop(row.id, None))
    worker = relay(store, clock, notifier, sink)  # type: ignore[arg-type]
    assert await worker.run_once() == 5
    rows = [await _status(store, i) for i in ids]
    assert [r.status for r in rows] == [OutboxStatus.DELIVERED] * 2 + [OutboxStatus.PENDING] * 3
    assert [(r.attempts, r.lease_until) for r in rows[2:]] == [(1, None), (0, None), (0, None)]
    assert rows[2].last_error == "503 busy"
    assert worker.counts == {"delivered": 2, "retry": 1}
    clock.advance(1)
    assert await worker.run_once() == 3
    assert [r.id for r in sink.delivered] == ids
    assert [r.id for r in sink.attempts] == [*ids[:3], *ids[2:]]


async def test_a_sink_raising_on_a_lane_retries_its_first_row(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    _, ids = await seed(store, clock, 3)
    sink = FakeLaneSink(lane_size=3, script=lambda row: RuntimeError("boom"))
    worker = relay(store, clock, notifier, sink)  # type: ignore[arg-type]
    assert await worker.run_once() == 3
    rows = [await _status(store, i) for i in ids]
    assert [(r.status, r.attempts, r.lease_until) for r in rows] == [
        (OutboxStatus.PENDING, 1, None),
        (OutboxStatus.PENDING, 0, None),
        (OutboxStatus.PENDING, 0, None),
    ]
    assert worker.counts == {"retry": 1}


async def test_outcomes_of_lanes_ending_together_share_a_transaction(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    seeded = [await seed(store, clock, 1) for _ in range(8)]
    batches: list[int] = []
    commit_many = store.commit_many

    async def counting(changes: Any) -> Any:
        batches.append(len(changes))
        return await commit_many(changes)

    store.commit_many = counting  # type: ignore[method-assign]
    async with GroupCommitter(store) as committer:
        worker = relay(store, clock, notifier, FakeSink(), committer=committer)
        assert await worker.run_once() == 8
    rows = [await _status(store, row_id) for _, [row_id] in seeded]
    assert {r.status for r in rows} == {OutboxStatus.DELIVERED}
    assert worker.counts == {"delivered": 8}
    assert max(batches) > 1  # several lanes' outcomes in one transaction
    assert sum(batches) == 8


async def test_rows_written_while_the_relay_runs_need_no_claim(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    """The store hands the relay each new row that heads its lane while it has a free
    delivery slot; with nothing waiting behind them, the relay's wake-ups claim nothing
    (no empty claims either)."""
    claims = count_claims(store)
    sink = FakeSink()
    async with relay(store, clock, notifier, sink, idle_wait=3600, concurrency=32) as worker:
        await eventually(lambda: claims[0] >= 1)  # the first pass claims whatever is there
        before = claims[0]
        for _ in range(20):
            await seed(store, clock, 1)
        await eventually(lambda: len(sink.delivered) == 20)
        await asyncio.sleep(0.05)
    assert claims[0] == before
    assert worker.counts == {"delivered": 20}


async def test_no_wake_up_is_lost_when_rows_queue_behind_ones_in_flight(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier, monkeypatch: Any
) -> None:
    """Rows of one lane arrive while its head is out, and each delivery writes a row of
    another lane of the same handoff (an agent message becomes a bot event): every row
    goes out, in order, on wake-ups alone (the periodic claim and the idle timeout are
    pushed out of reach, so a lost wake-up hangs the test)."""
    from livechat_hitl.outbox import relay as relay_module

    monkeypatch.setattr(relay_module, "DUE_REFRESH", timedelta(hours=1))
    bot = FakeLaneSink(delay=0.003, lane_size=3)

    def to_bot(row: OutboxRow) -> Delivered:
        event = OutboxItem(f"{row.id}-bot", row.handoff_id, OutboxTarget.BOT_WEBHOOK, "e", {})
        return Delivered(change=Change(outbox=(event,)))

    inbound = FakeSink(script=to_bot, delay=0.002)
    handoffs = [new_handoff(clock) for _ in range(3)]
    for h in handoffs:
        assert await store.commit(Change(handoff=h))
    sinks = {LIVECHAT: inbound, OutboxTarget.BOT_WEBHOOK: bot}
    async with (
        GroupCommitter(store) as committer,
        OutboxRelay(store, sinks, clock, notifier, STEADY, idle_wait=3600, committer=committer),
    ):
        sent: list[str] = []
        for n in range(30):
            h = handoffs[n % 3]
            item = OutboxItem(f"{h.id}-{n:02d}", h.id, LIVECHAT, "work", {})
            await committer.commit(Change(outbox=(item,)))
            sent.append(item.id)
            if n % 4 == 0:
                await asyncio.sleep(0.004)
        await eventually(lambda: len(bot.delivered) == 30, timeout=10)
    for h in handoffs:
        mine = [r.id for r in inbound.delivered if r.handoff_id == h.id]
        assert mine == [i for i in sent if i.startswith(h.id)]
        assert [r.id for r in bot.delivered if r.handoff_id == h.id] == [f"{i}-bot" for i in mine]
