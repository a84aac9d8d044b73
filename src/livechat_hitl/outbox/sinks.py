"""What the relay hands rows to, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from livechat_hitl.domain.models import Change, OutboxRow


@dataclass(frozen=True, slots=True)
class Delivered:
    """The peer has it. `change` is committed together with marking the row done
    (e.g. the chat id LiveChat returned, and the `handoff.started` event)."""

    change: Change | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed. `retryable=False` makes the row dead at once; `retry_after`
    (seconds) is the peer's own request. `change` is committed when the row goes dead
    (e.g. the handoff marked failed), in the same transaction."""

    error: str
    retryable: bool
    retry_after: float | None = None
    change: Change | None = None


Outcome = Delivered | Failed


class Sink(Protocol):
    """Delivers one outbox row to its peer. Must not raise for the peer's failures:
    return `Failed`. (The relay still survives an exception: it counts as retryable.)

    The relay may call `deliver` again for a row the peer already got (a crash, or a
    commit that lost a race), so deliveries must be recognisable as repeats: the row id
    is the bot webhook's `webhook-id` and LiveChat's `custom_id`."""

    async def deliver(self, row: OutboxRow) -> Delivered | Failed: ...


@dataclass(frozen=True, slots=True)
class LaneOutcome:
    """What a sink did with consecutive rows of one lane (handoff and target), given
    oldest first: the first `delivered` rows reached the peer (`change` is committed
    with marking them done); `failure`, when set, is the outcome of the next row. Rows
    after those were not attempted: they go back to the lane as they were."""

    delivered: int
    change: Change | None = None
    failure: Failed | None = None


@runtime_checkable
class LaneSink(Sink, Protocol):
    """A sink that can take several rows of one lane at once (the relay claims up to
    `lane_size` of them when the lane has a backlog), so a backlog costs one claim, one
    look-up of the handoff and one commit per batch instead of per row."""

    lane_size: int

    async def deliver_lane(self, rows: list[OutboxRow]) -> LaneOutcome: ...


async def deliver_in_turn(sink: Sink, rows: list[OutboxRow]) -> LaneOutcome:
    """`deliver_lane` for sinks whose rows are independent deliveries: one after the
    other, stopping at the first failure, and after the first delivery that changes the
    store (the next row's delivery may depend on that change being committed)."""
    for done, row in enumerate(rows):
        outcome = await sink.deliver(row)
        if isinstance(outcome, Failed):
            return LaneOutcome(delivered=done, failure=outcome)
        if outcome.change is not None:
            return LaneOutcome(delivered=done + 1, change=outcome.change)
    return LaneOutcome(delivered=len(rows))
