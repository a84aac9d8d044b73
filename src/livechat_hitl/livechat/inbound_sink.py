"""The INBOUND sink: applies recorded LiveChat deliveries, in order per handoff."""

from __future__ import annotations

from livechat_hitl.domain.models import OutboxRow
from livechat_hitl.livechat.actions import to_action
from livechat_hitl.livechat.directory import ChatUsersDirectory
from livechat_hitl.outbox.sinks import Delivered, Failed
from livechat_hitl.ports import Store
from livechat_hitl.services.inbound import AgentJoined, InboundService


class InboundSink:
    def __init__(
        self, store: Store, service: InboundService, directory: ChatUsersDirectory
    ) -> None:
        self._store = store
        self._service = service
        self._directory = directory

    async def deliver(self, row: OutboxRow) -> Delivered | Failed:
        handoff = await self._store.get_handoff(row.handoff_id)
        if handoff is None:
            return Failed(error=f"handoff {row.handoff_id} is gone", retryable=False)
        action = to_action(str(row.payload["action"]), dict(row.payload["payload"]))
        if action is None:
            return Delivered()
        if isinstance(action, AgentJoined):
            self._directory.remember(action.agent)
        return Delivered(change=await self._service.apply(handoff, action))
