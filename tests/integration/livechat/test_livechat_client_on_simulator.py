"""The LiveChat client drives the in-process simulator through the gateway's flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from livechat_hitl.livechat import AgentCredentials, LiveChatClient
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event, system_message_event
from livechat_hitl.simulator import SimulatorConfig, create_simulator

BASE = "http://sim.test"


@pytest.fixture(name="lc")
async def fixture_lc() -> AsyncIterator[LiveChatClient]:
    config = SimulatorConfig(
        seed=3,
        frozen_time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        base_url=BASE,
    )
    async with (
        create_simulator(config) as sim,
        httpx.AsyncClient(transport=httpx.ASGITransport(sim.app), base_url=BASE) as http,
    ):
        yield LiveChatClient(
            http,
            api_url=BASE,
            accounts_url=BASE,
            agent_credentials=AgentCredentials.from_agent_token(config.agent_token),
            client_id=config.client_id,
            organization_id=config.organization_id,
            redirect_uri="https://gateway.test",
        )


async def test_handoff_flow_against_the_simulator(lc):
    identities = lc.customer_identities()
    session = await identities.cookie_grant()
    again = await identities.cookie_grant(session)
    assert again.customer_id == session.customer_id  # the kept cookies name the same customer

    started = await lc.agent.start_chat(
        group_ids=[0], events=[system_message_event("User: hello", custom_id="t-1")]
    )
    await lc.agent.update_customer(session.customer_id, name="Ada", email="ada@example.com")
    await lc.agent.add_user_to_chat(
        started.chat_id, session.customer_id, "customer", ignore_requester_presence=True
    )
    await lc.agent.transfer_chat(
        started.chat_id, target_type="group", target_ids=[0], ignore_agents_availability=True
    )
    sent = await lc.customer(again).send_event(
        started.chat_id, message_event("I need a human", custom_id="m-1", visibility=None)
    )
    assert sent.event_id

    chat = await lc.agent.get_chat(started.chat_id)
    customer = chat.customer()
    assert customer is not None
    assert (customer.id, customer.name) == (session.customer_id, "Ada")
    assert chat.thread is not None
    assert "I need a human" in [getattr(ev, "text", None) for ev in chat.thread.events]

    await lc.agent.deactivate_chat(started.chat_id, ignore_requester_presence=True)
    # LIVECHAT-API §2.3 infers `chat_inactive` here; the simulator currently answers
    # `authorization` (requester no longer a chat user). Either way: permanent.
    with pytest.raises(e.LiveChatError) as caught:
        await lc.agent.send_event(started.chat_id, message_event("too late"))
    assert not caught.value.retryable


async def test_bad_token_is_an_authentication_error(lc):
    bad = lc.agent_as(AgentCredentials.from_pat("nobody", "dal:wrong"))
    with pytest.raises(e.AuthenticationError):
        await bad.list_routing_statuses()


async def test_configuration_calls(lc):
    webhook_id = await lc.configuration.register_webhook(
        "incoming_event",
        "http://gw.test/livechat/webhooks",
        "s3cret",
        filters={"author_type": "agent"},
    )
    assert [w.id for w in await lc.configuration.list_webhooks()] == [webhook_id]
    await lc.configuration.enable_license_webhooks()
    assert await lc.configuration.get_license_webhooks_state() is True
    assert 0 in [g.id for g in await lc.configuration.list_groups()]
    await lc.configuration.unregister_webhook(webhook_id)
    assert await lc.configuration.list_webhooks() == []
