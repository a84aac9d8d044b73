"""`CustomerIdentities` on the simulator's accounts API: reuse, renewal, agent_token grant."""

from __future__ import annotations

from datetime import timedelta

import pytest
from simulator_rig import BOB, REDIRECT_URI, open_rig, sim_config

from livechat_hitl.livechat import AgentCredentials, CustomerSession
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event

EIGHT_HOURS = 8 * 3600


async def test_the_same_kept_cookies_name_the_same_customer(rig, lc):
    identities = rig.identities(lc)
    ada = await identities.cookie_grant()
    assert set(ada.cookies) == {"__lc_cid", "__lc_cst"}
    assert ada.expires_at == rig.sim.clock.now() + timedelta(seconds=EIGHT_HOURS)

    # The session is persisted between requests (and processes) as a dict.
    kept = CustomerSession.from_dict(ada.to_dict())
    again = await identities.cookie_grant(kept)
    assert again.customer_id == ada.customer_id
    assert again.access_token.get_secret_value() != ada.access_token.get_secret_value()

    grace = await identities.cookie_grant()
    assert grace.customer_id != ada.customer_id
    assert (await lc.customer(again).get_customer()).id == ada.customer_id
    assert (await lc.customer(grace).get_customer()).id == grace.customer_id
    # One user's cookies never ride along on another user's grant.
    (first, _, third) = rig.headers_of("customer/token")
    assert "cookie" not in first
    assert "cookie" not in third


async def test_the_cookie_grant_for_a_group(rig, lc):
    session = await rig.identities(lc).cookie_grant(group_id=0)
    assert (await lc.customer(session).get_customer()).id == session.customer_id
    assert rig.sent[-2].url.path == f"/v2/customer/{rig.config.organization_id}/0/token"


async def test_ensure_fresh_renews_after_expiry_for_the_same_customer(rig, lc):
    identities = rig.identities(lc)
    session = await identities.ensure_fresh()
    assert await identities.ensure_fresh(session) is session  # still good: no grant
    grants = len(rig.headers_of("customer/token"))

    rig.sim.clock.advance(EIGHT_HOURS + 1)
    with pytest.raises(e.AuthenticationError):
        await lc.customer(session).get_customer()  # LiveChat refuses the expired token

    renewed = await identities.ensure_fresh(session)
    assert len(rig.headers_of("customer/token")) == grants + 1
    assert renewed.customer_id == session.customer_id
    assert renewed.access_token.get_secret_value() != session.access_token.get_secret_value()
    assert renewed.expires_at > rig.sim.clock.now()
    assert (await lc.customer(renewed).get_customer()).id == session.customer_id
    with pytest.raises(e.AuthenticationError):
        await lc.customer(session).get_customer()


async def test_ensure_fresh_renews_within_the_margin_before_expiry(rig, lc):
    identities = rig.identities(lc)
    session = await identities.ensure_fresh()
    rig.sim.clock.advance(EIGHT_HOURS - 60)  # inside the 5 minute margin
    renewed = await identities.ensure_fresh(session)
    assert renewed.customer_id == session.customer_id
    assert renewed.access_token != session.access_token
    started = await lc.customer(renewed).start_chat()
    assert (await lc.agent.get_chat(started.chat_id)).customer() is not None


async def test_agent_token_grant_with_an_oauth_agent_token(rig, lc):
    oauth = AgentCredentials.from_bearer(rig.sim.issue_agent_token(BOB))
    identities = rig.identities(lc)
    created = await identities.agent_token_grant(credentials=oauth)
    assert created.grant == "agent_token"
    assert created.cookies == {}
    customer = lc.customer(created)
    started = await customer.start_chat()
    await customer.send_event(started.chat_id, message_event("via agent_token"))

    again = await identities.agent_token_grant(customer_id=created.customer_id, credentials=oauth)
    assert again.customer_id == created.customer_id
    assert again.access_token != created.access_token


async def test_agent_token_session_renews_by_entity_id():
    async with open_rig(sim_config()) as rig:
        oauth = AgentCredentials.from_bearer(rig.sim.issue_agent_token(BOB))
        lc = rig.client(oauth)  # the client's own agent credentials are the OAuth token
        identities = rig.identities(lc)
        session = await identities.agent_token_grant()
        # Within the renewal margin (the OAuth agent token itself lives 8 h too).
        rig.sim.clock.advance(EIGHT_HOURS - 60)
        renewed = await identities.ensure_fresh(session)
        assert renewed is not session
        assert (renewed.customer_id, renewed.grant) == (session.customer_id, "agent_token")
        assert (await lc.customer(renewed).get_customer()).id == session.customer_id


async def test_agent_token_grant_refuses_a_pat_before_sending(rig, lc):
    with pytest.raises(e.CredentialsError, match="Personal Access Token"):
        await rig.identities(lc).agent_token_grant()
    assert rig.headers_of("customer/token") == []


async def test_the_accounts_api_refuses_a_pat_and_unknown_clients(rig, lc):
    # What the client-side check saves us from: LiveChat refuses PATs for this grant.
    with pytest.raises(e.AccountsError) as caught:
        await lc.send(
            "POST",
            f"{lc.accounts_url}/v2/customer/token",
            headers={"Authorization": lc.agent_credentials.authorization()},
            json_body={"grant_type": "agent_token", "client_id": lc.client_id},
        )
    assert (caught.value.type, caught.value.retryable) == ("access_denied", False)

    lc.client_id = "ffffffffffffffffffffffffffffffff"
    with pytest.raises(e.AccountsError) as caught:
        await rig.identities(lc).cookie_grant()
    assert caught.value.type == "invalid_client"


async def test_an_unlisted_redirect_uri_is_refused():
    async with open_rig(sim_config(redirect_uris=["https://elsewhere.test"])) as rig:
        lc = rig.client()
        assert lc.redirect_uri == REDIRECT_URI
        with pytest.raises(e.AccountsError, match="whitelisted"):
            await rig.identities(lc).cookie_grant()
