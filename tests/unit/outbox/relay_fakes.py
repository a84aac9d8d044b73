"""Fake sinks (a sink is an external peer) and seeding helpers for the relay tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from livechat_hitl.clock import FrozenClock
from livechat_hitl.domain.models import (
    Change,
    EndUser,
    Handoff,
    OutboxItem,
    OutboxRow,
    OutboxTarget,
)
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.outbox.sinks import Delivered, Failed, LaneOutcome, deliver_in_turn
from livechat_hitl.store import SqlStore

_ids = itertools.count(1)

Script = Callable[[OutboxRow], "Delivered | Failed | Exception | None"]


@dataclass
class FakeSink:
    """Records deliveries; `script` may answer for a row (None: Delivered())."""

    script: Script | None = None
    delay: float = 0.0
    delivered: list[OutboxRow] = field(default_factory=list)
    attempts: list[OutboxRow] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    max_in_flight: int = 0
    overlapping_handoff: bool = False

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        self.attempts.append(row)
        if row.handoff_id in self.in_flight:
            self.overlapping_handoff = True
        self.in_flight.add(row.handoff_id)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.script(row) if self.script else None
        finally:
            self.in_flight.discard(row.handoff_id)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            answer = Delivered()
        if isinstance(answer, Delivered):
            self.delivered.append(row)
        return answer


def new_handoff(clock: FrozenClock) -> Handoff:
    n = next(_ids)
    now = clock.now()
    return Handoff(
        id=f"h{n:04d}",
        conversation_id=f"conv{n}",
        state=HandoffState.REQUESTED,
        user=EndUser(id="u"),
        group_id=0,
        created_at=now,
        updated_at=now,
    )


async def seed(
    store: SqlStore,
    clock: FrozenClock,
    rows: int,
    target: OutboxTarget = OutboxTarget.LIVECHAT,
) -> tuple[Handoff, list[str]]:
    """A new handoff with `rows` outbox rows numbered 0.. in their payload."""
    h = new_handoff(clock)
    items = tuple(
        OutboxItem(id=f"{h.id}-{i}", handoff_id=h.id, target=target, kind="work", payload={"i": i})
        for i in range(rows)
    )
    assert await store.commit(Change(handoff=h, outbox=items))
    return h, [item.id for item in items]


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@dataclass
class FakeLaneSink(FakeSink):
    """A FakeSink that takes a lane's backlog at once (one row after the other)."""

    lane_size: int = 4
    lanes: list[list[str]] = field(default_factory=list)

    async def deliver_lane(self, rows: list[OutboxRow]) -> LaneOutcome:
        self.lanes.append([row.id for row in rows])
        return await deliver_in_turn(self, rows)
