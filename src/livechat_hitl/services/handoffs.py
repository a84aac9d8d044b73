"""Bot-side use cases: start a handoff, post a message, close, read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from livechat_hitl import ids
from livechat_hitl.domain.lifecycle import advance
from livechat_hitl.domain.models import (
    JSON,
    Change,
    DeliveryStatus,
    Direction,
    EndUser,
    EventType,
    Handoff,
    Message,
    MessageType,
    OutboxItem,
    OutboxTarget,
    TranscriptLine,
    Transition,
)
from livechat_hitl.domain.states import CloseReason, HandoffState
from livechat_hitl.errors import ConversationBusy, HandoffClosed, HandoffNotFound, StaleHandoff
from livechat_hitl.ports import Clock, Store
from livechat_hitl.services.events import EventFactory

T = TypeVar("T")

STALE_RETRIES = 20


@dataclass(frozen=True, slots=True)
class StartRequest:
    conversation_id: str
    user: EndUser
    title: str | None = None
    description: str | None = None
    transcript: tuple[TranscriptLine, ...] = ()
    group_id: int | None = None
    metadata: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message from the bot (the end user's words) for the LiveChat agent."""

    type: MessageType
    text: str | None = None
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    client_message_id: str | None = None


async def retry_stale(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a read-modify-commit step again when the handoff changed under it."""
    for _ in range(STALE_RETRIES - 1):
        try:
            return await attempt()
        except StaleHandoff:
            continue
    return await attempt()


class HandoffService:
    def __init__(
        self, store: Store, clock: Clock, events: EventFactory, *, default_group_id: int
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._default_group = default_group_id

    async def get(self, handoff_id: str) -> Handoff:
        handoff = await self._store.get_handoff(handoff_id)
        if handoff is None:
            raise HandoffNotFound(handoff_id)
        return handoff

    async def start(self, request: StartRequest) -> tuple[Handoff, bool]:
        """The open handoff of this conversation, and whether this call created it."""
        existing = await self._store.find_open_handoff(request.conversation_id)
        if existing is not None:
            return existing, False
        now = self._clock.now()
        handoff = Handoff(
            id=ids.handoff_id(),
            conversation_id=request.conversation_id,
            state=HandoffState.REQUESTED,
            user=request.user,
            group_id=self._default_group if request.group_id is None else request.group_id,
            created_at=now,
            updated_at=now,
            title=request.title,
            description=request.description,
            transcript=request.transcript,
            metadata=dict(request.metadata),
        )
        work = OutboxItem(
            id=ids.outbox_id(),
            handoff_id=handoff.id,
            target=OutboxTarget.LIVECHAT,
            kind="start_chat",
            payload={},
        )
        change = Change(
            handoff=handoff,
            transition=Transition(
                handoff_id=handoff.id,
                from_state=None,
                to_state=HandoffState.REQUESTED,
                cause="bot requested a handoff",
                at=now,
            ),
            outbox=(work,),
        )
        try:
            await self._store.commit(change)
        except ConversationBusy:
            # Another request for the same conversation won the race: answer with its.
            winner = await self._store.find_open_handoff(request.conversation_id)
            if winner is None:  # it closed in between; a new attempt is the caller's call
                raise
            return winner, False
        return handoff, True

    async def post_message(self, handoff_id: str, outgoing: OutgoingMessage) -> Message:
        """Queue a message for the agent; a repeated client message id returns the first."""
        handoff = await self.get(handoff_id)
        if outgoing.client_message_id is not None:
            earlier = await self._store.find_message_by_client_id(
                handoff_id, outgoing.client_message_id
            )
            if earlier is not None:
                return earlier
        if not handoff.state.is_open:
            raise HandoffClosed(handoff_id, handoff.state)
        now = self._clock.now()
        message = Message(
            id=ids.message_id(),
            handoff_id=handoff_id,
            direction=Direction.TO_AGENT,
            type=outgoing.type,
            status=DeliveryStatus.QUEUED,
            created_at=now,
            text=outgoing.text,
            url=outgoing.url,
            name=outgoing.name,
            content_type=outgoing.content_type,
            client_message_id=outgoing.client_message_id,
        )
        work = OutboxItem(
            id=ids.outbox_id(),
            handoff_id=handoff_id,
            target=OutboxTarget.LIVECHAT,
            kind="send_message",
            payload={"message_id": message.id},
        )
        dedup = (
            f"bot-message:{handoff_id}:{outgoing.client_message_id}"
            if outgoing.client_message_id is not None
            else None
        )
        written = await self._store.commit(
            Change(messages=(message,), outbox=(work,), dedup_key=dedup)
        )
        if not written and outgoing.client_message_id is not None:
            earlier = await self._store.find_message_by_client_id(
                handoff_id, outgoing.client_message_id
            )
            if earlier is not None:
                return earlier
        return message

    async def close(self, handoff_id: str) -> Handoff:
        """Close from the bot side; closing a closed or failed handoff changes nothing."""

        async def attempt() -> Handoff:
            handoff = await self.get(handoff_id)
            if not handoff.state.is_open:
                return handoff
            now = self._clock.now()
            closed, record = advance(
                handoff,
                HandoffState.CLOSED,
                cause="bot closed the handoff",
                now=now,
                close_reason=CloseReason.BOT_CLOSED,
            )
            event, rows = self._events.make(
                closed, EventType.CLOSED, {"reason": str(CloseReason.BOT_CLOSED)}, now=now
            )
            work = OutboxItem(
                id=ids.outbox_id(),
                handoff_id=handoff_id,
                target=OutboxTarget.LIVECHAT,
                kind="close_chat",
                payload={},
            )
            await self._store.commit(
                Change(
                    handoff=closed,
                    transition=record,
                    events=(event,),
                    outbox=(work, *rows),
                )
            )
            return closed

        return await retry_stale(attempt)

    async def messages(self, handoff_id: str) -> list[Message]:
        await self.get(handoff_id)
        return await self._store.list_messages(handoff_id)
