"""Every `ConfigurationApi` method against the simulator (webhooks, groups, bots)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from simulator_rig import ALICE, BASE, BOB, FROZEN, Rig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livechat_hitl.livechat import AgentCredentials, LiveChatClient
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event
from livechat_hitl.livechat.webhooks import WebhookEnvelope
from livechat_hitl.simulator import SimulatorConfig, create_simulator

HOOK = "http://gateway.test/livechat/webhooks"


async def test_register_list_unregister_webhooks_round_trip(lc):
    incoming = await lc.configuration.register_webhook(
        "incoming_event",
        HOOK,
        "s3cret",
        description="agent messages",
        filters={"author_type": "agent"},
        additional_data=["chat_properties"],
    )
    closed = await lc.configuration.register_webhook("chat_deactivated", HOOK, "s3cret")
    listed = {w.id: w for w in await lc.configuration.list_webhooks()}
    assert set(listed) == {incoming, closed}
    hook = listed[incoming]
    assert (hook.url, hook.action, hook.type, hook.description) == (
        HOOK,
        "incoming_event",
        "license",
        "agent messages",
    )
    assert hook.filters == {"author_type": "agent"}
    assert hook.additional_data == ["chat_properties"]
    assert hook.owner_client_id == lc.client_id

    await lc.configuration.unregister_webhook(incoming)
    assert [w.id for w in await lc.configuration.list_webhooks()] == [closed]
    with pytest.raises(e.NotFoundError):
        await lc.configuration.unregister_webhook(incoming)


async def test_license_webhooks_state_follows_enable(lc):
    assert await lc.configuration.get_license_webhooks_state() is False
    await lc.configuration.enable_license_webhooks()
    assert await lc.configuration.get_license_webhooks_state() is True


async def test_a_registered_webhook_delivers_only_what_its_filter_lets_through():
    """The round trip a gateway relies on: register, enable, and agent messages arrive."""
    bodies: list[dict[str, Any]] = []

    async def receive(request: Request) -> Response:
        bodies.append(await request.json())
        return JSONResponse({})

    receiver = Starlette(routes=[Route("/livechat/webhooks", receive, methods=["POST"])])
    config = SimulatorConfig(seed=5, frozen_time=FROZEN, base_url=BASE)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(receiver)) as to_gateway,
        create_simulator(config, webhook_http=to_gateway) as sim,
        httpx.AsyncClient(transport=httpx.ASGITransport(sim.app), base_url=BASE) as http,
    ):
        lc = Rig(sim, http).client()
        webhook_id = await lc.configuration.register_webhook(
            "incoming_event", HOOK, "s3cret", filters={"author_type": "agent"}
        )
        await lc.configuration.enable_license_webhooks()
        session = await Rig(sim, http).new_customer(lc)
        started = await lc.customer(session).start_chat()
        await lc.customer(session).send_event(
            started.chat_id, message_event("from the customer", visibility=None)
        )
        sent = sim.agent_reply(ALICE, started.chat_id, "from the agent")
        await sim.drain(5)

    (body,) = bodies
    envelope = WebhookEnvelope.model_validate(body)
    assert (envelope.webhook_id, envelope.action) == (webhook_id, "incoming_event")
    assert envelope.secret_key == "s3cret"
    assert body["payload"]["event"]["id"] == sent["id"]
    assert body["payload"]["event"]["author_id"] == ALICE


async def test_list_groups_and_get_group(rig, lc):
    rig.sim.set_agent_status(BOB, "not_accepting_chats")
    groups = await lc.configuration.list_groups(fields=["routing_status", "agent_priorities"])
    (general,) = groups
    assert (general.id, general.name, general.language_code) == (0, "General", "en")
    assert general.routing_status == "accepting_chats"
    assert set(general.agent_priorities) == {rig.api_agent, ALICE, BOB}
    bare = await lc.configuration.list_groups()
    assert bare[0].routing_status is None

    rig.sim.set_agent_status(ALICE, "not_accepting_chats")
    group = await lc.configuration.get_group(0)
    assert (group.id, group.routing_status) == (0, "offline")
    with pytest.raises(e.GroupNotFoundError):
        await lc.configuration.get_group(42)


async def test_create_bot_list_bots_and_issue_a_usable_bot_token(rig, lc):
    created = await lc.configuration.create_bot(
        "Triage bot", max_chats_count=20, job_title="Bot", groups=[{"id": 0, "priority": "first"}]
    )
    assert isinstance(created.secret, SecretStr)
    bots = await lc.configuration.list_bots()
    assert [(b.id, b.name) for b in bots] == [(created.id, "Triage bot")]

    token = await lc.configuration.issue_bot_token(created.id, created.secret)
    # issue_bot_token goes out with no Authorization header (LIVECHAT-API §1.3).
    (headers,) = rig.headers_of("issue_bot_token")
    assert "authorization" not in headers

    as_bot = lc.agent_as(AgentCredentials.from_bearer(token.get_secret_value()))
    statuses = {s.agent_id: s.status for s in await as_bot.list_routing_statuses()}
    assert statuses[created.id] == "offline"  # a new bot is offline until it sets a status
    started = await as_bot.start_chat()
    chat = await lc.agent.get_chat(started.chat_id)
    assert [u.id for u in chat.agents()] == [created.id]

    with pytest.raises(e.AuthenticationError):
        await lc.configuration.issue_bot_token(created.id, "not-the-secret")


async def test_configuration_calls_need_an_owner_client_id(rig):
    lc = LiveChatClient(
        rig.http,
        api_url=BASE,
        agent_credentials=AgentCredentials.from_agent_token(rig.config.agent_token),
    )
    with pytest.raises(e.CredentialsError):
        await lc.configuration.list_webhooks()
    assert rig.sent == []  # refused before anything went out
