"""The gateway as one object: store, LiveChat client, services, sinks and the relay.

`Gateway` is an async context manager; the HTTP app's lifespan enters it under uvicorn,
and in-process tests enter it themselves (injecting httpx clients whose transports reach
the simulator and a bot receiver).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from types import TracebackType
from typing import Self

import httpx

from livechat_hitl.bots.webhook_sender import BotWebhookSink
from livechat_hitl.clock import SystemClock
from livechat_hitl.config import Settings
from livechat_hitl.domain.models import OutboxTarget
from livechat_hitl.livechat.auth import AgentCredentials
from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.directory import ChatUsersDirectory
from livechat_hitl.livechat.files import FileFetcher
from livechat_hitl.livechat.inbound_sink import InboundSink
from livechat_hitl.livechat.work import LiveChatWork
from livechat_hitl.outbound import AiohttpTransport
from livechat_hitl.outbound_process import ProcessTransport
from livechat_hitl.outbox.relay import OutboxRelay
from livechat_hitl.outbox.retry import RetryPolicy
from livechat_hitl.outbox.sinks import Sink
from livechat_hitl.ports import Clock
from livechat_hitl.services.events import EventFactory
from livechat_hitl.services.handoffs import HandoffService
from livechat_hitl.services.inbound import InboundService
from livechat_hitl.store.group_commit import GroupCommitter
from livechat_hitl.store.notifier import LocalNotifier
from livechat_hitl.store.pg_notifier import listen_for_commits
from livechat_hitl.store.sql_store import SqlStore, open_store

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        livechat_http: httpx.AsyncClient | None = None,
        bot_transport: httpx.AsyncBaseTransport | None = None,
        fetch_http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        retry_policy: RetryPolicy | None = None,
        run_relay: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._livechat_http = livechat_http
        self._bot_transport = bot_transport
        self._busy: AiohttpTransport | None = None
        self._fetch_http = fetch_http
        self._policy = retry_policy
        self._run_relay = run_relay
        self._stack: contextlib.AsyncExitStack | None = None
        self.notifier = LocalNotifier()

    # Filled by __aenter__:
    store: SqlStore
    committer: GroupCommitter
    livechat: LiveChatClient
    handoffs: HandoffService
    relay: OutboxRelay
    fetcher: FileFetcher
    own_account_id: str | None

    @property
    def started(self) -> bool:
        return self._stack is not None

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._busy = None  # closed with the stack

    async def _http(
        self, stack: contextlib.AsyncExitStack, given: httpx.AsyncClient | None
    ) -> httpx.AsyncClient:
        """The given client, or one of ours (httpx's own transport: file fetching)."""
        if given is not None:
            return given
        return await stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(15.0), follow_redirects=False)
        )

    async def _busy_transport(self, stack: contextlib.AsyncExitStack) -> httpx.AsyncBaseTransport:
        """For the busy paths (LiveChat, the bot), one for both: aiohttp's pool
        (outbound.py), used straight through the transport, in a child process of its
        own unless HITL_OUTBOUND_PROCESS is false (outbound_process.py)."""
        if self._busy is None:
            s = self.settings
            transport = (
                ProcessTransport(log_level=s.log_level.value, log_format=s.log_format.value)
                if s.outbound_process
                else AiohttpTransport()
            )
            stack.push_async_callback(transport.aclose)
            if isinstance(transport, ProcessTransport):
                await transport.start()
            self._busy = transport
        return self._busy

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.settings
        self.store = await stack.enter_async_context(
            open_store(s.database_url, clock=self.clock, notifier=self.notifier)
        )
        # PostgreSQL: other processes' commits wake this one's SSE feeds and relay too.
        await stack.enter_async_context(listen_for_commits(s.database_url, self.notifier))
        # Webhook deliveries arrive in bursts: one transaction records many of them.
        self.committer = await stack.enter_async_context(GroupCommitter(self.store))
        token = s.livechat_basic_token
        credentials = AgentCredentials.from_agent_token(token.get_secret_value()) if token else None
        self.own_account_id = s.livechat_credentials[0] if s.livechat_credentials else None
        self.livechat = LiveChatClient(
            self._livechat_http or await self._busy_transport(stack),
            api_url=s.livechat_api_url,
            accounts_url=s.livechat_accounts_url,
            agent_credentials=credentials,
            client_id=s.livechat_client_id,
            organization_id=s.livechat_organization_id,
            redirect_uri=s.livechat_redirect_uri or s.public_url,
            timeout=s.livechat_timeout_seconds,
        )
        events = EventFactory(bot_webhook_enabled=s.bot_webhook_url is not None)
        self.handoffs = HandoffService(
            self.store, self.clock, events, default_group_id=s.livechat_group_id
        )
        directory = ChatUsersDirectory(self.livechat)
        inbound = InboundService(self.clock, events, directory, own_account_id=self.own_account_id)
        fetcher = self.fetcher = FileFetcher(
            await self._http(stack, self._fetch_http),
            only_allowed=s.fetch_only_allowlist,
            allow=[*s.fetch_allowlist_hosts, *(str(n) for n in s.fetch_allowlist_networks)],
        )
        sinks: dict[OutboxTarget, Sink] = {
            OutboxTarget.LIVECHAT: LiveChatWork(
                self.livechat, self.store, self.clock, events, fetcher
            ),
            OutboxTarget.INBOUND: InboundSink(self.store, inbound, directory, self.livechat),
        }
        if s.bot_webhook_url is not None:
            if s.bot_webhook_secret is None:
                raise ValueError("HITL_BOT_WEBHOOK_SECRET is required with HITL_BOT_WEBHOOK_URL")
            sinks[OutboxTarget.BOT_WEBHOOK] = BotWebhookSink(
                self._bot_transport or await self._busy_transport(stack),
                s.bot_webhook_url,
                s.bot_webhook_secret,
                self.clock,
                timeout=s.bot_webhook_timeout,
            )
        policy = self._policy or RetryPolicy(
            base=s.relay_backoff_base_seconds,
            cap=max(s.relay_backoff_cap_seconds, s.relay_backoff_base_seconds),
            max_age=timedelta(hours=s.relay_max_age_hours),
        )
        self.relay = OutboxRelay(
            self.store,
            sinks,
            self.clock,
            self.notifier,
            policy,
            lease_seconds=s.relay_lease_seconds,
            batch=s.relay_batch_size,
            concurrency=s.relay_concurrency,
            committer=self.committer,
        )
        if self._run_relay:
            await stack.enter_async_context(self.relay)

    async def agents_accepting(self, group_id: int) -> int:
        """How many agents of the group accept chats now (the API account not counted)."""
        statuses = await self.livechat.agent.list_routing_statuses([group_id])
        return sum(
            1
            for s in statuses
            if s.status == "accepting_chats" and s.agent_id != self.own_account_id
        )
