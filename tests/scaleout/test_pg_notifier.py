"""LISTEN/NOTIFY wake-ups between processes (here: separate engines and listeners)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from pg_helpers import pg_execute, pg_fetchval

from livechat_hitl.bots.sse import event_stream
from livechat_hitl.domain.models import BotEvent, Change, EndUser, EventType, Handoff
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.errors import StaleHandoff
from livechat_hitl.store import LocalNotifier, PgNotifier, listen_for_commits, open_store

pytestmark = pytest.mark.postgres

_counter = iter(range(1, 1_000_000))


def _handoff() -> Handoff:
    n = next(_counter)
    now = datetime.now(UTC)
    return Handoff(
        id=f"h_{n}",
        conversation_id=f"conv-{n}",
        state=HandoffState.REQUESTED,
        user=EndUser(id="u-1", name="Ada"),
        group_id=0,
        created_at=now,
        updated_at=now,
    )


def _event(h: Handoff) -> BotEvent:
    return BotEvent(
        id=f"evt_{next(_counter)}",
        type=EventType.QUEUED,
        handoff_id=h.id,
        conversation_id=h.conversation_id,
        created_at=datetime.now(UTC),
        data={"queue": {"position": 1, "wait_time": 30}},
    )


async def _until(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_a_commit_in_one_process_wakes_a_feed_in_another(pg_url: str) -> None:
    """Process B's SSE feed, polling only every 60 s, gets process A's event at once:
    the wake-up can only have come through NOTIFY."""
    async with (
        open_store(pg_url) as store_a,
        open_store(pg_url, notifier=LocalNotifier()) as store_b,
        PgNotifier(pg_url, store_b.notifier) as listener_b,  # type: ignore[arg-type]
    ):
        feed = event_stream(store_b, listener_b, None, poll_seconds=60.0, ping_seconds=60.0)
        first = asyncio.create_task(anext(feed))
        await asyncio.sleep(0.2)  # the feed has read the empty log and sleeps
        assert not first.done()
        h = _handoff()
        sent = _event(h)
        assert await store_a.commit(Change(handoff=h, events=(sent,)))
        async with asyncio.timeout(10):  # far under the feed's own 60 s poll
            got = await first
        assert sent.id in str(got.data)
        assert listener_b.heard >= 1
        await feed.aclose()


async def test_a_rolled_back_transaction_announces_nothing(pg_url: str) -> None:
    async with (
        open_store(pg_url) as store_a,
        PgNotifier(pg_url) as listener,
    ):
        h = _handoff()
        assert await store_a.commit(Change(handoff=h, events=(_event(h),)))
        await _until(lambda: listener.heard == 1)
        with pytest.raises(StaleHandoff):  # wrong version: the whole change rolls back
            await store_a.commit(Change(handoff=h, events=(_event(h),)))
        other = _handoff()
        assert await store_a.commit(Change(handoff=other, events=(_event(other),)))
        await _until(lambda: listener.heard >= 2)
        await asyncio.sleep(0.1)
        assert listener.heard == 2  # the first and the third commit, not the rolled-back one


async def test_the_listener_reconnects_when_its_connection_is_killed(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="livechat_hitl.store.pg_notifier")
    local = LocalNotifier()
    async with (
        open_store(pg_url) as store_a,
        PgNotifier(pg_url, local, check_seconds=0.2) as listener,
    ):
        assert listener.listening
        pid = await pg_fetchval(
            pg_url,
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = "
            "current_database()",
        )
        assert pid is not None
        woken = local.generation
        await pg_execute(pg_url, f"SELECT pg_terminate_backend({int(pid)})")
        await _until(lambda: listener.reconnects == 1)
        assert local.generation > woken  # waiters were woken to re-read
        assert listener.listening
        h = _handoff()
        assert await store_a.commit(Change(handoff=h, events=(_event(h),)))
        await _until(lambda: listener.heard >= 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("LISTEN connection to PostgreSQL lost" in m for m in messages), messages
    assert any("restored" in m for m in messages), messages


async def test_sqlite_needs_no_listener(tmp_path: object) -> None:
    async with listen_for_commits("sqlite:///unused.db", LocalNotifier()) as listener:
        assert listener is None


async def test_processes_starting_together_migrate_in_turn(pg_url: str) -> None:
    """Three gateways starting at once on a fresh database: one migrates, the others wait."""
    stores = [open_store(pg_url) for _ in range(3)]
    opened = await asyncio.gather(*(s.__aenter__() for s in stores))
    try:
        for store in opened:
            await store.ping()
    finally:
        for s in stores:
            await s.__aexit__(None, None, None)
