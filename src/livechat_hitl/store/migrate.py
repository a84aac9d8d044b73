"""Bring a database to the newest schema with the Alembic migrations shipped in
`store/migrations`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from livechat_hitl.store.dialects import IMMEDIATE, create_engine, serialise_migrations

SCRIPT_LOCATION = "livechat_hitl.store:migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate_engine(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.execution_options(**{IMMEDIATE: True}).begin() as conn:
        await serialise_migrations(conn)
        await conn.run_sync(_upgrade, revision)


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at `url` (idempotent)."""
    engine = create_engine(url)
    try:
        await migrate_engine(engine)
    finally:
        await engine.dispose()
