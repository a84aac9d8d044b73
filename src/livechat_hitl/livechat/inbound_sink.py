"""The INBOUND sink: applies recorded LiveChat deliveries, in order per handoff.

LiveChat does not promise to deliver webhooks in order (and retries overtake), so an
agent's message is never relayed ahead of an earlier one of the same thread: before
relaying one, the sink reads the thread (`get_chat`) and relays the earlier agent
messages not relayed yet first. Their own deliveries, when they come, are no-ops.
"""

from __future__ import annotations

import logging

from livechat_hitl.domain.models import Change, Handoff, OutboxRow
from livechat_hitl.livechat.actions import incoming_from_event, to_action
from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.directory import ChatUsersDirectory
from livechat_hitl.livechat.errors import LiveChatError
from livechat_hitl.outbox.sinks import Delivered, Failed
from livechat_hitl.ports import Store
from livechat_hitl.services.inbound import AgentJoined, InboundService, IncomingEvent

log = logging.getLogger(__name__)


class InboundSink:
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
                return Delivered(change=await self._incoming(handoff, action))
            except LiveChatError as exc:
                if not exc.retryable:
                    raise
                error = f"{exc.type}: {exc.message}"[:500]
                return Failed(error=error, retryable=True, retry_after=exc.retry_after)
        return Delivered(change=await self._service.apply(handoff, action))

    async def _incoming(self, handoff: Handoff, action: IncomingEvent) -> Change | None:
        if not self._service.may_be_agent_message(handoff, action):
            return None
        # Ask about these event ids only: the handoff's whole history is not read per
        # delivery (that made each message cost more the longer the chat ran).
        if await self._store.relayed_event_ids(handoff.id, [action.event_id]):
            return None  # relayed already, ahead of its own (late) delivery
        earlier = await self._earlier_unrelayed(handoff, action)
        if earlier:
            relayed = await self._store.relayed_event_ids(handoff.id, [e.event_id for e in earlier])
            earlier = [e for e in earlier if e.event_id not in relayed]
        return await self._service.apply_messages(handoff, [*earlier, action])

    async def _earlier_unrelayed(
        self, handoff: Handoff, action: IncomingEvent
    ) -> list[IncomingEvent]:
        """The agent messages ahead of `action` in its thread (relayed or not)."""
        if self._client is None:
            return []
        try:
            chat = await self._client.agent.get_chat(action.chat_id, action.thread_id)
        except LiveChatError as exc:
            if exc.retryable:
                raise
            # LiveChat will not show the thread (gone, or not ours to read): relay the
            # message alone rather than hold it back for good.
            log.info(
                "cannot read thread %s of chat %s: %s", action.thread_id, action.chat_id, exc.type
            )
            return []
        thread = chat.thread
        if thread is None:
            return []
        found: list[IncomingEvent] = []
        for event in thread.events:
            if getattr(event, "id", None) == action.event_id:
                return found
            earlier = incoming_from_event(action.chat_id, thread.id, event)
            if self._service.may_be_agent_message(handoff, earlier):
                found.append(earlier)
        return []  # the thread does not hold this event (yet): relay it alone
