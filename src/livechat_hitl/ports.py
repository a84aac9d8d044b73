"""Protocols the core depends on. Adapters (store/, livechat/, bots/) implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from livechat_hitl.domain.models import (
    Agent,
    BotEvent,
    Change,
    CustomerIdentity,
    Handoff,
    Message,
    OutboxRow,
    OutboxTarget,
)
from livechat_hitl.domain.states import HandoffState


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC datetime."""
        ...


class Committer(Protocol):
    """Something that commits a change as `Store.commit` does: a store, or a group
    committer that writes many callers' changes in one transaction."""

    async def commit(self, change: Change) -> bool: ...


class Store(Protocol):
    """Durable state. Every write is one transaction (`commit`)."""

    async def commit(self, change: Change) -> bool:
        """Write the change atomically. False when its dedup key was seen before.

        Raises `StaleHandoff` when `change.handoff.version` is not the stored version,
        and `ConversationBusy` when creating a second open handoff for a conversation.
        """
        ...

    async def commit_many(self, changes: Sequence[Change]) -> list[bool | Exception]:
        """Write independent changes in one transaction, each as `commit` would.

        Per change, in order: True (applied), False (dedup key seen before, or earlier
        in the batch) or the exception that change raised, which undid it alone. An
        error of the transaction itself raises, and nothing of the batch is written.
        """
        ...

    async def ping(self) -> None: ...

    # handoffs
    async def get_handoff(self, handoff_id: str) -> Handoff | None: ...
    async def find_open_handoff(self, conversation_id: str) -> Handoff | None: ...
    async def find_handoff_by_chat(self, chat_id: str) -> Handoff | None: ...
    async def list_handoffs(
        self,
        *,
        conversation_id: str | None = None,
        state: HandoffState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[Handoff], str | None]: ...
    async def count_handoffs_by_state(self) -> dict[HandoffState, int]: ...

    # messages
    async def list_messages(self, handoff_id: str) -> list[Message]: ...
    async def relayed_event_ids(self, handoff_id: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these LiveChat event ids the handoff already relayed to the bot."""
        ...

    async def get_message(self, message_id: str) -> Message | None: ...
    async def find_message_by_client_id(
        self, handoff_id: str, client_message_id: str
    ) -> Message | None: ...

    # the durable event log behind SSE and the bot webhook
    async def events_after(self, seq: int, limit: int = 100) -> list[BotEvent]: ...
    async def get_event(self, event_id: str) -> BotEvent | None: ...

    # outbox
    async def claim_due(
        self,
        *,
        now: datetime,
        lease_seconds: float,
        limit: int,
        targets: Sequence[OutboxTarget],
        lanes: Mapping[OutboxTarget, int] | None = None,
    ) -> list[OutboxRow]:
        """Lease due pending rows, oldest first, at most one per handoff at a time:
        a row is claimable only if no earlier row of its handoff is undelivered.

        With `lanes` (target → n), a claimed row of such a target brings up to n - 1
        rows right behind it in its lane (due and not held), under the same lease."""
        ...

    async def unclaim(self, row_ids: Sequence[str], *, lease_until: datetime | None) -> None:
        """Drop the lease of claimed rows that were not attempted (no attempt counted)."""
        ...

    async def release(
        self,
        row_id: str,
        *,
        error: str,
        next_attempt_at: datetime,
        dead: bool,
        change: Change | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        """Record a failed attempt: attempts + 1, last_error, reschedule or mark dead.

        `change`, when given, is committed in the same transaction (e.g. the handoff
        marked failed when its start_chat row goes dead). With `lease_until` (the
        claim's lease), only while the row still carries it; False when nothing was
        written because the row is no longer pending under that lease."""
        ...

    async def list_outbox(
        self, *, dead_only: bool = False, limit: int = 100
    ) -> list[OutboxRow]: ...
    async def get_outbox_row(self, row_id: str) -> OutboxRow | None: ...
    async def retry_outbox(self, row_id: str, *, now: datetime) -> bool: ...
    async def retry_all_dead(self, *, now: datetime) -> int: ...
    async def purge_outbox(self, *, older_than: datetime) -> int: ...
    async def outbox_backlog(self) -> int: ...
    async def next_due_at(
        self, targets: Sequence[OutboxTarget], *, after: datetime
    ) -> datetime | None:
        """The earliest moment after `after` a pending row becomes due or its lease ends."""
        ...

    # LiveChat customer identities, one per end user across handoffs
    async def get_identity(self, user_id: str) -> CustomerIdentity | None: ...


@dataclass(frozen=True, slots=True)
class RowsWanted:
    """What a relay takes now from the transaction that writes new outbox rows."""

    targets: frozenset[OutboxTarget]
    limit: int
    lease_seconds: float


class RowTaker(Protocol):
    """A relay that takes new rows straight from the transaction that wrote them."""

    def rows_wanted(self) -> RowsWanted | None:
        """What it takes now (None: nothing, e.g. every delivery slot is busy)."""
        ...

    def take(self, rows: list[OutboxRow]) -> None:
        """Deliver `rows`, claimed (leased) for it by a transaction that committed."""
        ...


@runtime_checkable
class HandsOverRows(Protocol):
    """A store that claims a new outbox row in the transaction that writes it, when
    the row heads its lane and a `RowTaker` wants it, and hands it over after the
    commit: no claim (and no wake-up of the relay) for that row."""

    def hand_rows_to(self, taker: RowTaker | None) -> bool:
        """Hand new rows to `taker` from now on (None: to nobody). False when this
        store does not (then `claim_hint` means nothing)."""
        ...

    @property
    def claim_hint(self) -> int:
        """Grows with every commit that may have left a row claimable that no taker
        got; while it stays the same, a claim of this process would find nothing
        (rows made due by time or by other processes aside)."""
        ...


class EventNotifier(Protocol):
    """Wakes waiters when new events or outbox rows were committed."""

    def notify(self) -> None: ...

    async def wait(self, timeout: float) -> None: ...


class AgentDirectory(Protocol):
    """Who a LiveChat agent is (name, avatar), read from the chat's users."""

    async def agent(self, chat_id: str, user_id: str) -> Agent | None:
        """The agent, or None when that user is not an agent of the chat."""
        ...
