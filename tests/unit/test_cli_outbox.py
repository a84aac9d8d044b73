"""`livechat-hitl outbox ls|retry|purge`: operators see dead deliveries and act on them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livechat_hitl.cli import app
from livechat_hitl.domain.models import (
    Change,
    EndUser,
    Handoff,
    OutboxItem,
    OutboxStatus,
    OutboxTarget,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.store.sql_store import open_store

runner = CliRunner(env={"COLUMNS": "200"})


def seed(url: str) -> str:
    """One handoff with one outbox row that went dead; returns the row id."""

    async def run() -> str:
        now = datetime.now(UTC)
        async with open_store(url) as store:
            handoff = Handoff(
                id="ho_cli",
                conversation_id="conv-cli",
                state=HandoffState.REQUESTED,
                user=EndUser(id="u"),
                group_id=0,
                created_at=now,
                updated_at=now,
            )
            row = OutboxItem(
                id="ob_cli",
                handoff_id="ho_cli",
                target=OutboxTarget.BOT_WEBHOOK,
                kind="event",
                payload={"id": "evt_cli"},
            )
            await store.commit(Change(handoff=handoff, outbox=(row,)))
            claimed = await store.claim_due(
                now=datetime.now(UTC) + timedelta(seconds=1),
                lease_seconds=30,
                limit=10,
                targets=[OutboxTarget.BOT_WEBHOOK],
            )
            await store.release(
                "ob_cli",
                error="bot endpoint answered 410 Gone",
                next_attempt_at=now,
                dead=True,
                lease_until=claimed[0].lease_until,
            )
        return "ob_cli"

    return asyncio.run(run())


def status_of(url: str, row_id: str) -> OutboxStatus | None:
    async def run() -> OutboxStatus | None:
        async with open_store(url) as store:
            row = await store.get_outbox_row(row_id)
            return None if row is None else row.status

    return asyncio.run(run())


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("HITL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HITL_DATABASE_URL", url)
    return url


def test_ls_dead_shows_the_row_and_its_last_error(db: str) -> None:
    row_id = seed(db)
    result = runner.invoke(app, ["outbox", "ls", "--dead"])
    assert result.exit_code == 0, result.output
    assert row_id in result.output
    assert "410 Gone" in result.output
    assert "1 row(s)" in result.output
    assert "alembic" not in result.output


def test_retry_one_then_all_dead(db: str) -> None:
    row_id = seed(db)
    result = runner.invoke(app, ["outbox", "retry", row_id])
    assert result.exit_code == 0, result.output
    assert status_of(db, row_id) is OutboxStatus.PENDING
    missing = runner.invoke(app, ["outbox", "retry", "ob_nope"])
    assert missing.exit_code == 1


def test_retry_all_dead(db: str) -> None:
    row_id = seed(db)
    result = runner.invoke(app, ["outbox", "retry", "--all-dead"])
    assert result.exit_code == 0, result.output
    assert "1 dead row(s) scheduled again" in result.output
    assert status_of(db, row_id) is OutboxStatus.PENDING


def test_retry_needs_exactly_one_target(db: str) -> None:
    assert runner.invoke(app, ["outbox", "retry"]).exit_code == 2
    assert runner.invoke(app, ["outbox", "retry", "ob_x", "--all-dead"]).exit_code == 2


def test_purge_removes_old_dead_rows_only(db: str) -> None:
    row_id = seed(db)
    kept = runner.invoke(app, ["outbox", "purge", "--older-than", "1d"])
    assert kept.exit_code == 0, kept.output
    assert status_of(db, row_id) is OutboxStatus.DEAD
    assert runner.invoke(app, ["outbox", "purge", "--older-than", "soon"]).exit_code == 2
    purged = runner.invoke(app, ["outbox", "purge", "--older-than", "0s"])
    assert purged.exit_code == 0, purged.output
    assert status_of(db, row_id) is None
