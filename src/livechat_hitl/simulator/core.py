"""The simulator's services wired together, and signal → webhook fan-out."""

from __future__ import annotations

import copy

import httpx

from .auth import Credentials
from .chats import ChatService
from .config import IdFactory, SimulatorConfig
from .delivery import WebhookEmitter
from .faults import Faults
from .files import FileStore
from .routing import Router
from .transfers import TransferService
from .webhooks import WebhookRegistry
from .world import Json, Requester, Signal, World


class Core:
    def __init__(
        self, config: SimulatorConfig, webhook_http: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.clock = config.make_clock()
        self.ids = IdFactory(config.seed)
        self.world = World(config, self.clock, self.ids)
        self.router = Router(self.world)
        self.files = FileStore(config.base_url, config.organization_id)
        self.chats = ChatService(self.world, self.router, self.files)
        self.transfers = TransferService(self.chats)
        self.credentials = Credentials(self.world)
        self.webhooks = WebhookRegistry(self.world)
        self.emitter = WebhookEmitter(config, self.clock, webhook_http)
        self.faults = Faults()
        self.world.on_signal = self.dispatch

    def dispatch(self, signal: Signal) -> None:
        for webhook in self.webhooks.matching(signal):
            envelope: Json = {
                "webhook_id": webhook.id,
                "secret_key": webhook.secret_key,
                "action": signal.action,
                "organization_id": self.config.organization_id,
                "payload": copy.deepcopy(signal.payload),
                # Always present (the SDK's WebhookV36 requires it), `{}` when empty.
                "additional_data": self.webhooks.additional_data(webhook, signal),
            }
            self.emitter.submit(webhook.id, webhook.url, signal.action, envelope)

    def set_routing_status(
        self, agent_id: str, status: str, source: Requester | None = None
    ) -> None:
        agent = self.world.agent(agent_id)
        allowed = ("accepting_chats", "not_accepting_chats", "offline")
        if status not in allowed or (status == "offline" and not agent.is_bot):
            raise ValueError(status)
        agent.status = status  # type: ignore[assignment]
        spelled = (
            status
            if self.config.routing_status_webhook_spelling == "underscore"
            else status.replace("_", " ")
        )
        requester = source
        self.world.emit(
            Signal(
                "routing_status_set",
                {"agent_id": agent_id, "status": spelled},
                source=requester,
                agent_id=agent_id,
            )
        )
        self.router.drain()
