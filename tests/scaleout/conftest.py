"""Scale-out on PostgreSQL: several "processes" (each its own engine, pool, notifier and
relay, or a whole gateway app) sharing one database. PostgreSQL only: SQLite is one
process by design. Skipped, with the reason printed, where no server answers."""

from __future__ import annotations

import asyncio

import pytest
from pg_helpers import pg_execute


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    """A fresh, empty schema in this session's throwaway database (tests/conftest.py)."""
    reset = "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
    asyncio.run(pg_execute(postgres_database, reset))
    return postgres_database
