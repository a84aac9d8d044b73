"""Every `CustomerApi` method against the simulator, as a cookie-grant customer."""

from __future__ import annotations

import pytest
from simulator_rig import ALICE, BOB, open_rig, sim_config

from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import file_event, message_event
from livechat_hitl.livechat.structures import FileEvent, MessageEvent, SystemMessageEvent


async def test_customer_start_chat_is_routed_and_carries_the_initial_events(rig, lc):
    session = await rig.new_customer(lc)
    started = await lc.customer(session).start_chat(
        group_ids=[0],
        events=[message_event("Hi, I need help", custom_id="c-1", visibility=None)],
        properties={"hitl": {"handoff_id": "h-9"}},
    )
    assert len(started.event_ids) == 1

    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert chat.thread.id == started.thread_id
    (event,) = chat.thread.events
    assert isinstance(event, MessageEvent)
    assert (event.id, event.author_id, event.custom_id, event.visibility) == (
        started.event_ids[0],
        session.customer_id,
        "c-1",
        "all",
    )
    customer = chat.customer()
    assert customer is not None
    assert customer.id == session.customer_id
    assert ALICE in {u.id for u in chat.agents() if u.present}  # customer chats are routed
    assert chat.properties["hitl"] == {"handoff_id": "h-9"}


async def test_customer_send_event_reaches_the_chat(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    started = await customer.start_chat()
    sent = await customer.send_event(
        started.chat_id, message_event("my order #12", custom_id="m-1", visibility=None)
    )
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    (event,) = chat.thread.events
    assert isinstance(event, MessageEvent)
    assert (event.id, event.text, event.author_id) == (
        sent.event_id,
        "my order #12",
        session.customer_id,
    )


async def test_customer_deactivate_chat_closes_the_thread_with_a_system_message(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    started = await customer.start_chat()
    await customer.deactivate_chat(started.chat_id)

    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert chat.thread.active is False
    closing = chat.thread.events[-1]
    assert isinstance(closing, SystemMessageEvent)
    assert closing.system_message_type == "manual_archived_customer"

    with pytest.raises(e.ChatInactiveError) as caught:
        await customer.send_event(started.chat_id, message_event("hello?", visibility=None))
    assert not caught.value.retryable
    late = await customer.send_event(
        started.chat_id,
        message_event("one more thing", visibility=None),
        attach_to_last_thread=True,
    )
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert (chat.thread.id, chat.thread.events[-1].id) == (started.thread_id, late.event_id)


async def test_customer_resume_chat_opens_a_new_thread(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    started = await customer.start_chat()
    await customer.deactivate_chat(started.chat_id)
    resumed = await customer.resume_chat(
        started.chat_id, events=[message_event("I'm back", visibility=None)]
    )
    assert resumed.thread_id != started.thread_id

    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert (chat.thread.id, chat.thread.active) == (resumed.thread_id, True)
    assert chat.thread.previous_thread_id == started.thread_id
    assert [ev.id for ev in chat.thread.events] == resumed.event_ids


async def test_customer_upload_file_serves_the_same_bytes(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    content = b"\x89PNG\r\n\x1a\n" + bytes(1000)
    uploaded = await customer.upload_file("screenshot.png", content, "image/png")
    served = await rig.http.get(uploaded.url)
    assert served.status_code == 200
    assert served.content == content

    started = await customer.start_chat()
    await customer.send_event(started.chat_id, file_event(uploaded.url, visibility=None))
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    (event,) = chat.thread.events
    assert isinstance(event, FileEvent)
    assert (event.name, event.size, event.author_id) == (
        "screenshot.png",
        len(content),
        session.customer_id,
    )


async def test_customer_update_customer_changes_get_customer(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    me = await customer.get_customer()
    assert (me.id, me.name) == (session.customer_id, None)

    await customer.update_customer(
        name="Grace", email="grace@example.com", session_fields=[{"plan": "pro"}]
    )
    me = await customer.get_customer()
    assert (me.name, me.email, me.session_fields) == (
        "Grace",
        "grace@example.com",
        [{"plan": "pro"}],
    )
    seen_by_agent = await lc.agent.get_customer(session.customer_id)
    assert (seen_by_agent.name, seen_by_agent.email) == ("Grace", "grace@example.com")
    with pytest.raises(ValueError, match="at least one field"):
        await customer.update_customer()


async def test_send_sneak_peek_only_to_the_customers_own_chat(rig, lc):
    session = await rig.new_customer(lc)
    customer = lc.customer(session)
    started = await customer.start_chat()
    await customer.send_sneak_peek(started.chat_id, "I am typ")

    stranger = lc.customer(await rig.new_customer(lc))
    with pytest.raises(e.NotFoundError):
        await stranger.send_sneak_peek(started.chat_id, "peeking")


async def test_list_group_statuses_follows_agent_availability():
    async with open_rig(sim_config(other_groups={3: "Night shift"}, agent_max_chats=1)) as rig:
        lc = rig.client()
        customer = lc.customer(await rig.new_customer(lc))
        assert await customer.list_group_statuses() == {0: "online", 3: "offline"}
        assert await customer.list_group_statuses([0]) == {0: "online"}

        await lc.customer(await rig.new_customer(lc)).start_chat()  # Alice: full
        await lc.customer(await rig.new_customer(lc)).start_chat()  # Bob: full
        assert await customer.list_group_statuses([0]) == {0: "online_for_queue"}

        for agent in (ALICE, BOB):
            rig.sim.set_agent_status(agent, "not_accepting_chats")
        assert await customer.list_group_statuses([0, 3, 99]) == {0: "offline", 3: "offline"}
        with pytest.raises(e.GroupsOfflineError):
            await customer.start_chat(group_ids=[0])
