"""Store contract fixtures: every test runs on SQLite and, where a server answers, on
PostgreSQL (HITL_TEST_POSTGRES_URL, default the local server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from livechat_hitl.clock import FrozenClock
from livechat_hitl.store import LocalNotifier, SqlStore, open_store


@pytest.fixture
def store_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def notifier() -> LocalNotifier:
    return LocalNotifier()


@pytest.fixture
async def store(
    store_url: str, clock: FrozenClock, notifier: LocalNotifier
) -> AsyncIterator[SqlStore]:
    async with open_store(store_url, clock=clock, notifier=notifier) as opened:
        yield opened
