"""SQLite's WAL checkpoints run in a thread of their own, not in the writer's commits."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from store_builders import handoff

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import Change
from livechat_hitl.store.sql_store import open_store

THREAD = "sqlite-wal-checkpoint"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


async def test_committed_pages_reach_the_database_file_without_the_writers_checkpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gw.db"
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    async with open_store(f"sqlite:///{path}", clock=clock) as store:
        await store.commit(Change(handoff=handoff(clock.now())))  # the writer opens
        assert len(_checkpoint_threads()) == 1
        before = path.stat().st_size
        for _ in range(200):  # far below the writer's own checkpoint (50,000 pages)
            await store.commit(Change(handoff=handoff(clock.now(), title="x" * 2000)))
        for _ in range(50):
            if path.stat().st_size > before:
                break
            await asyncio.sleep(0.1)
        # The pages left the WAL for the database file: the thread checkpointed them.
        assert path.stat().st_size > before + 200 * 2000
    assert _checkpoint_threads() == []  # closing the store stops the thread


async def test_in_memory_sqlite_has_no_checkpoint_thread() -> None:
    async with open_store("sqlite://") as store:
        await store.commit(Change(handoff=handoff(datetime.now(UTC))))
        assert _checkpoint_threads() == []
