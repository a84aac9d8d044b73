"""Store contract fixtures: every test runs on SQLite and, where a server answers, on
PostgreSQL (HITL_TEST_POSTGRES_URL, default the local server)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from livechat_hitl.clock import FrozenClock
from livechat_hitl.store import LocalNotifier, SqlStore, open_store

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_url() -> str:
    return os.environ.get("HITL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        timeout=3,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the server, so other suites' data is never touched."""
    base = _postgres_url()
    name = f"hitl_contract_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(base).render_as_string()}: {exc!r}"
        print(f"\nskipping postgres store contract: {reason}")
        pytest.skip(reason)
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(_admin(url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    return url


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
