"""Customer identities: cookie grant keeps and replays cookies, renewal, agent_token grant."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from livechat_fakes import ACCOUNT_ID, CLIENT_ID, ORGANIZATION_ID, PAT

from livechat_hitl.livechat import (
    AgentCredentials,
    CredentialsError,
    CustomerSession,
    LiveChatClient,
)
from livechat_hitl.livechat import errors as e

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeAccounts:
    """`POST /v2/customer/token` that recognises customers by their `__lc_cid`/`__lc_cst`."""

    def __init__(self, honour_cookies: bool = True, domain: str | None = None) -> None:
        self.honour_cookies = honour_cookies
        self.domain = f"Domain={domain}; " if domain else ""
        self.requests: list[httpx.Request] = []
        self._ids = (f"cust-{n}" for n in itertools.count(1))
        self._tokens = (f"dal:token-{n}" for n in itertools.count(1))
        self._by_cookie: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if body["grant_type"] == "agent_token":
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                return httpx.Response(
                    401,
                    json={"oauth_exception": "unauthorized_client", "exception_description": "no"},
                )
            entity = body.get("entity_id") or next(self._ids)
            return httpx.Response(
                200,
                json={
                    "access_token": next(self._tokens),
                    "client_id": body["client_id"],
                    "entity_id": entity,
                    "expires_in": 28800,
                    "token_type": "Bearer",
                    "organization_id": ORGANIZATION_ID,
                },
            )
        cookies = dict(
            part.strip().split("=", 1)
            for part in request.headers.get("Cookie", "").split(";")
            if "=" in part
        )
        cid = cookies.get("__lc_cid")
        if (
            self.honour_cookies
            and cid in self._by_cookie
            and cookies.get("__lc_cst") == "cst-" + cid
        ):
            entity = self._by_cookie[cid]
        else:
            entity = next(self._ids)
            cid = "cid-" + entity
            self._by_cookie[cid] = entity
        return httpx.Response(
            200,
            json={
                "access_token": next(self._tokens),
                "entity_id": entity,
                "expires_in": 28800,
                "token_type": "Bearer",
                "organization_id": body["organization_id"],
            },
            headers=[
                (
                    "Set-Cookie",
                    f"__lc_cid={cid}; Path=/v2/customer; {self.domain}"
                    "Max-Age=63072000; HttpOnly; Secure; SameSite=None",
                ),
                (
                    "Set-Cookie",
                    f"__lc_cst=cst-{cid}; Path=/v2/customer; {self.domain}"
                    "Max-Age=63072000; HttpOnly; Secure; SameSite=None",
                ),
            ],
        )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(name="accounts")
def fixture_accounts() -> FakeAccounts:
    return FakeAccounts()


@pytest.fixture(name="clock")
def fixture_clock() -> Clock:
    return Clock()


@pytest.fixture(name="lc")
async def fixture_lc(accounts: FakeAccounts):
    async with httpx.AsyncClient(transport=httpx.MockTransport(accounts)) as http:
        yield LiveChatClient(
            http,
            api_url="http://lc.test",
            accounts_url="https://accounts.test",
            agent_credentials=AgentCredentials.from_pat(ACCOUNT_ID, PAT),
            client_id=CLIENT_ID,
            organization_id=ORGANIZATION_ID,
            redirect_uri="https://gateway.example/",
        )


async def test_cookie_grant_request_and_session(lc, accounts, clock):
    session = await lc.customer_identities(clock=clock).cookie_grant()
    request = accounts.requests[0]
    assert str(request.url) == "https://accounts.test/v2/customer/token"
    assert json.loads(request.content) == {
        "grant_type": "cookie",
        "client_id": CLIENT_ID,
        "response_type": "token",
        "organization_id": ORGANIZATION_ID,
        "redirect_uri": "https://gateway.example/",
    }
    assert "Authorization" not in request.headers
    assert "Cookie" not in request.headers
    assert session.customer_id == "cust-1"
    assert session.access_token.get_secret_value() == "dal:token-1"
    assert session.expires_at == START + timedelta(seconds=28800)
    assert session.cookies == {"__lc_cid": "cid-cust-1", "__lc_cst": "cst-cid-cust-1"}
    assert session.organization_id == ORGANIZATION_ID
    assert session.region == "dal"


async def test_cookies_sent_back_give_the_same_customer(lc, accounts, clock):
    identities = lc.customer_identities(clock=clock)
    first = await identities.cookie_grant()
    second = await identities.cookie_grant(first)
    assert accounts.requests[1].headers["Cookie"] == "__lc_cid=cid-cust-1; __lc_cst=cst-cid-cust-1"
    assert second.customer_id == first.customer_id
    assert second.access_token.get_secret_value() != first.access_token.get_secret_value()


async def test_two_end_users_never_share_cookies(lc, accounts, clock):
    """The shared httpx client's cookie jar must not carry one user's identity to the next."""
    identities = lc.customer_identities(clock=clock)
    ada = await identities.cookie_grant()
    bob = await identities.cookie_grant()
    assert ada.customer_id != bob.customer_id
    assert "Cookie" not in accounts.requests[1].headers


async def test_cookies_are_kept_whatever_their_domain(clock):
    """Real LiveChat sets Domain=accounts.livechat.com; a cookie jar would drop it elsewhere."""
    accounts = FakeAccounts(domain="accounts.livechat.com")
    async with httpx.AsyncClient(transport=httpx.MockTransport(accounts)) as http:
        lc = LiveChatClient(
            http, accounts_url="http://a.test", client_id=CLIENT_ID, organization_id=ORGANIZATION_ID
        )
        identities = lc.customer_identities(clock=clock)
        first = await identities.cookie_grant()
        second = await identities.cookie_grant(first)
    assert first.cookies == {"__lc_cid": "cid-cust-1", "__lc_cst": "cst-cid-cust-1"}
    assert second.customer_id == first.customer_id


async def test_server_that_ignores_cookies_gives_a_new_customer(clock):
    accounts = FakeAccounts(honour_cookies=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(accounts)) as http:
        lc = LiveChatClient(
            http, accounts_url="http://a.test", client_id=CLIENT_ID, organization_id=ORGANIZATION_ID
        )
        identities = lc.customer_identities(clock=clock)
        first = await identities.cookie_grant()
        second = await identities.cookie_grant(first)
    assert second.customer_id != first.customer_id
    assert "redirect_uri" not in json.loads(accounts.requests[0].content)


async def test_cookies_are_kept_when_the_answer_sets_none(clock):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "dal:t2", "entity_id": "cust-9"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        lc = LiveChatClient(
            http, accounts_url="http://a.test", client_id=CLIENT_ID, organization_id=ORGANIZATION_ID
        )
        previous = CustomerSession.from_dict(
            {
                "customer_id": "cust-9",
                "access_token": "dal:t1",
                "expires_at": START.isoformat(),
                "cookies": {"__lc_cid": "a", "__lc_cst": "b"},
            }
        )
        renewed = await lc.customer_identities(clock=clock).cookie_grant(previous)
    assert renewed.cookies == {"__lc_cid": "a", "__lc_cst": "b"}
    assert renewed.expires_at == START + timedelta(seconds=28800)  # default 8 h


async def test_per_group_identity_path(lc, accounts, clock):
    await lc.customer_identities(clock=clock).cookie_grant(group_id=4)
    assert accounts.requests[0].url.path == f"/v2/customer/{ORGANIZATION_ID}/4/token"


async def test_ensure_fresh_keeps_a_valid_token(lc, accounts, clock):
    identities = lc.customer_identities(clock=clock, renew_margin_seconds=300)
    session = await identities.ensure_fresh()
    clock.now = START + timedelta(hours=7)
    assert await identities.ensure_fresh(session) is session
    assert len(accounts.requests) == 1


async def test_ensure_fresh_renews_within_the_margin_with_the_same_identity(lc, accounts, clock):
    identities = lc.customer_identities(clock=clock, renew_margin_seconds=300)
    session = await identities.ensure_fresh()
    clock.now = session.expires_at - timedelta(seconds=299)
    renewed = await identities.ensure_fresh(session)
    assert renewed is not session
    assert renewed.customer_id == session.customer_id
    assert renewed.expires_at == clock.now + timedelta(seconds=28800)
    assert accounts.requests[1].headers["Cookie"].startswith("__lc_cid=cid-cust-1")


async def test_ensure_fresh_renews_an_expired_token_restored_from_storage(lc, accounts, clock):
    identities = lc.customer_identities(clock=clock)
    stored = (await identities.ensure_fresh()).to_dict()
    clock.now = START + timedelta(days=3)
    renewed = await identities.ensure_fresh(
        CustomerSession.from_dict(json.loads(json.dumps(stored)))
    )
    assert renewed.customer_id == stored["customer_id"]
    assert renewed.access_token.get_secret_value() == "dal:token-2"


async def test_agent_token_grant_refuses_a_pat_before_sending(lc, accounts):
    with pytest.raises(CredentialsError, match="Personal Access Token"):
        await lc.customer_identities().agent_token_grant()
    assert accounts.requests == []


async def test_agent_token_grant_with_an_oauth_token(lc, accounts, clock):
    identities = lc.customer_identities(clock=clock)
    oauth = AgentCredentials.from_bearer("dal:oauth-agent")
    created = await identities.agent_token_grant(credentials=oauth)
    request = accounts.requests[0]
    assert request.headers["Authorization"] == "Bearer dal:oauth-agent"
    assert json.loads(request.content) == {
        "grant_type": "agent_token",
        "client_id": CLIENT_ID,
        "response_type": "token",
    }
    again = await identities.agent_token_grant(customer_id=created.customer_id, credentials=oauth)
    assert json.loads(accounts.requests[1].content)["entity_id"] == created.customer_id
    assert again.customer_id == created.customer_id
    assert again.grant == "agent_token"


async def test_agent_token_sessions_renew_by_entity_id(accounts, clock):
    async with httpx.AsyncClient(transport=httpx.MockTransport(accounts)) as http:
        lc = LiveChatClient(
            http,
            accounts_url="http://a.test",
            agent_credentials=AgentCredentials.from_bearer("dal:oauth-agent"),
            client_id=CLIENT_ID,
        )
        identities = lc.customer_identities(clock=clock)
        session = await identities.agent_token_grant()
        clock.now = session.expires_at
        renewed = await identities.ensure_fresh(session)
    assert renewed.customer_id == session.customer_id
    assert json.loads(accounts.requests[-1].content)["entity_id"] == session.customer_id


async def test_accounts_refusal_is_an_accounts_error(clock):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"oauth_exception": "invalid_request", "exception_description": "bad uri"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        lc = LiveChatClient(
            http, accounts_url="http://a.test", client_id=CLIENT_ID, organization_id=ORGANIZATION_ID
        )
        with pytest.raises(e.AccountsError) as caught:
            await lc.customer_identities(clock=clock).cookie_grant()
    assert caught.value.type == "invalid_request"
    assert not caught.value.retryable


async def test_grants_need_client_and_organization_ids(clock):
    async with httpx.AsyncClient(transport=httpx.MockTransport(FakeAccounts())) as http:
        with pytest.raises(CredentialsError):
            await (
                LiveChatClient(http, organization_id=ORGANIZATION_ID)
                .customer_identities(clock=clock)
                .cookie_grant()
            )
        with pytest.raises(CredentialsError):
            await (
                LiveChatClient(http, client_id=CLIENT_ID)
                .customer_identities(clock=clock)
                .cookie_grant()
            )


def test_session_round_trips_and_hides_secrets():
    session = CustomerSession.from_dict(
        {
            "customer_id": "cust-1",
            "access_token": "dal:very-secret-token",
            "expires_at": "2026-03-01T20:00:00Z",
            "cookies": {"__lc_cid": "cid-secret", "__lc_cst": "cst-secret"},
            "organization_id": ORGANIZATION_ID,
        }
    )
    assert CustomerSession.from_dict(session.to_dict()) == session
    assert session.expires_at == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    for text in (repr(session), str(session)):
        assert "very-secret-token" not in text
        assert "cst-secret" not in text
    assert session.authorization() == "Bearer dal:very-secret-token"


def test_naive_clock_is_refused():
    identities = LiveChatClient(httpx.AsyncClient()).customer_identities(
        clock=lambda: datetime(2026, 1, 1)
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        identities._now()
