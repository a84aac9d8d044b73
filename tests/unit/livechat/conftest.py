"""Fixtures for the LiveChat client tests."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from httpx_bridge import bridged
from livechat_fakes import ACCOUNT_ID, CLIENT_ID, ORGANIZATION_ID, PAT, FakeLiveChat

from livechat_hitl.livechat import AgentCredentials, LiveChatClient
from livechat_hitl.outbound import AiohttpTransport
from livechat_hitl.outbound_process import ProcessTransport


@pytest.fixture(name="fake")
def fixture_fake() -> FakeLiveChat:
    return FakeLiveChat()


@pytest.fixture(name="credentials")
def fixture_credentials() -> AgentCredentials:
    return AgentCredentials.from_pat(ACCOUNT_ID, PAT)


@pytest.fixture(name="client", params=["client", "transport", "aiohttp", "process"])
async def fixture_client(request, fake: FakeLiveChat, credentials: AgentCredentials):
    # An httpx client (tests, the sandbox), a bare transport, or aiohttp's over loopback
    # (what the gateway uses: action calls skip httpx's objects there), in this process
    # or from its child process (HITL_OUTBOUND_PROCESS).
    async with contextlib.AsyncExitStack() as stack:
        api_url, accounts_url = "http://lc.test", "http://accounts.test"
        if request.param in ("aiohttp", "process"):
            http = AiohttpTransport() if request.param == "aiohttp" else ProcessTransport()
            stack.push_async_callback(http.aclose)
            api_url = await stack.enter_async_context(bridged(fake, api_url))
            accounts_url = await stack.enter_async_context(bridged(fake, accounts_url))
        else:
            client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
            await stack.enter_async_context(client)
            http = client if request.param == "client" else httpx.MockTransport(fake)
        yield LiveChatClient(
            http,
            api_url=api_url,
            accounts_url=accounts_url,
            agent_credentials=credentials,
            client_id=CLIENT_ID,
            organization_id=ORGANIZATION_ID,
            redirect_uri="https://gateway.example/",
        )
