"""Fixtures for the LiveChat client tests."""

from __future__ import annotations

import httpx
import pytest
from livechat_fakes import ACCOUNT_ID, CLIENT_ID, ORGANIZATION_ID, PAT, FakeLiveChat

from livechat_hitl.livechat import AgentCredentials, LiveChatClient


@pytest.fixture(name="fake")
def fixture_fake() -> FakeLiveChat:
    return FakeLiveChat()


@pytest.fixture(name="credentials")
def fixture_credentials() -> AgentCredentials:
    return AgentCredentials.from_pat(ACCOUNT_ID, PAT)


@pytest.fixture(name="client", params=["client", "transport"])
async def fixture_client(request, fake: FakeLiveChat, credentials: AgentCredentials):
    # An httpx client (tests, the sandbox) or a bare transport (what the gateway uses).
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        http = client if request.param == "client" else httpx.MockTransport(fake)
        yield LiveChatClient(
            http,
            api_url="http://lc.test",
            accounts_url="http://accounts.test",
            agent_credentials=credentials,
            client_id=CLIENT_ID,
            organization_id=ORGANIZATION_ID,
            redirect_uri="https://gateway.example/",
        )
