"""Every error the simulator can produce reaches the client as its class, `retryable` right."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from pydantic import SecretStr
from simulator_rig import ALICE, BASE, BOB, Rig, open_rig, sim_config

from livechat_hitl.livechat import AgentCredentials, Api, LiveChatClient
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event
from livechat_hitl.livechat.wire import MAX_UPLOAD_BYTES


async def handed_over(rig: Rig, lc: LiveChatClient) -> str:
    """A chat the PAT's account started and handed to Alice (so it is no longer in it)."""
    session = await rig.new_customer(lc)
    started = await lc.agent.start_chat(users=[{"id": session.customer_id, "type": "customer"}])
    await lc.agent.transfer_chat(
        started.chat_id, target_type="group", target_ids=[0], ignore_agents_availability=True
    )
    return started.chat_id


# -- authentication and authorization ---------------------------------------------------


async def test_a_wrong_pat_is_an_authentication_error(rig):
    wrong = rig.client(AgentCredentials.from_pat(rig.config.account_id, "dal:not-the-pat"))
    with pytest.raises(e.AuthenticationError) as caught:
        await wrong.agent.list_routing_statuses()
    assert (caught.value.type, caught.value.retryable) == ("authentication", False)
    with pytest.raises(e.AuthenticationError):
        await wrong.configuration.list_groups()


async def test_a_pat_sent_as_bearer_is_refused(rig):
    # LiveChat's troubleshooting page: PATs only work with the Basic scheme.
    as_bearer = rig.client(AgentCredentials.from_bearer(rig.config.pat))
    with pytest.raises(e.AuthenticationError, match="Basic"):
        await as_bearer.agent.start_chat()
    assert rig.sim.world.chats == {}


async def test_an_unknown_customer_token_is_an_authentication_error(rig, lc):
    session = await rig.new_customer(lc)
    forged = replace(session, access_token=SecretStr("dal:forged-token"))
    with pytest.raises(e.AuthenticationError):
        await lc.customer(forged).get_customer()


async def test_a_requester_who_is_not_a_chat_user_is_not_authorized(rig, lc):
    chat_id = await handed_over(rig, lc)
    with pytest.raises(e.AuthorizationError, match="not a user of this chat") as caught:
        await lc.agent.send_event(chat_id, message_event("still here?"))
    assert not caught.value.retryable

    as_bob = lc.agent_as(AgentCredentials.from_bearer(rig.sim.issue_agent_token(BOB)))
    with pytest.raises(e.AuthorizationError):
        await as_bob.deactivate_chat(chat_id)
    with pytest.raises(e.AuthorizationError):
        await as_bob.transfer_chat(chat_id, target_type="agent", target_ids=[BOB])
    # ignore_requester_presence is what lets the gateway close a chat it handed over
    await lc.agent.deactivate_chat(chat_id, ignore_requester_presence=True)
    closed = await lc.agent.get_chat(chat_id)
    assert closed.thread is not None
    assert closed.thread.active is False


async def test_a_customer_call_for_another_organization_is_not_authorized(rig, lc):
    session = await rig.new_customer(lc)
    elsewhere = replace(session, organization_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(e.AuthorizationError):
        await lc.customer(elsewhere).get_customer()


# -- bad requests ---------------------------------------------------------------------------


async def test_a_bad_body_is_a_validation_error(lc):
    started = await lc.agent.start_chat()
    with pytest.raises(e.InvalidRequestError, match=r"event\.text") as caught:
        await lc.agent.send_event(started.chat_id, {"type": "message"})
    assert (caught.value.type, caught.value.retryable) == ("validation", False)
    with pytest.raises(e.InvalidRequestError):
        await lc.call(Api.AGENT, "start_chat", {"chat": "not an object"})
    with pytest.raises(e.InvalidRequestError, match=r"target\.ids"):
        await lc.agent.transfer_chat(started.chat_id, target_type="group", target_ids=["sales"])


async def test_unknown_chat_and_unknown_method_are_not_found(lc):
    with pytest.raises(e.NotFoundError) as caught:
        await lc.agent.get_chat("NOSUCHCHAT")
    assert (caught.value.type, caught.value.retryable) == ("not_found", False)
    with pytest.raises(e.NotFoundError):
        await lc.agent.get_customer("00000000-0000-4000-8000-000000000000")
    # Botpress's integration calls close_chat, which v3.x does not have.
    with pytest.raises(e.NotFoundError, match="close_chat"):
        await lc.call(Api.AGENT, "close_chat", {"id": "NOSUCHCHAT"})


async def test_an_unsupported_api_version_is_its_own_error(lc):
    with pytest.raises(e.UnsupportedVersionError):
        await lc.send("POST", f"{BASE}/v3.4/agent/action/list_chats", json_body={})


# -- chat state -----------------------------------------------------------------------------


async def test_sending_to_an_inactive_chat_is_chat_inactive(rig, lc):
    """Agent-chat-api: deactivating makes sending impossible; the error is chat_inactive.

    Whether the agent is still in the chat (it started it) or was taken out by a transfer
    before the close, the inactive chat is what LiveChat reports (see simulator/chats.py).
    """
    own = await lc.agent.start_chat()
    await lc.agent.deactivate_chat(own.chat_id)
    with pytest.raises(e.ChatInactiveError) as caught:
        await lc.agent.send_event(own.chat_id, message_event("too late"))
    assert (caught.value.type, caught.value.retryable) == ("chat_inactive", False)

    handed = await handed_over(rig, lc)
    rig.sim.close_chat(handed, ALICE)
    with pytest.raises(e.ChatInactiveError):
        await lc.agent.send_event(handed, message_event("too late"))
    with pytest.raises(e.ChatInactiveError):
        await lc.agent.deactivate_chat(handed, ignore_requester_presence=True)
    with pytest.raises(e.ChatInactiveError):
        await lc.agent.transfer_chat(handed, ignore_agents_availability=True)


async def test_a_second_customer_is_users_limit_reached(rig, lc):
    first, second = await rig.new_customer(lc), await rig.new_customer(lc)
    started = await lc.agent.start_chat(users=[{"id": first.customer_id, "type": "customer"}])
    with pytest.raises(e.UsersLimitReachedError) as caught:
        await lc.agent.add_user_to_chat(started.chat_id, second.customer_id, "customer")
    assert not caught.value.retryable
    with pytest.raises(e.UsersLimitReachedError):
        await lc.agent.start_chat(
            users=[
                {"id": first.customer_id, "type": "customer"},
                {"id": second.customer_id, "type": "customer"},
            ]
        )


async def test_an_upload_over_10_mb_is_entity_too_large(rig, lc):
    with pytest.raises(e.EntityTooLargeError) as caught:
        await lc.agent.upload_file("big.bin", bytes(11 * 1024 * 1024), "application/octet-stream")
    assert (caught.value.type, caught.value.retryable) == ("entity_too_large", False)
    at_limit = await lc.agent.upload_file("ok.bin", bytes(MAX_UPLOAD_BYTES), "application/pdf")
    assert (await rig.http.get(at_limit.url)).content == bytes(MAX_UPLOAD_BYTES)


# -- overload and outages -------------------------------------------------------------------


async def test_429_carries_the_retry_after_hint(rig, lc):
    rig.sim.inject_fault("429", method="send_event", retry_after=7)
    started = await lc.agent.start_chat()  # other methods are not throttled
    with pytest.raises(e.TooManyRequestsError) as caught:
        await lc.agent.send_event(started.chat_id, message_event("hi"))
    assert caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert (await lc.agent.send_event(started.chat_id, message_event("hi"))).event_id


@pytest.mark.parametrize(
    ("kind", "cls", "error_type"),
    [
        ("500", e.InternalError, "internal"),
        ("503", e.ServiceUnavailableError, "service_unavailable"),
    ],
)
async def test_server_failures_are_retryable(rig, lc, kind, cls, error_type):
    rig.sim.inject_fault(kind, count=2)
    for _ in range(2):
        with pytest.raises(cls) as caught:
            await lc.agent.list_routing_statuses()
        assert (caught.value.type, caught.value.retryable) == (error_type, True)
    assert await lc.agent.list_routing_statuses()


async def test_a_hanging_request_hits_the_clients_timeout(rig):
    rig.sim.inject_fault("hang", method="get_chat", hang_seconds=30)
    quick = rig.client(timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(e.LiveChatTransportError, match="timeout") as caught:
        await quick.agent.get_chat("ANYCHATID1")
    assert time.perf_counter() - started < 5
    assert caught.value.retryable
    assert (await quick.agent.list_chats()).found_chats == 0  # the client still works


@pytest.mark.parametrize("status", [400, 500])
async def test_the_client_branches_on_error_type_not_http_status(status):
    """LiveChat does not document statuses for v3.x errors: scramble them all."""
    config = sim_config()
    config.error_status = dict.fromkeys(config.error_status, status)
    async with open_rig(config) as rig:
        lc = rig.client()
        with pytest.raises(e.NotFoundError):
            await lc.agent.get_chat("NOSUCHCHAT")
        rig.sim.inject_fault("429", retry_after=3)
        with pytest.raises(e.TooManyRequestsError) as caught:
            await lc.agent.list_chats()
        assert caught.value.retry_after == 3.0
        started = await lc.agent.start_chat()
        with pytest.raises(e.InvalidRequestError) as invalid:
            await lc.agent.send_event(started.chat_id, {"type": "message"})
        assert not invalid.value.retryable
