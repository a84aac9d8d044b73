"""Relay fixtures: the real SqlStore on a temporary SQLite file and a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from livechat_hitl.clock import FrozenClock
from livechat_hitl.store import LocalNotifier, SqlStore, open_store


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def notifier() -> LocalNotifier:
    return LocalNotifier()


@pytest.fixture
async def store(
    tmp_path: Path, clock: FrozenClock, notifier: LocalNotifier
) -> AsyncIterator[SqlStore]:
    async with open_store(
        f"sqlite:///{tmp_path / 'relay.db'}", clock=clock, notifier=notifier
    ) as s:
        yield s
