"""A peer down for most of a day: rows wait and retry with capped backoff for at least
24 hours (CONTRACT §3: "retried ... for at least 24 hours"), then drain in order when the
peer is back. Driven by a FrozenClock, one relay pass per step, so a day takes no time."""

from __future__ import annotations

from datetime import timedelta

from relay_fakes import FakeSink, seed

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import OutboxRow, OutboxStatus, OutboxTarget
from livechat_hitl.outbox import Failed, OutboxRelay, RetryPolicy
from livechat_hitl.store import LocalNotifier, SqlStore

BOT = OutboxTarget.BOT_WEBHOOK
POLICY = RetryPolicy(jitter=lambda: 1.0)  # the defaults: 1 s doubling to a 300 s cap, 24 h


async def test_a_row_23_hours_old_still_retries_and_the_lane_drains_in_order(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    down = True

    def peer(row: OutboxRow) -> Failed | None:
        return Failed(error="bot endpoint answered 503: down", retryable=True) if down else None

    sink = FakeSink(script=peer)
    relay = OutboxRelay(store, {BOT: sink}, clock, notifier, POLICY)
    handoff, ids = await seed(store, clock, 5, target=BOT)
    other, other_ids = await seed(store, clock, 3, target=BOT)
    start = clock.now()

    # 23 hours of a peer answering 503, one relay pass every simulated minute.
    while clock.now() - start < timedelta(hours=23):
        await relay.run_once()
        clock.advance(minutes=1)
    head = await store.get_outbox_row(ids[0])
    assert head is not None
    assert head.status is OutboxStatus.PENDING  # not dead at 23 h
    assert head.attempts >= 23 * 60 * 60 / 300 - 5  # capped backoff: ~every 5 minutes
    assert head.last_error is not None
    assert "503" in head.last_error
    # The first row of each handoff is the only one tried: the lane keeps its order.
    assert {r.id for r in sink.attempts} == {ids[0], other_ids[0]}

    down = False
    for _ in range(30):
        await relay.run_once()
        clock.advance(minutes=1)
    order = [r.id for r in sink.delivered if r.handoff_id == handoff.id]
    assert order == ids
    assert [r.id for r in sink.delivered if r.handoff_id == other.id] == other_ids
    for row_id in [*ids, *other_ids]:
        row = await store.get_outbox_row(row_id)
        assert row is not None
        assert row.status is OutboxStatus.DELIVERED


async def test_after_24_hours_and_a_few_tries_the_row_is_dead_and_keeps_its_error(
    store: SqlStore, clock: FrozenClock, notifier: LocalNotifier
) -> None:
    sink = FakeSink(script=lambda row: Failed(error="bot endpoint answered 500: x", retryable=True))
    relay = OutboxRelay(store, {BOT: sink}, clock, notifier, POLICY)
    _handoff, ids = await seed(store, clock, 2, target=BOT)
    for _ in range(25 * 60):
        await relay.run_once()
        clock.advance(minutes=1)
    head = await store.get_outbox_row(ids[0])
    assert head is not None
    assert head.status is OutboxStatus.DEAD
    assert head.last_error == "bot endpoint answered 500: x"
    assert clock.now() - head.created_at >= timedelta(hours=24)
