"""LiveChat-side use cases: apply what LiveChat tells us to the handoff.

The webhook door records each delivery durably (de-duplicated) as an INBOUND outbox row
and answers 200; the relay then hands the row, parsed into one of the neutral actions
below, to `InboundService.apply`, in order per handoff.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from livechat_hitl import ids, metrics
from livechat_hitl.domain.lifecycle import advance, touch
from livechat_hitl.domain.models import (
    JSON,
    Agent,
    BotEvent,
    Change,
    DeliveryStatus,
    Direction,
    EventType,
    Handoff,
    Message,
    MessageType,
    OutboxItem,
    QueueInfo,
    Transition,
)
from livechat_hitl.domain.states import CloseReason, HandoffState
from livechat_hitl.ports import AgentDirectory, Clock
from livechat_hitl.services.events import EventFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    chat_id: str
    thread_id: str | None
    event_id: str
    author_id: str | None
    visibility: str
    kind: MessageType | None  # None: not something an agent says (system message, …)
    text: str | None = None
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    elements: tuple[JSON, ...] | None = None
    custom_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatTransferred:
    chat_id: str
    thread_id: str | None
    reason: str | None
    agent_ids: tuple[str, ...]
    group_ids: tuple[int, ...]
    queue: QueueInfo | None


@dataclass(frozen=True, slots=True)
class ChatDeactivated:
    chat_id: str
    thread_id: str | None
    user_id: str | None


@dataclass(frozen=True, slots=True)
class AgentJoined:
    chat_id: str
    thread_id: str | None
    agent: Agent


InboundAction = IncomingEvent | ChatTransferred | ChatDeactivated | AgentJoined


def agent_json(agent: Agent) -> JSON:
    return asdict(agent)


class InboundService:
    """Turns one LiveChat action into the Change it causes (or None: nothing to do)."""

    def __init__(
        self,
        clock: Clock,
        events: EventFactory,
        directory: AgentDirectory,
        *,
        own_account_id: str | None,
    ) -> None:
        self._clock = clock
        self._events = events
        self._directory = directory
        self._own_account = own_account_id

    async def apply(self, handoff: Handoff, action: InboundAction) -> Change | None:
        if isinstance(action, IncomingEvent):
            # An agent's message is never dropped: LiveChat refuses messages in a closed
            # thread, so one that reaches us was written before the chat closed, even if
            # the bot's close was recorded first.
            return await self._incoming_event(handoff, action)
        if not handoff.state.is_open:
            log.debug(
                "ignoring %s for %s handoff %s", type(action).__name__, handoff.state, handoff.id
            )
            return None
        match action:
            case IncomingEvent():
                return await self._incoming_event(handoff, action)
            case ChatTransferred():
                return await self._transferred(handoff, action)
            case ChatDeactivated():
                return self._deactivated(handoff, action)
            case AgentJoined():
                return self._assign(handoff, action.agent, cause="agent joined the chat")

    def may_be_agent_message(self, handoff: Handoff, action: IncomingEvent) -> bool:
        """Whether the event can be an agent's message for the bot (the author is then
        looked up): not a system message, not a note, not our customer's own echo."""
        return (
            action.kind is not None
            and action.visibility == "all"
            and action.author_id is not None
            and action.author_id != handoff.customer_id
            and action.author_id != self._own_account
        )

    async def apply_messages(self, handoff: Handoff, actions: list[IncomingEvent]) -> Change | None:
        """Several agent messages of one thread, in the order given, as one Change."""
        merged: Change | None = None
        for action in actions:
            change = await self._incoming_event(handoff, action)
            if change is None:
                continue
            if change.handoff is not None:
                handoff = change.handoff
            if merged is None:
                merged = change
                continue
            merged = Change(
                handoff=change.handoff or merged.handoff,
                transition=merged.transition or change.transition,
                messages=(*merged.messages, *change.messages),
                events=(*merged.events, *change.events),
                outbox=(*merged.outbox, *change.outbox),
            )
        return merged

    async def _agent(self, chat_id: str, user_id: str | None) -> Agent | None:
        if user_id is None or user_id == self._own_account:
            return None
        return await self._directory.agent(chat_id, user_id)

    async def _incoming_event(self, handoff: Handoff, action: IncomingEvent) -> Change | None:
        if action.kind is None or not self.may_be_agent_message(handoff, action):
            # system messages and agents-only notes never reach the bot, nor do our own
            # relayed user messages echoing back
            return None
        agent = await self._agent(action.chat_id, action.author_id)
        if agent is None:
            return None
        now = self._clock.now()
        message = Message(
            id=ids.message_id(),
            handoff_id=handoff.id,
            direction=Direction.TO_BOT,
            type=action.kind,
            status=DeliveryStatus.DELIVERED,
            created_at=now,
            text=action.text,
            url=action.url,
            name=action.name,
            content_type=action.content_type,
            elements=list(action.elements) if action.elements is not None else None,
            author_id=agent.id,
            livechat_event_id=action.event_id,
        )
        wire: dict[str, Any] = {"id": message.id, "type": str(message.type)}
        for key in ("text", "url", "name", "content_type"):
            value = getattr(message, key)
            if value is not None:
                wire[key] = value
        if message.elements is not None:
            wire["elements"] = message.elements
        data = {"message": wire, "agent": {"id": agent.id, "name": agent.name}}
        changes: list[Change] = []
        if handoff.state.is_open and (
            handoff.state is not HandoffState.ASSIGNED or handoff.agent is None
        ):
            # An agent writing is the surest sign of assignment (webhooks may race).
            assigned = self._assign(handoff, agent, cause="agent wrote in the chat")
            if assigned is not None and assigned.handoff is not None:
                changes.append(assigned)
                handoff = assigned.handoff
        event, rows = self._events.make(handoff, EventType.MESSAGE, data, now=now)
        base = changes[0] if changes else Change()
        return Change(
            handoff=base.handoff,
            transition=base.transition,
            messages=(message,),
            events=(*base.events, event),
            outbox=(*base.outbox, *rows),
        )

    async def _transferred(self, handoff: Handoff, action: ChatTransferred) -> Change | None:
        now = self._clock.now()
        agents = [a for a in action.agent_ids if a != self._own_account]
        if agents:
            agent = await self._agent(action.chat_id, agents[0])
            if agent is None:
                agent = Agent(id=agents[0])
            if handoff.state is HandoffState.ASSIGNED and handoff.agent is not None:
                if handoff.agent.id == agent.id:
                    return None
                moved = touch(
                    handoff,
                    now=now,
                    agent=agent,
                    group_id=action.group_ids[0] if action.group_ids else handoff.group_id,
                )
                data: JSON = {"agent": agent_json(agent), "group_ids": list(action.group_ids)}
                return self._with_event(moved, None, EventType.TRANSFERRED, data, now)
            return self._assign(handoff, agent, cause=f"chat_transferred ({action.reason})")
        if action.queue is not None:
            group_id = action.group_ids[0] if action.group_ids else handoff.group_id
            # The first queueing follows our own transfer_chat; a chat that had an agent,
            # or moves to another group, was transferred by someone (and waits again).
            was_transferred = handoff.state is HandoffState.ASSIGNED or (
                handoff.state is HandoffState.QUEUED and group_id != handoff.group_id
            )
            queued, record = advance(
                handoff,
                HandoffState.QUEUED,
                cause="LiveChat queued the chat",
                now=now,
                queue=action.queue,
                agent=None,
                group_id=group_id,
            )
            data = {
                "queue": {"position": action.queue.position, "wait_time": action.queue.wait_time}
            }
            change = self._with_event(queued, record, EventType.QUEUED, data, now)
            if not was_transferred:
                return change
            transferred = self._with_event(
                queued, record, EventType.TRANSFERRED, {"group_ids": list(action.group_ids)}, now
            )
            return Change(
                handoff=queued,
                transition=record,
                events=(*transferred.events, *change.events),
                outbox=(*transferred.outbox, *change.outbox),
            )
        if action.group_ids and handoff.state is HandoffState.ASSIGNED:
            moved = touch(handoff, now=now, agent=None, group_id=action.group_ids[0])
            return self._with_event(
                moved, None, EventType.TRANSFERRED, {"group_ids": list(action.group_ids)}, now
            )
        return None

    def _deactivated(self, handoff: Handoff, action: ChatDeactivated) -> Change | None:
        if action.thread_id is not None and handoff.thread_id not in (None, action.thread_id):
            return None  # an older thread of this chat
        now = self._clock.now()
        reason = (
            CloseReason.AGENT_CLOSED
            if action.user_id is not None and action.user_id != self._own_account
            else CloseReason.LIVECHAT_CLOSED
        )
        closed, record = advance(
            handoff,
            HandoffState.CLOSED,
            cause=f"LiveChat deactivated the chat ({reason})",
            now=now,
            close_reason=reason,
        )
        return self._with_event(closed, record, EventType.CLOSED, {"reason": str(reason)}, now)

    def _assign(self, handoff: Handoff, agent: Agent, *, cause: str) -> Change | None:
        if handoff.state is HandoffState.ASSIGNED and handoff.agent is not None:
            return None
        now = self._clock.now()
        assigned, record = advance(
            handoff, HandoffState.ASSIGNED, cause=cause, now=now, agent=agent
        )
        if handoff.agent is None:
            metrics.TIME_TO_ASSIGN_SECONDS.observe((now - handoff.created_at).total_seconds())
        return self._with_event(
            assigned, record, EventType.ASSIGNED, {"agent": agent_json(agent)}, now
        )

    def _with_event(
        self,
        handoff: Handoff,
        record: Transition | None,
        type_: EventType,
        data: JSON,
        now: Any,
    ) -> Change:
        event, rows = self._events.make(handoff, type_, data, now=now)
        events: tuple[BotEvent, ...] = (event,)
        outbox: tuple[OutboxItem, ...] = rows
        return Change(handoff=handoff, transition=record, events=events, outbox=outbox)
