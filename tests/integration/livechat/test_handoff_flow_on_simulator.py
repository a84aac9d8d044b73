"""The gateway's LiveChat flow (DESIGN §3), start to close, with the real client."""

from __future__ import annotations

import pytest
from simulator_rig import ALICE

from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import message_event, system_message_event


async def test_handoff_flow_against_the_simulator(rig, lc):
    identities = rig.identities(lc)
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
    reply = rig.sim.agent_reply(ALICE, started.chat_id, "Hi, Alice here")

    chat = await lc.agent.get_chat(started.chat_id)
    customer = chat.customer()
    assert customer is not None
    assert (customer.id, customer.name) == (session.customer_id, "Ada")
    assert [(a.id, a.name) for a in chat.agents() if a.present] == [(ALICE, "Alice Agent")]
    assert chat.thread is not None
    assert [ev.id for ev in chat.thread.events][-2:] == [sent.event_id, reply["id"]]

    await lc.agent.deactivate_chat(started.chat_id, ignore_requester_presence=True)
    # The chat is closed: LiveChat answers chat_inactive (agent-chat-api send_event errors),
    # even though the transfer had already taken the gateway's account out of the chat.
    with pytest.raises(e.ChatInactiveError) as caught:
        await lc.agent.send_event(started.chat_id, message_event("too late"))
    assert not caught.value.retryable
    with pytest.raises(e.ChatInactiveError):
        await lc.customer(again).send_event(started.chat_id, message_event("hello?"))
