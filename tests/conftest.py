"""Shared fixtures: the database backends every store-backed suite runs on.

SQLite always; PostgreSQL where a server answers (HITL_TEST_POSTGRES_URL, default the
local server). Each session gets a throwaway database of its own; each test a fresh
schema. Where no server answers, the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str:
    return os.environ.get("HITL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


async def postgres_admin(url: str, sql: str) -> None:
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
    base = postgres_server_url()
    name = f"hitl_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(postgres_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(base).render_as_string()}: {exc!r}"
        print(f"\nskipping PostgreSQL variants: {reason}")
        pytest.skip(reason)
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    asyncio.run(postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(postgres_admin(url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    return url


_SUMMARY = pytest.StashKey[list[str]]()


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Adds a line to the run's closing summary (example counts, tables): printed even
    when output is captured, so CI logs show the figures."""
    lines = request.config.stash.setdefault(_SUMMARY, [])
    return lines.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = terminalreporter.config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
