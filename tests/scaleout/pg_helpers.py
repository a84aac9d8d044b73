"""Small PostgreSQL helpers for the scale-out tests (imported by them and conftest.py)."""

from __future__ import annotations

from typing import Any

import asyncpg

from livechat_hitl.store.pg_notifier import asyncpg_dsn


async def pg_fetchval(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def pg_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
