"""The request funnel: URLs, headers, regions, error mapping, transport failures, logging."""

from __future__ import annotations

import asyncio
import base64
import logging

import httpx
import pytest
from livechat_fakes import ACCOUNT_ID, CLIENT_ID, ORGANIZATION_ID, PAT, error_response

from livechat_hitl.livechat import (
    AgentCredentials,
    Api,
    CredentialsError,
    CustomerSession,
    LiveChatClient,
    LiveChatTransportError,
)
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.wire import API_VERSION


async def test_agent_call_url_auth_region_and_json(client, fake):
    fake.on("/v3.6/agent/action/get_customer", {"id": "c1", "type": "customer"})
    answer = await client.call(Api.AGENT, "get_customer", {"id": "c1"})

    request = fake.last
    assert answer == {"id": "c1", "type": "customer"}
    assert request.method == "POST"
    assert str(request.url) == f"http://lc.test/v{API_VERSION}/agent/action/get_customer"
    expected = base64.b64encode(f"{ACCOUNT_ID}:{PAT}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["X-Region"] == "fra"
    assert request.headers["Content-Type"] == "application/json"
    assert fake.body() == {"id": "c1"}


async def test_console_token_is_sent_verbatim(fake):
    token = base64.b64encode(f"{ACCOUNT_ID}:dal:xyz".encode()).decode()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = LiveChatClient(
            http,
            api_url="http://lc.test",
            agent_credentials=AgentCredentials.from_agent_token(token),
        )
        await client.call(Api.CONFIGURATION, "list_groups", {})
    assert fake.last.headers["Authorization"] == f"Basic {token}"
    assert fake.last.headers["X-Region"] == "dal"
    assert fake.last.url.path == "/v3.6/configuration/action/list_groups"


async def test_no_region_header_when_the_token_has_no_prefix(fake):
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = LiveChatClient(
            http,
            api_url="http://lc.test/",
            agent_credentials=AgentCredentials.from_pat(ACCOUNT_ID, "plainpat"),
        )
        await client.call(Api.AGENT, "list_chats")
    assert "X-Region" not in fake.last.headers
    assert fake.last.url.path == "/v3.6/agent/action/list_chats"  # trailing slash trimmed
    assert fake.body() == {}


async def test_customer_call_carries_organization_id_and_customer_bearer(client, fake):
    session = CustomerSession.from_dict(
        {
            "customer_id": "cust-1",
            "access_token": "dal:customer-token",
            "expires_at": "2099-01-01T00:00:00+00:00",
        }
    )
    await client.call(Api.CUSTOMER, "get_customer", {}, credentials=session)
    request = fake.last
    assert request.url.path == "/v3.6/customer/action/get_customer"
    assert request.url.params["organization_id"] == ORGANIZATION_ID
    assert request.headers["Authorization"] == "Bearer dal:customer-token"
    assert request.headers["X-Region"] == "dal"


async def test_customer_call_without_a_session_is_refused_before_sending(client, fake):
    with pytest.raises(CredentialsError):
        await client.call(Api.CUSTOMER, "get_customer", {})
    assert fake.requests == []


async def test_anonymous_call_sends_no_authorization(client, fake):
    await client.call(Api.CONFIGURATION, "issue_bot_token", {"bot_id": "b"}, anonymous=True)
    assert "Authorization" not in fake.last.headers


async def test_empty_2xx_body_is_an_empty_object(client, fake):
    fake.on("/v3.6/agent/action/deactivate_chat", httpx.Response(200, content=b""))
    assert await client.call(Api.AGENT, "deactivate_chat", {"id": "C"}) == {}


async def test_non_json_2xx_body_is_an_internal_error(client, fake):
    fake.on("/v3.6/agent/action/get_chat", httpx.Response(200, content=b"<html>proxy</html>"))
    with pytest.raises(e.InternalError):
        await client.call(Api.AGENT, "get_chat", {"chat_id": "C"})


async def test_errors_are_mapped_with_retry_after(client, fake):
    fake.on(
        "/v3.6/agent/action/send_event",
        error_response(429, "too_many_requests", "Too many requests", **{"Retry-After": "12"}),
    )
    with pytest.raises(e.TooManyRequestsError) as caught:
        await client.call(Api.AGENT, "send_event", {"chat_id": "C", "event": {}})
    assert caught.value.retry_after == 12.0
    assert caught.value.retryable
    assert caught.value.status_code == 429


async def test_chat_inactive_is_permanent(client, fake):
    fake.on(
        "/v3.6/agent/action/send_event", error_response(409, "chat_inactive", "Chat is inactive")
    )
    with pytest.raises(e.ChatInactiveError) as caught:
        await client.call(Api.AGENT, "send_event", {})
    assert not caught.value.retryable
    assert len(fake.requests) == 1  # the funnel itself never retries


async def test_misdirected_request_is_retried_once_in_the_given_region_and_remembered(client, fake):
    fake.on(
        "/v3.6/agent/action/get_chat",
        error_response(421, "misdirected_request", "Wrong region", {"region": "dal"}),
        {"id": "C", "users": []},
    )
    answer = await client.call(Api.AGENT, "get_chat", {"chat_id": "C"})
    assert answer["id"] == "C"
    assert [r.headers["X-Region"] for r in fake.requests] == ["fra", "dal"]
    assert fake.body(0) == fake.body(1) == {"chat_id": "C"}
    assert client.region == "dal"

    await client.call(Api.AGENT, "list_chats", {})
    assert fake.last.headers["X-Region"] == "dal"
    assert len(fake.requests) == 3


async def test_misdirected_request_twice_gives_up(client, fake):
    fake.on(
        "/v3.6/agent/action/get_chat",
        error_response(421, "misdirected_request", "Wrong region", {"region": "dal"}),
        error_response(421, "misdirected_request", "Wrong region", {"region": "fra"}),
    )
    with pytest.raises(e.MisdirectedRequestError):
        await client.call(Api.AGENT, "get_chat", {"chat_id": "C"})
    assert len(fake.requests) == 2


async def test_misdirected_request_without_a_region_is_not_retried(client, fake):
    fake.on("/v3.6/agent/action/get_chat", error_response(421, "misdirected_request", "Wrong"))
    with pytest.raises(e.MisdirectedRequestError) as caught:
        await client.call(Api.AGENT, "get_chat", {})
    assert caught.value.region is None
    assert len(fake.requests) == 1


async def test_misdirected_upload_is_replayed_with_the_same_file(client, fake):
    fake.on(
        "/v3.6/agent/action/upload_file",
        error_response(421, "misdirected_request", "Wrong region", {"region": "dal"}),
        {"url": "https://cdn.livechat-files.com/x.png"},
    )
    answer = await client.call(Api.AGENT, "upload_file", file=("x.png", b"\x89PNG", "image/png"))
    assert answer["url"].endswith("x.png")
    assert all(b"\x89PNG" in r.read() for r in fake.requests)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")],
)
async def test_transport_failures_become_retryable_transport_errors(failure, credentials):
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = LiveChatClient(http, api_url="http://lc.test", agent_credentials=credentials)
        with pytest.raises(LiveChatTransportError) as caught:
            await client.call(Api.AGENT, "get_chat", {"chat_id": "C"})
    assert caught.value.retryable
    assert caught.value.__cause__ is failure


async def test_timeout_is_applied_to_each_request(fake, credentials):
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = LiveChatClient(
            http, api_url="http://lc.test", agent_credentials=credentials, timeout=3.5
        )
        await client.call(Api.AGENT, "list_chats")
    assert fake.last.extensions["timeout"] == {
        "connect": 3.5,
        "read": 3.5,
        "write": 3.5,
        "pool": 3.5,
    }


@pytest.mark.parametrize(
    "timeout", [0.05, httpx.Timeout(0.05), httpx.Timeout(None, connect=0.01, read=0.05)]
)
async def test_the_timeout_bounds_the_whole_request(timeout, credentials):
    """A transport that never trips httpx's per-phase timeouts still gets cut off."""

    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as http:
        client = LiveChatClient(
            http, api_url="http://lc.test", agent_credentials=credentials, timeout=timeout
        )
        with pytest.raises(LiveChatTransportError, match="timeout") as caught:
            await asyncio.wait_for(client.call(Api.AGENT, "list_chats"), 5)
    assert caught.value.retryable


async def test_debug_logs_name_the_call_but_never_the_secrets(client, fake, caplog):
    caplog.set_level(logging.DEBUG, logger="livechat_hitl.livechat")
    fake.on("/v3.6/agent/action/send_event", error_response(400, "validation", "bad"))
    await client.call(Api.AGENT, "list_chats", {})
    with pytest.raises(e.InvalidRequestError):
        await client.call(Api.AGENT, "send_event", {"secret_key": "hush"})
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "agent/list_chats -> 200" in text
    assert "agent/send_event -> 400" in text
    encoded = base64.b64encode(f"{ACCOUNT_ID}:{PAT}".encode()).decode()
    for secret in (PAT, encoded, "hush", "PAT-SECRET"):
        assert secret not in text
    assert all(record.name.startswith("livechat_hitl.livechat") for record in caplog.records)


async def test_no_agent_credentials_is_a_clear_error(fake):
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = LiveChatClient(http, api_url="http://lc.test", client_id=CLIENT_ID)
        with pytest.raises(CredentialsError):
            await client.call(Api.AGENT, "list_chats")
    assert fake.requests == []
