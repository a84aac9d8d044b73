"""What the relay hands rows to, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
