"""The INBOUND sink: applies recorded LiveChat deliveries, in order per handoff.

LiveChat does not promise to deliver webhooks in order (and retries overtake), so an
agent's message is never relayed ahead of an earlier one of the same thread: before
relaying one (or a batch of them), the sink reads the thread (`get_chat`) and relays the
earlier agent messages not relayed yet first. Their own deliveries, when they come, are
no-ops.
"""

from __future__ import annotations

import logging

from livechat_hitl.domain.models import Change, Handoff, OutboxRow
from livechat_hitl.livechat.actions import incoming_from_event, to_action
from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.directory import ChatUsersDirectory
from livechat_hitl.livechat.errors import LiveChatError
from livechat_hitl.outbox.sinks import Delivered, Failed, LaneOutcome
from livechat_hitl.ports import Store
from livechat_hitl.services.inbound import AgentJoined, InboundService, IncomingEvent

log = logging.getLogger(__name__)


class InboundSink:
    """The `LaneSink` for INBOUND rows: a backlog of one handoff's agent messages is
    applied as one batch (one look-up of the handoff, one read of the thread, one
    commit)."""

    lane_size = 64

    def __init__(
        self,
        store: Store,
        service: InboundService,
        directory: ChatUsersDirectory,
        client: LiveChatClient | None = None,
    ) -> None:
        self._store = store
        self._service = service
        self._directory = directory
        self._client = client

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        handoff = await self._store.get_handoff(row.handoff_id)
        if handoff is None:
            return Failed(error=f"handoff {row.handoff_id} is gone", retryable=False)
        action = to_action(str(row.payload["action"]), dict(row.payload["payload"]))
        if action is None:
            return Delivered()
        if isinstance(action, AgentJoined):
            self._directory.remember(action.agent)
        if isinstance(action, IncomingEvent):
            try:
                return Delivered(change=await self._messages(handoff, [action]))
            except LiveChatError as exc:
                return _failed(exc)
        return Delivered(change=await self._service.apply(handoff, action))

    async def deliver_lane(self, rows: list[OutboxRow]) -> LaneOutcome:
        """The leading run of message rows (and rows the gateway ignores) as one
        change; a row of another kind (transfer, close, …) is applied alone, so each
        state change sees the one before it committed."""
        messages: list[IncomingEvent] = []
        taken = 0
        for row in rows:
            action = to_action(str(row.payload["action"]), dict(row.payload["payload"]))
            if action is not None and not isinstance(action, IncomingEvent):
                break
            if action is not None:
                messages.append(action)
            taken += 1
        if taken == 0:
            outcome = await self.deliver(rows[0])
            if isinstance(outcome, Failed):
                return LaneOutcome(delivered=0, failure=outcome)
            return LaneOutcome(delivered=1, change=outcome.change)
        handoff = await self._store.get_handoff(rows[0].handoff_id)
        if handoff is None:
            return LaneOutcome(
                delivered=0,
                failure=Failed(error=f"handoff {rows[0].handoff_id} is gone", retryable=False),
            )
        try:
            change = await self._messages(handoff, messages) if messages else None
        except LiveChatError as exc:
            return LaneOutcome(delivered=0, failure=_failed(exc))
        return LaneOutcome(delivered=taken, change=change)

    async def _messages(self, handoff: Handoff, actions: list[IncomingEvent]) -> Change | None:
        """The agent messages among `actions` not relayed yet, each after the earlier
        agent messages of its thread (relayed first when they are not yet)."""
        wanted: dict[str, IncomingEvent] = {}
        for action in actions:
            if self._service.may_be_agent_message(handoff, action):
                wanted.setdefault(action.event_id, action)
        if not wanted:
            return None
        # Ask about these event ids only: the handoff's whole history is not read per
        # delivery (that made each message cost more the longer the chat ran).
        relayed = await self._store.relayed_event_ids(handoff.id, list(wanted))
        fresh = [a for a in wanted.values() if a.event_id not in relayed]
        if not fresh:
            return None
        ordered: list[IncomingEvent] = []
        threads: dict[tuple[str, str | None], list[IncomingEvent]] = {}
        for action in fresh:
            threads.setdefault((action.chat_id, action.thread_id), []).append(action)
        for batch in threads.values():
            ordered += await self._in_thread_order(handoff, batch)
        return await self._service.apply_messages(handoff, ordered)

    async def _in_thread_order(
        self, handoff: Handoff, batch: list[IncomingEvent]
    ) -> list[IncomingEvent]:
        """`batch` (messages of one thread) in thread order, preceded by the thread's
        earlier agent messages not relayed yet; messages the thread does not show (yet)
        come last, in the order given."""
        earlier = await self._thread_messages(handoff, batch)
        ids = {action.event_id for action in batch}
        found = [e for e in earlier if e.event_id in ids]
        missing = [a for a in batch if a.event_id not in {e.event_id for e in found}]
        others = [e.event_id for e in earlier if e.event_id not in ids]
        relayed = await self._store.relayed_event_ids(handoff.id, others) if others else set()
        mine = {a.event_id: a for a in batch}
        head = [mine.get(e.event_id, e) for e in earlier if e.event_id not in relayed]
        return head + missing

    async def _thread_messages(
        self, handoff: Handoff, batch: list[IncomingEvent]
    ) -> list[IncomingEvent]:
        """The agent messages of the batch's thread, up to the last one of `batch`."""
        if self._client is None:
            return []
        first = batch[0]
        try:
            chat = await self._client.agent.get_chat(first.chat_id, first.thread_id)
        except LiveChatError as exc:
            if exc.retryable:
                raise
            # LiveChat will not show the thread (gone, or not ours to read): relay the
            # messages alone rather than hold them back for good.
            log.info(
                "cannot read thread %s of chat %s: %s", first.thread_id, first.chat_id, exc.type
            )
            return []
        thread = chat.thread
        if thread is None:
            return []
        ids = {action.event_id for action in batch}
        messages: list[IncomingEvent] = []
        upto = 0
        for event in thread.events:
            message = incoming_from_event(first.chat_id, thread.id, event)
            if not self._service.may_be_agent_message(handoff, message):
                continue
            messages.append(message)
            if message.event_id in ids:
                upto = len(messages)
        return messages[:upto]


def _failed(exc: LiveChatError) -> Failed:
    if not exc.retryable:
        raise exc
    error = f"{exc.type}: {exc.message}"[:500]
    return Failed(error=error, retryable=True, retry_after=exc.retry_after)
