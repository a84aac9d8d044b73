"""The store contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from store_builders import closed, create, event, handoff, item, message, next_id, stored

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import (
    Agent,
    Change,
    CustomerIdentity,
    DeliveryStatus,
    EventType,
    OutboxStatus,
    OutboxTarget,
    QueueInfo,
    TranscriptLine,
    Transition,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.errors import ConversationBusy, StaleHandoff
from livechat_hitl.store import LocalNotifier, SqlStore, migrate, open_store
from livechat_hitl.store.tables import metadata

LIVECHAT = (OutboxTarget.LIVECHAT,)
BOTH = (OutboxTarget.LIVECHAT, OutboxTarget.BOT_WEBHOOK)


async def _schema_diff(store: SqlStore, target: sa.MetaData) -> list[object]:
    def compare(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))

    async with store.engine.connect() as conn:
        return await conn.run_sync(compare)


async def _count(store: SqlStore, table: str) -> int:
    async with store.engine.connect() as conn:
        result = await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))
        return int(result.scalar_one())


# -- schema ----------------------------------------------------------------------------


async def test_migrations_produce_exactly_the_declared_schema(store: SqlStore) -> None:
    assert await _schema_diff(store, metadata) == []


async def test_schema_comparison_notices_a_difference(store: SqlStore) -> None:
    # The test above must be able to fail: a schema with one more index differs.
    altered = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(altered)
    sa.Index("ix_extra", altered.tables["outbox"].c.kind)
    assert await _schema_diff(store, altered) != []


async def test_migrate_twice_is_harmless(store_url: str) -> None:
    await migrate(store_url)
    await migrate(store_url)
    async with open_store(store_url) as opened:
        assert await _schema_diff(opened, metadata) == []


async def test_in_memory_sqlite_url_works() -> None:
    async with open_store("sqlite:///:memory:") as opened:
        await opened.ping()
        h = handoff(datetime.now(UTC))
        assert await opened.commit(create(h))
        assert await opened.get_handoff(h.id) == stored(h)


# -- handoffs ------------------------------------------------------------------------


async def test_handoff_round_trips_every_field(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(
        now,
        title="Refund",
        description="wants a refund",
        transcript=(
            TranscriptLine("user", "hi", at=now - timedelta(minutes=1)),
            TranscriptLine("bot", "hello"),
        ),
        metadata={"plan": "pro", "n": 3},
        agent=Agent(id="agent@x", name="Agnes", avatar_url="https://a/x.png"),
        queue=QueueInfo(position=2, wait_time=40),
        chat_id="CHAT1",
        thread_id="THREAD1",
        customer_id="cust-1",
        group_id=7,
    )
    assert await store.commit(create(h))
    got = await store.get_handoff(h.id)
    assert got == stored(h)
    assert got is not None
    assert got.version == 1
    assert await store.find_handoff_by_chat("CHAT1") == stored(h)
    assert await store.find_handoff_by_chat("nope") is None
    assert await store.get_handoff("nope") is None


async def test_timestamps_round_trip_as_aware_utc(store: SqlStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    h = handoff(local, closed_at=None)
    assert await store.commit(create(h))
    got = await store.get_handoff(h.id)
    assert got is not None
    assert got.created_at == local
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.hour == 12
    assert got.created_at.microsecond == 123456

    naive = handoff(datetime(2026, 3, 1, 12, 0))
    with pytest.raises(Exception, match="naive"):
        await store.commit(create(naive))
    assert await store.get_handoff(naive.id) is None


async def test_failing_part_writes_nothing(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    m = message(h, now)
    broken = create(
        h,
        messages=(m, replace(m, text="same id again")),
        events=(event(h, now),),
        outbox=(item(h),),
        transition=Transition(h.id, None, HandoffState.REQUESTED, "start", now),
        dedup_key="start:1",
    )
    with pytest.raises(IntegrityError):
        await store.commit(broken)
    for table in ("handoffs", "messages", "events", "outbox", "transitions", "dedup_keys"):
        assert await _count(store, table) == 0, table
    # the dedup key was not recorded either: the repaired change goes through
    assert await store.commit(replace(broken, messages=(m,)))
    assert await store.list_transitions(h.id) == [broken.transition]


async def test_dedup_key_applies_a_change_once(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    first = Change(events=(event(h, now),), outbox=(item(h),), dedup_key="lc:chat:ev1")
    second = Change(events=(event(h, now),), outbox=(item(h),), dedup_key="lc:chat:ev1")
    assert await store.commit(first) is True
    assert await store.commit(second) is False
    assert [e.id for e in await store.events_after(0)] == [first.events[0].id]
    assert [r.id for r in await store.list_outbox()] == [first.outbox[0].id]


async def test_concurrent_commits_with_one_dedup_key(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    # Two stores = two engines and connection pools, racing like two processes.
    async with open_store(store_url, clock=clock) as other:
        changes = [Change(events=(event(h, now),), dedup_key="race") for _ in range(10)]
        results = await asyncio.gather(
            *((store if n % 2 else other).commit(c) for n, c in enumerate(changes))
        )
    assert sorted(results) == [False] * 9 + [True]
    assert len(await store.events_after(0)) == 1


async def test_optimistic_version(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    v1 = stored(h)
    queued = replace(v1, state=HandoffState.QUEUED, queue=QueueInfo(3, 60))
    assert await store.commit(Change(handoff=queued))
    assert await store.get_handoff(h.id) == stored(queued)

    stale = replace(v1, state=HandoffState.ASSIGNED)
    with pytest.raises(StaleHandoff):
        await store.commit(Change(handoff=stale, events=(event(h, now),)))
    assert await store.events_after(0) == []
    assert (await store.get_handoff(h.id)) == stored(queued)

    with pytest.raises(StaleHandoff):  # a second insert of the same id
        await store.commit(create(replace(h, conversation_id="other")))

    current = stored(queued)
    with pytest.raises(StaleHandoff):  # version matches, but not the expected state
        await store.commit(
            Change(handoff=replace(current, title="x"), expected_state=HandoffState.ASSIGNED)
        )
    assert await store.commit(
        Change(handoff=replace(current, title="x"), expected_state=HandoffState.QUEUED)
    )


async def test_a_handoff_update_does_not_name_its_id(store: SqlStore, clock: FrozenClock) -> None:
    """An UPDATE that names a handoff's `id` (even to itself) makes SQLite look for the
    handoff's rows in each table whose foreign key points at it, and since 0005 no
    index serves that lookup in the outbox: every handoff update would scan it."""
    if store.backend != "sqlite":
        pytest.skip("SQLite's foreign-key check; PostgreSQL compares the key's values")
    h = handoff(clock.now())
    assert await store.commit(create(h, outbox=(item(h),)))
    assert store._writer is not None
    statements: list[str] = []
    store._writer._raw.set_trace_callback(statements.append)
    try:
        queued = replace(stored(h), state=HandoffState.QUEUED, queue=QueueInfo(3, 60))
        assert await store.commit(Change(handoff=queued))
    finally:
        store._writer._raw.set_trace_callback(None)
    updates = [sql for sql in statements if sql.startswith("UPDATE handoffs SET")]
    assert len(updates) == 1
    assigned = updates[0].partition(" WHERE ")[0]
    assert "state=" in assigned.replace(" ", "")
    assert " id=" not in assigned.replace(" = ", "=")
    assert await store.get_handoff(h.id) == stored(queued)


async def test_one_open_handoff_per_conversation(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    first = handoff(now, conversation_id="conv-42")
    assert await store.commit(create(first))
    second = handoff(now, conversation_id="conv-42")
    with pytest.raises(ConversationBusy) as caught:
        await store.commit(create(second, events=(event(second, now),)))
    assert caught.value.conversation_id == "conv-42"
    assert await store.get_handoff(second.id) is None
    assert await store.find_open_handoff("conv-42") == stored(first)

    assert await store.commit(Change(handoff=closed(stored(first), now)))
    assert await store.find_open_handoff("conv-42") is None
    assert await store.commit(create(second))
    assert await store.find_open_handoff("conv-42") == stored(second)
    third = handoff(now, conversation_id="conv-42", state=HandoffState.FAILED)
    assert await store.commit(create(third))  # a closed/failed one never blocks


async def test_list_handoffs_pages_newest_first(store: SqlStore, clock: FrozenClock) -> None:
    base = clock.now()
    made = []
    for n in range(7):
        # pairs share a created_at, so the id breaks ties
        h = handoff(
            base + timedelta(seconds=n // 2),
            conversation_id=f"c{n % 2}",
            id=f"page_{(n * 5) % 7:03d}",
            state=HandoffState.CLOSED,
        )
        assert await store.commit(create(h))
        made.append(stored(h))
    expected = sorted(made, key=lambda h: (h.created_at, h.id), reverse=True)

    seen, cursor = [], None
    while True:
        page, cursor = await store.list_handoffs(limit=3, cursor=cursor)
        assert len(page) <= 3
        seen.extend(page)
        if cursor is None:
            break
    assert seen == expected

    page, cursor = await store.list_handoffs(conversation_id="c1", limit=10)
    assert page == [h for h in expected if h.conversation_id == "c1"]
    assert cursor is None
    assert await store.list_handoffs(state=HandoffState.ASSIGNED) == ([], None)
    exact, cursor = await store.list_handoffs(limit=7)
    assert len(exact) == 7
    assert cursor is None
    with pytest.raises(ValueError, match="cursor"):
        await store.list_handoffs(cursor="not-a-cursor!")


async def test_count_handoffs_by_state(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    for state in (HandoffState.REQUESTED, HandoffState.REQUESTED, HandoffState.CLOSED):
        assert await store.commit(create(handoff(now, state=state)))
    counts = await store.count_handoffs_by_state()
    assert counts[HandoffState.REQUESTED] == 2
    assert counts[HandoffState.CLOSED] == 1
    assert counts[HandoffState.ASSIGNED] == 0


# -- messages and events ---------------------------------------------------------------


async def test_messages(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    first = message(h, now, client_message_id="c-1")
    second = message(h, now, text=None, type="file", url="https://f/x.pdf", name="x.pdf")
    third = message(h, now, elements=[{"title": "card"}], type="rich", text=None)
    assert await store.commit(create(h, messages=(first, second, third)))
    assert await store.list_messages(h.id) == [first, second, third]
    assert await store.get_message(second.id) == second
    assert await store.find_message_by_client_id(h.id, "c-1") == first
    assert await store.find_message_by_client_id(h.id, "c-2") is None

    sent = replace(first, status=DeliveryStatus.DELIVERED, livechat_event_id="EV1")
    assert await store.commit(Change(message_updates=(sent,)))
    assert await store.get_message(first.id) == sent

    with pytest.raises(IntegrityError):
        await store.commit(Change(messages=(message(h, now, client_message_id="c-1"),)))


async def test_events_after_in_seq_order(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    made = [event(h, now, EventType.QUEUED), event(h, now, EventType.ASSIGNED)]
    assert await store.commit(create(h, events=tuple(made)))
    more = [event(h, now, EventType.MESSAGE) for _ in range(3)]
    for e in more:
        assert await store.commit(Change(events=(e,)))
    everything = await store.events_after(0)
    assert [e.id for e in everything] == [e.id for e in [*made, *more]]
    seqs = [e.seq for e in everything]
    assert all(s is not None for s in seqs)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5
    assert everything[0].created_at == now
    assert everything[0].data == made[0].data
    after_second = await store.events_after(seqs[1] or 0, limit=2)
    assert [e.id for e in after_second] == [more[0].id, more[1].id]
    assert await store.get_event(more[2].id) == everything[4]
    assert await store.get_event("evt_none") is None


async def test_commit_wakes_the_notifier(store: SqlStore, clock: FrozenClock) -> None:
    notifier = store.notifier
    assert isinstance(notifier, LocalNotifier)
    h = handoff(clock.now())
    before = notifier.generation
    assert await store.commit(create(h))
    assert notifier.generation > before


# -- group commit ----------------------------------------------------------------------


async def test_commit_many_dedups_against_the_store_and_within_the_batch(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    assert await store.commit(Change(events=(event(h, now),), dedup_key="seen-before"))
    notifier = store.notifier
    assert isinstance(notifier, LocalNotifier)
    before = notifier.generation
    batch = [
        Change(events=(event(h, now),), outbox=(item(h),), dedup_key="k1"),
        Change(events=(event(h, now),), outbox=(item(h),), dedup_key="k1"),
        Change(events=(event(h, now),), dedup_key="seen-before"),
        Change(events=(event(h, now),), outbox=(item(h),), dedup_key="k2"),
        Change(events=(event(h, now),)),
    ]
    assert await store.commit_many(batch) == [True, False, False, True, True]
    assert notifier.generation == before + 1  # one wake-up for the batch
    applied = [batch[0], batch[3], batch[4]]
    events = await store.events_after(0)
    assert [e.id for e in events[1:]] == [c.events[0].id for c in applied]
    assert [r.id for r in await store.list_outbox()] == [
        batch[0].outbox[0].id,
        batch[3].outbox[0].id,
    ]
    assert await store.commit(Change(events=(event(h, now),), dedup_key="k2")) is False


async def test_commit_many_keeps_the_order_of_a_mixed_batch(
    store: SqlStore, clock: FrozenClock
) -> None:
    # Runs of changes that only add rows are written a table at a time, the others one
    # by one: the rows still land in the batch's order, and a key repeats across runs.
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    h = stored(h)
    moved = replace(h, title="moved", updated_at=now)

    def rows_only(key: str | None) -> Change:
        return Change(events=(event(h, now),), outbox=(item(h),), dedup_key=key)

    batch = [
        rows_only("a"),
        rows_only("b"),
        Change(handoff=moved, events=(event(h, now),), outbox=(item(h),)),
        rows_only("a"),
        rows_only(None),
        rows_only("c"),
    ]
    assert await store.commit_many(batch) == [True, True, True, False, True, True]
    applied = [batch[0], batch[1], batch[2], batch[4], batch[5]]
    events = await store.events_after(0)
    assert [e.id for e in events] == [c.events[0].id for c in applied]
    assert [r.id for r in await store.list_outbox()] == [c.outbox[0].id for c in applied]
    got = await store.get_handoff(h.id)
    assert got is not None
    assert got.title == "moved"


async def test_commit_many_isolates_a_failing_change(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now, conversation_id="conv-batch")
    assert await store.commit(create(h))
    v1 = stored(h)
    assert await store.commit(Change(handoff=replace(v1, title="moved on")))
    m = message(h, now)
    assert await store.commit(Change(messages=(m,)))
    good_before = Change(events=(event(h, now),), outbox=(item(h),), dedup_key="ok-1")
    stale = Change(  # written against version 1, the store has 2
        handoff=replace(v1, state=HandoffState.ASSIGNED),
        events=(event(h, now),),
        outbox=(item(h),),
        dedup_key="stale-1",
    )
    busy = create(handoff(now, conversation_id="conv-batch"), dedup_key="busy-1")
    duplicate_id = Change(messages=(replace(m, text="same id"),), dedup_key="dup-1")
    good_after = Change(events=(event(h, now),), outbox=(item(h),), dedup_key="ok-2")

    results = await store.commit_many([good_before, stale, busy, duplicate_id, good_after])

    assert results[0] is True
    assert isinstance(results[1], StaleHandoff)
    assert isinstance(results[2], ConversationBusy)
    assert isinstance(results[3], IntegrityError)
    assert results[4] is True
    assert [e.id for e in await store.events_after(0)] == [
        good_before.events[0].id,
        good_after.events[0].id,
    ]
    assert [r.id for r in await store.list_outbox()] == [
        good_before.outbox[0].id,
        good_after.outbox[0].id,
    ]
    got = await store.get_handoff(h.id)
    assert got is not None
    assert (got.title, got.state, got.version) == ("moved on", HandoffState.REQUESTED, 2)
    assert await store.get_handoff(busy.handoff.id) is None  # type: ignore[union-attr]
    assert await store.list_messages(h.id) == [m]
    # a failed change left no dedup key behind: once repaired, it goes through
    repaired = replace(stale, handoff=replace(stored(replace(v1, title="moved on")), title="y"))
    assert await store.commit_many([repaired]) == [True]


async def test_commit_many_of_one_change_gives_its_own_outcome(
    store: SqlStore, clock: FrozenClock
) -> None:
    # A batch of one is written without a savepoint; the outcome is the same.
    now = clock.now()
    h = handoff(now, conversation_id="conv-one")
    assert await store.commit(create(h))
    v1 = stored(h)
    assert await store.commit(Change(handoff=replace(v1, title="moved on")))
    stale = Change(handoff=replace(v1, title="late"), events=(event(h, now),), dedup_key="s")
    [result] = await store.commit_many([stale])
    assert isinstance(result, StaleHandoff)
    busy = create(handoff(now, conversation_id="conv-one"))
    [result] = await store.commit_many([busy])
    assert isinstance(result, ConversationBusy)
    fresh = Change(events=(event(h, now),), dedup_key="s")  # the stale one kept no key
    assert await store.commit_many([fresh]) == [True]
    assert await store.commit_many([Change(events=(event(h, now),), dedup_key="s")]) == [False]
    assert len(await store.events_after(0)) == 1


async def test_commit_many_of_only_new_rows_isolates_a_failing_change(
    store: SqlStore, clock: FrozenClock
) -> None:
    # Changes that only add rows are written a table at a time; a failure among them
    # still stays with its change.
    now = clock.now()
    h = handoff(now)
    m = message(h, now)
    assert await store.commit(create(h, messages=(m,)))
    first = Change(messages=(message(h, now),), outbox=(item(h),), dedup_key="add-1")
    clash = Change(
        messages=(replace(m, text="same id"),), events=(event(h, now),), dedup_key="add-2"
    )
    last = Change(events=(event(h, now),), outbox=(item(h),), dedup_key="add-3")
    again = Change(events=(event(h, now),), dedup_key="add-1")

    results = await store.commit_many([first, clash, last, again])

    assert results[0] is True
    assert isinstance(results[1], IntegrityError)
    assert results[2:] == [True, False]
    assert [x.id for x in await store.list_messages(h.id)] == [m.id, first.messages[0].id]
    assert [e.id for e in await store.events_after(0)] == [last.events[0].id]
    assert [r.id for r in await store.list_outbox()] == [first.outbox[0].id, last.outbox[0].id]
    assert await store.commit(replace(clash, messages=())) is True  # its key was not kept


async def test_commit_many_mixes_updates_and_new_rows(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    assert await store.commit(create(h))
    renamed = Change(handoff=replace(stored(h), title="renamed"), dedup_key="mix-1")
    added = Change(events=(event(h, now),), dedup_key="mix-2")
    results = await store.commit_many([renamed, added, replace(added, dedup_key="mix-1")])
    assert results == [True, True, False]
    got = await store.get_handoff(h.id)
    assert got is not None
    assert got.title == "renamed"
    assert [e.id for e in await store.events_after(0)] == [added.events[0].id]


async def test_commit_many_of_nothing_writes_nothing(store: SqlStore) -> None:
    notifier = store.notifier
    assert isinstance(notifier, LocalNotifier)
    before = notifier.generation
    assert await store.commit_many([]) == []
    assert notifier.generation == before


# -- outbox ----------------------------------------------------------------------------


async def _with_rows(store: SqlStore, now: datetime, *items_per_handoff: int) -> list[list[str]]:
    """Create one handoff per number, with that many LiveChat rows; their ids."""
    ids = []
    for count in items_per_handoff:
        h = handoff(now)
        rows = tuple(item(h) for _ in range(count))
        assert await store.commit(create(h, outbox=rows))
        ids.append([r.id for r in rows])
    return ids


async def _claim(store: SqlStore, now: datetime, **kw: object) -> list[str]:
    options: dict[str, object] = {"lease_seconds": 30, "limit": 100, "targets": LIVECHAT}
    options.update(kw)
    return [r.id for r in await store.claim_due(now=now, **options)]  # type: ignore[arg-type]


async def _deliver(store: SqlStore, row_id: str) -> bool:
    return await store.commit(Change(outbox_done=(row_id,)))


async def test_new_outbox_rows(store: SqlStore, clock: FrozenClock) -> None:
    [[row_id]] = await _with_rows(store, clock.now(), 1)
    row = await store.get_outbox_row(row_id)
    assert row is not None
    assert row.status is OutboxStatus.PENDING
    assert row.attempts == 0
    assert row.next_attempt_at == clock.now() == row.created_at
    assert row.lease_until is None
    assert row.last_error is None
    assert row.payload == {"n": 1}
    assert row.kind == "send_message"
    assert await store.outbox_backlog() == 1


async def test_claim_due_keeps_each_handoffs_order(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    [[a1, a2, a3], [b1]] = await _with_rows(store, now, 3, 1)
    assert await _claim(store, now) == [a1, b1]  # one row per handoff, oldest first
    assert await _claim(store, now) == []  # a1 is leased: a2 waits
    assert await _deliver(store, b1)
    later = clock.advance(60)  # a1's lease ran out: it comes back, still before a2
    assert await _claim(store, later) == [a1]

    await store.release(a1, error="boom", next_attempt_at=later + timedelta(seconds=5), dead=False)
    assert await _claim(store, later) == []  # a1 pending again: a2 still waits
    assert await _claim(store, later + timedelta(seconds=6)) == [a1]
    assert await _deliver(store, a1)
    assert await _claim(store, later + timedelta(seconds=6)) == [a2]
    assert await _deliver(store, a2)
    assert await _claim(store, later + timedelta(seconds=6), limit=1) == [a3]


async def test_claim_limit_and_targets(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    ids = await _with_rows(store, now, 1, 1, 1)
    assert await _claim(store, now, limit=2) == [ids[0][0], ids[1][0]]
    assert await _claim(store, now, targets=(OutboxTarget.BOT_WEBHOOK,)) == []
    assert await _claim(store, now, limit=0) == []
    assert await _claim(store, now) == [ids[2][0]]


async def test_targets_are_ordered_independently(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    to_bot = item(h, OutboxTarget.BOT_WEBHOOK, "event")
    to_livechat = item(h)
    assert await store.commit(create(h, outbox=(to_bot, to_livechat)))
    # the bot's webhook being down does not hold back the user's messages to LiveChat
    await store.release(to_bot.id, error="down", next_attempt_at=now, dead=True)
    assert await _claim(store, now, targets=BOTH) == [to_livechat.id]


async def test_a_dead_row_blocks_its_handoff_until_retried(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    [[a1, _a2], [b1]] = await _with_rows(store, now, 2, 1)
    assert await _claim(store, now) == [a1, b1]
    await store.release(a1, error="400 bad", next_attempt_at=now, dead=True)
    assert await _deliver(store, b1)
    assert await _claim(store, clock.advance(3600)) == []
    dead = await store.get_outbox_row(a1)
    assert dead is not None
    assert dead.status is OutboxStatus.DEAD
    assert dead.last_error == "400 bad"
    assert dead.attempts == 1
    assert dead.lease_until is None
    assert [r.id for r in await store.list_outbox(dead_only=True)] == [a1]
    assert await store.next_due_at(LIVECHAT, after=clock.now()) is None

    assert await store.retry_outbox(a1, now=clock.now())
    retried = await store.get_outbox_row(a1)
    assert retried is not None
    assert retried.status is OutboxStatus.PENDING
    assert retried.attempts == 0
    assert retried.next_attempt_at == clock.now()
    assert await _claim(store, clock.now()) == [a1]
    assert not await store.retry_outbox("ob_missing", now=clock.now())


async def test_purging_a_dead_row_unblocks_its_handoff(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    [[a1, a2], [b1]] = await _with_rows(store, now, 2, 1)
    await _claim(store, now)
    await store.release(a1, error="gone", next_attempt_at=now, dead=True)
    assert await _deliver(store, b1)
    assert await store.purge_outbox(older_than=now) == 0  # nothing older than now
    later = clock.advance(10)
    assert await store.purge_outbox(older_than=later) == 2  # the dead and the delivered
    assert await store.get_outbox_row(a1) is None
    assert await store.get_outbox_row(a2) is not None  # pending rows are never purged
    assert await _claim(store, later) == [a2]


async def test_release_records_attempts_and_backoff(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    [[a1]] = await _with_rows(store, now, 1)
    for attempt in (1, 2):
        assert await _claim(store, clock.now()) == [a1]
        retry_at = clock.now() + timedelta(seconds=10 * attempt)
        await store.release(a1, error=f"503 #{attempt}", next_attempt_at=retry_at, dead=False)
        row = await store.get_outbox_row(a1)
        assert row is not None
        assert (row.attempts, row.last_error, row.status) == (
            attempt,
            f"503 #{attempt}",
            OutboxStatus.PENDING,
        )
        assert row.next_attempt_at == retry_at
        assert row.lease_until is None
        assert await store.next_due_at(LIVECHAT, after=now) == retry_at
        assert await _claim(store, retry_at - timedelta(seconds=1)) == []
        clock.set(retry_at)
    assert await _deliver(store, a1) is True
    row = await store.get_outbox_row(a1)
    assert row is not None
    assert row.status is OutboxStatus.DELIVERED
    assert row.delivered_at == clock.now()
    assert row.attempts == 3
    assert await store.outbox_backlog() == 0
    # releasing a delivered row changes nothing
    await store.release(a1, error="late", next_attempt_at=clock.now(), dead=True)
    again = await store.get_outbox_row(a1)
    assert again is not None
    assert again.status is OutboxStatus.DELIVERED


async def test_release_can_commit_a_change(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    h = handoff(now)
    start = item(h, kind="start_chat")
    assert await store.commit(create(h, outbox=(start,)))
    failed = replace(stored(h), state=HandoffState.FAILED, error={"type": "x", "message": "y"})
    gone = event(h, now, EventType.FAILED)
    await store.release(
        start.id,
        error="refused",
        next_attempt_at=now,
        dead=True,
        change=Change(handoff=failed, events=(gone,)),
    )
    assert await store.get_handoff(h.id) == stored(failed)
    assert [e.id for e in await store.events_after(0)] == [gone.id]
    row = await store.get_outbox_row(start.id)
    assert row is not None
    assert row.status is OutboxStatus.DEAD

    # a stale change rolls the whole release back
    other = handoff(now)
    work = item(other)
    assert await store.commit(create(other, outbox=(work,)))
    with pytest.raises(StaleHandoff):
        await store.release(
            work.id,
            error="x",
            next_attempt_at=now,
            dead=True,
            change=Change(handoff=stored(stored(other))),
        )
    untouched = await store.get_outbox_row(work.id)
    assert untouched is not None
    assert untouched.attempts == 0


async def test_completing_a_row_twice_applies_its_change_once(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    [[a1]] = await _with_rows(store, now, 1)
    h_id = (await store.get_outbox_row(a1)).handoff_id  # type: ignore[union-attr]
    h = await store.get_handoff(h_id)
    assert h is not None
    first = Change(outbox_done=(a1,), events=(event(h, now, EventType.STARTED),))
    late = Change(outbox_done=(a1,), events=(event(h, now, EventType.STARTED),))
    assert await store.commit(first) is True
    assert await store.commit(late) is False
    assert len(await store.events_after(0)) == 1


async def test_retry_all_dead(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    [[a1], [b1], [c1]] = await _with_rows(store, now, 1, 1, 1)
    await _claim(store, now)
    await store.release(a1, error="x", next_attempt_at=now, dead=True)
    await store.release(b1, error="x", next_attempt_at=now, dead=True)
    assert await _deliver(store, c1)
    assert await store.retry_all_dead(now=clock.advance(5)) == 2
    assert await store.list_outbox(dead_only=True) == []
    assert await _claim(store, clock.now()) == [a1, b1]
    assert await store.retry_all_dead(now=clock.now()) == 0


async def test_next_due_at(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    assert await store.next_due_at(LIVECHAT, after=now) is None
    [[a1, _a2]] = await _with_rows(store, now, 2)
    # due by `after` (what a claim at `after` could take) does not count
    assert await store.next_due_at(LIVECHAT, after=now) is None
    assert await store.next_due_at(LIVECHAT, after=now - timedelta(seconds=1)) == now
    assert await store.next_due_at((OutboxTarget.BOT_WEBHOOK,), after=now) is None
    await _claim(store, now, lease_seconds=30)
    # a1 is leased: due again when its lease ends (a2 waits behind it)
    assert await store.next_due_at(LIVECHAT, after=now) == now + timedelta(seconds=30)
    await store.release(a1, error="x", next_attempt_at=now + timedelta(seconds=7), dead=False)
    assert await store.next_due_at(LIVECHAT, after=now) == now + timedelta(seconds=7)
    later = now + timedelta(seconds=8)
    assert await store.next_due_at(LIVECHAT, after=later) is None


async def test_lease_expiry_is_reclaimed_by_another_store(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    now = clock.now()
    [[a1]] = await _with_rows(store, now, 1)
    assert await _claim(store, now, lease_seconds=30) == [a1]
    async with open_store(store_url, clock=clock) as other:
        assert await _claim(other, now + timedelta(seconds=29)) == []
        assert await _claim(other, now + timedelta(seconds=31)) == [a1]
        row = await other.get_outbox_row(a1)
        assert row is not None
        assert row.lease_until == now + timedelta(seconds=61)


async def test_concurrent_claims_never_share_a_row(
    store: SqlStore, store_url: str, clock: FrozenClock
) -> None:
    now = clock.now()
    ids = await _with_rows(store, now, *([2] * 20))
    async with open_store(store_url, clock=clock) as other:
        claims = await asyncio.gather(
            *(
                (store if n % 2 else other).claim_due(
                    now=now, lease_seconds=30, limit=3, targets=LIVECHAT
                )
                for n in range(10)
            )
        )
    claimed = [row.id for batch in claims for row in batch]
    assert len(claimed) == len(set(claimed)) == 20
    assert set(claimed) == {first for first, _second in ids}


# -- identities ----------------------------------------------------------------------


async def test_identities_upsert(store: SqlStore, clock: FrozenClock) -> None:
    now = clock.now()
    assert await store.get_identity("u-1") is None
    first = CustomerIdentity("u-1", "cust-1", "tok-1", now + timedelta(hours=1), {"c": "1"})
    assert await store.commit(Change(identity=first))
    assert await store.get_identity("u-1") == first
    renewed = replace(first, access_token="tok-2", expires_at=now + timedelta(hours=2))
    assert await store.commit(Change(identity=renewed))
    got = await store.get_identity("u-1")
    assert got == renewed
    assert got is not None
    assert got.expires_at is not None
    assert got.expires_at.tzinfo is not None
    assert got.expires_at.utcoffset() == timedelta(0)
    assert await store.commit(Change(identity=CustomerIdentity("u-2", None, None, None)))
    assert await store.get_identity("u-2") == CustomerIdentity("u-2", None, None, None)


async def test_ping(store: SqlStore) -> None:
    await store.ping()
    assert next_id("x") != next_id("x")


# -- lanes: a claimed head brings the rows right behind it ----------------------------


async def test_a_lane_claim_brings_the_rows_behind_each_head(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    [a, b] = await _with_rows(store, now, 5, 2)
    lanes = {OutboxTarget.LIVECHAT: 3}
    assert await _claim(store, now, limit=2, lanes=lanes) == [*a[:3], *b]
    # held rows are claimed by nobody else, and the rest of the lane waits behind them
    assert await _claim(store, now, lanes=lanes) == []
    rows = [await store.get_outbox_row(i) for i in (a[0], a[2], b[1])]
    assert len({r.lease_until for r in rows if r is not None}) == 1  # one lease for all


async def test_a_lane_claim_stops_at_a_row_that_is_not_due(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    [a] = await _with_rows(store, now, 4)
    # a[2] was given back with a retry in the future (as after a failed attempt)
    await _claim(store, now, limit=1, lanes={OutboxTarget.LIVECHAT: 3})
    later = now + timedelta(minutes=5)
    await store.release(a[2], error="x", next_attempt_at=later, dead=False)
    await store.unclaim([a[0], a[1]], lease_until=None)
    assert await _claim(store, now, lanes={OutboxTarget.LIVECHAT: 9}) == [a[0], a[1]]


async def test_unclaim_gives_rows_back_without_counting_an_attempt(
    store: SqlStore, clock: FrozenClock
) -> None:
    now = clock.now()
    [a] = await _with_rows(store, now, 3)
    claimed = await store.claim_due(
        now=now, lease_seconds=30, limit=1, targets=LIVECHAT, lanes={OutboxTarget.LIVECHAT: 3}
    )
    lease = claimed[0].lease_until
    await store.unclaim([a[1], a[2]], lease_until=lease + timedelta(seconds=1))  # not ours
    assert (await store.get_outbox_row(a[1])).lease_until == lease  # type: ignore[union-attr]
    await store.unclaim([a[1], a[2]], lease_until=lease)
    assert await _deliver(store, a[0])
    again = await store.claim_due(
        now=now, lease_seconds=30, limit=5, targets=LIVECHAT, lanes={OutboxTarget.LIVECHAT: 3}
    )
    assert [(r.id, r.attempts) for r in again] == [(a[1], 0), (a[2], 0)]
