"""The SQLite store's direct path (`store/inline.py`) against SQLAlchemy's own execution.

Every prepared statement must give what SQLAlchemy gives for the same parameters: the
same rows with the same Python types (aware datetimes, decoded JSON, booleans), the same
row counts, the same exception classes. Each statement below runs once through
`InlineConnection` and once through a plain SQLAlchemy connection on the same file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from store_builders import create, handoff, item

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import OutboxTarget
from livechat_hitl.store import SqlStore, open_store
from livechat_hitl.store import sql_store as s
from livechat_hitl.store.inline import InlineConnection
from livechat_hitl.store.tables import dedup_keys, outbox

TARGETS = (OutboxTarget.INBOUND, OutboxTarget.BOT_WEBHOOK, OutboxTarget.LIVECHAT)


@pytest.fixture
async def seeded(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[tuple[SqlStore, list[str]]]:
    async with open_store(f"sqlite:///{tmp_path / 'inline.db'}", clock=clock) as store:
        ids = []
        for _ in range(3):
            h = handoff(clock.now())
            assert await store.commit(create(h, outbox=(item(h), item(h))))
            ids.append(h.id)
        yield store, ids


@pytest.fixture
def inline(seeded: tuple[SqlStore, list[str]]) -> Iterator[InlineConnection]:
    store, _ = seeded
    assert store._twin is not None
    conn = InlineConnection(store._twin.connect())
    yield conn
    conn.close()


def _plain(result: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings()]


async def test_selects_give_what_sqlalchemy_gives(
    seeded: tuple[SqlStore, list[str]], inline: InlineConnection, clock: FrozenClock
) -> None:
    store, ids = seeded
    assert store._twin is not None
    reference = store._twin.connect()
    now = clock.now()
    cases: list[tuple[Any, dict[str, Any]]] = [
        (s._HANDOFF_BY_ID, {"key": ids[1]}),
        (s._HANDOFF_BY_ID, {"key": "nobody"}),
        (s._NEXT_DUE, {"after": now - timedelta(days=1), "targets": [str(t) for t in TARGETS]}),
        (s._RELAYED_EVENT_IDS, {"handoff_id": ids[0], "event_ids": ["a", "b", "c"]}),
    ]
    for scan in s._claim_scans(inline, TARGETS):  # type: ignore[arg-type]
        cases.append((scan, {"now": now, "limit": 10}))
    for statement, params in cases:
        mine = await inline.execute(statement, params)
        theirs = reference.execute(statement, params)
        assert _plain(mine) == _plain(theirs), statement
    rows = (await inline.execute(s._HANDOFF_BY_ID, {"key": ids[2]})).mappings().first()
    assert rows is not None
    assert isinstance(rows["created_at"], datetime)
    assert rows["created_at"].tzinfo is not None
    assert isinstance(rows["user"], dict)
    heads = (await inline.execute(s._claim_scans(inline, TARGETS)[0], cases[-1][1])).all()  # type: ignore[arg-type]
    assert heads
    assert {type(h.has_next) for h in heads} == {bool}
    reference.close()


async def test_lists_of_any_length_bind_like_sqlalchemy(
    seeded: tuple[SqlStore, list[str]], inline: InlineConnection, clock: FrozenClock
) -> None:
    """A statement with an `IN (list)` is expanded once per list length and reused:
    whatever the order of lengths, each run gives what SQLAlchemy gives."""
    store, ids = seeded
    assert store._twin is not None
    reference = store._twin.connect()
    rows = (await inline.execute(select(outbox.c.id, outbox.c.handoff_id))).all()
    later = clock.now() + timedelta(days=1)
    for size in (3, 1, 0, 3, 2, 1, 6):
        picked = [row.id for row in rows[:size]]
        cases: list[tuple[Any, dict[str, Any]]] = [
            (s._WAITING_BEHIND, {"ids": picked, "now": later}),
            (s._RELAYED_EVENT_IDS, {"handoff_id": ids[0], "event_ids": picked}),
            (s._NEXT_DUE, {"after": later, "targets": [str(t) for t in TARGETS][:size]}),
        ]
        for statement, params in cases:
            mine = await inline.execute(statement, params)
            theirs = reference.execute(statement, params)
            assert sorted(_plain(mine), key=repr) == sorted(_plain(theirs), key=repr)
        assert len((await inline.execute(s._WAITING_BEHIND, cases[0][1])).all()) == size
    reference.close()


async def test_writes_count_and_return_like_sqlalchemy(
    seeded: tuple[SqlStore, list[str]], inline: InlineConnection, clock: FrozenClock
) -> None:
    store, _ids = seeded
    now = clock.now()
    lease = now + timedelta(seconds=30)
    async with inline.begin():
        pending = list((await inline.execute(select(outbox.c.id))).scalars())
        leased = await inline.execute(s._LEASE_RETURNING, {"ids": pending[:2], "lease": lease})
        got = list(leased.mappings())
        assert [r["id"] for r in got] == pending[:2]
        assert all(r["lease_until"] == lease for r in got)
        params = {"ids": pending[:2], "now": now, "lease": lease}
        done = await inline.execute(s._MARK_DELIVERED_UNDER_LEASE, params)
        assert done.rowcount == 2
        again = await inline.execute(s._MARK_DELIVERED_UNDER_LEASE, params)
        assert again.rowcount == 0
        keys = [{"key": k, "created_at": now} for k in ("k1", "k2", "k1")]
        inserted = await inline.execute(s._insert_dedup_key_returning(inline), keys)  # type: ignore[arg-type]
        assert list(inserted.scalars()) == ["k1", "k2"]
    row = await store.get_outbox_row(pending[0])
    assert row is not None
    assert row.status == "delivered"
    assert row.delivered_at == now


async def test_datetimes_bind_as_themselves_when_one_repeats(
    seeded: tuple[SqlStore, list[str]], inline: InlineConnection, clock: FrozenClock
) -> None:
    """A datetime's bound text is remembered for the next value that is the same object
    (a batch's `now`): any other value, even an equal one in another zone, is bound anew."""
    now = clock.now()
    later = now + timedelta(microseconds=1)
    elsewhere = now.astimezone(timezone(timedelta(hours=5)))
    stamps = [now, now, later, now, elsewhere, later, later]
    rows = [{"key": f"d{i}", "created_at": at} for i, at in enumerate(stamps)]
    async with inline.begin():
        await inline.execute(s._insert_dedup_key(inline), rows)  # type: ignore[arg-type]
    found = await inline.execute(select(dedup_keys.c.key, dedup_keys.c.created_at))
    assert sorted(found.all()) == sorted((f"d{i}", at) for i, at in enumerate(stamps))
    naive = [{"key": "n", "created_at": now.replace(tzinfo=None)}]
    async with inline.begin():
        with pytest.raises(ValueError, match="naive datetime"):
            await inline.execute(s._insert_dedup_key(inline), naive)  # type: ignore[arg-type]


async def test_errors_are_sqlalchemys_and_savepoints_undo_only_their_part(
    seeded: tuple[SqlStore, list[str]], inline: InlineConnection, clock: FrozenClock
) -> None:
    store, _ids = seeded
    row = s._new_outbox_row(item(handoff(clock.now())), clock.now())
    async with inline.begin():
        before = {"key": "before", "created_at": clock.now()}
        await inline.execute(s._insert_dedup_key(inline), before)  # type: ignore[arg-type]
        with pytest.raises(IntegrityError) as caught:
            async with inline.begin_nested():
                # no such handoff: the foreign key refuses the row
                await inline.execute(s._INSERT_OUTBOX, [row])
        assert "FOREIGN KEY" in str(caught.value.orig)
        assert "[parameters" not in str(caught.value)  # may hold a customer's token
    assert not inline._raw.in_transaction
    # The key (written before the savepoint) was committed; the outbox row was not.
    found = await inline.execute(select(dedup_keys.c.key))
    assert list(found.scalars()) == ["before"]
    assert await store.get_outbox_row(row["id"]) is None
