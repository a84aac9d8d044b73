"""Alembic environment. Normally driven by `livechat_hitl.store.migrate`, which passes
an open connection in `config.attributes["connection"]`; when run by the alembic CLI it
connects to `sqlalchemy.url` itself through the async driver."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from livechat_hitl.store.dialects import create_engine
from livechat_hitl.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection to run migrations")
    asyncio.run(_run_with_own_engine(url))


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
