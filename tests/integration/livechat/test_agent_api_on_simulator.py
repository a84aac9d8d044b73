"""Every `AgentApi` method against the simulator: typed answers with the right content."""

from __future__ import annotations

import pytest
from simulator_rig import ALICE, BOB, Rig, open_rig, sim_config

from livechat_hitl.livechat import AgentCredentials, LiveChatClient
from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.events import (
    custom_event,
    file_event,
    message_event,
    system_message_event,
)
from livechat_hitl.livechat.structures import (
    Agent,
    CustomEvent,
    FileEvent,
    MessageEvent,
    SystemMessageEvent,
)


async def started_with_customer(rig: Rig, lc: LiveChatClient) -> tuple[str, str]:
    """An agent-started chat with a cookie-grant customer in it: (chat id, customer id)."""
    session = await rig.new_customer(lc)
    started = await lc.agent.start_chat(
        group_ids=[0], users=[{"id": session.customer_id, "type": "customer"}]
    )
    return started.chat_id, session.customer_id


def present_ids(chat: object) -> set[str]:
    users = getattr(chat, "users", [])
    return {u.id for u in users if getattr(u, "present", False)}


async def test_start_chat_appears_in_get_chat_with_its_initial_events(rig, lc):
    started = await lc.agent.start_chat(
        group_ids=[0],
        events=[
            system_message_event("User: my card is stuck", custom_id="t-1"),
            message_event("Card issue", custom_id="t-2"),
        ],
        properties={"hitl": {"handoff_id": "h-1"}},
        thread_properties={"hitl": {"attempt": 1}},
    )
    assert len(started.event_ids) == 2

    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.id == started.chat_id
    assert chat.thread is not None
    assert (chat.thread.id, chat.thread.active) == (started.thread_id, True)
    assert [ev.id for ev in chat.thread.events] == started.event_ids
    note, title = chat.thread.events
    assert isinstance(note, SystemMessageEvent)
    assert (note.text, note.custom_id, note.visibility) == (
        "User: my card is stuck",
        "t-1",
        "agents",
    )
    assert isinstance(title, MessageEvent)
    assert (title.text, title.custom_id, title.author_id) == ("Card issue", "t-2", rig.api_agent)
    assert chat.properties["hitl"] == {"handoff_id": "h-1"}
    assert chat.thread.properties == {"hitl": {"attempt": 1}}
    assert chat.access is not None
    assert chat.access.group_ids == [0]
    assert [(u.id, type(u)) for u in chat.users] == [(rig.api_agent, Agent)]


async def test_get_chat_of_an_earlier_thread(lc):
    started = await lc.agent.start_chat(events=[message_event("first")])
    await lc.agent.deactivate_chat(started.chat_id)
    resumed = await lc.agent.resume_chat(started.chat_id, events=[message_event("second")])

    latest = await lc.agent.get_chat(started.chat_id)
    earlier = await lc.agent.get_chat(started.chat_id, thread_id=started.thread_id)
    assert latest.thread is not None
    assert earlier.thread is not None
    assert latest.thread.id == resumed.thread_id
    assert [getattr(ev, "text", None) for ev in earlier.thread.events] == ["first"]
    assert earlier.thread.active is False


async def test_list_chats_pages_through_every_chat_and_filters_active(lc):
    ids = [(await lc.agent.start_chat()).chat_id for _ in range(3)]
    await lc.agent.deactivate_chat(ids[0])

    first = await lc.agent.list_chats(limit=2, sort_order="asc")
    assert first.found_chats == 3
    assert len(first.chats_summary) == 2
    assert first.next_page_id is not None
    second = await lc.agent.list_chats(page_id=first.next_page_id)
    assert second.next_page_id is None
    assert second.previous_page_id is not None
    listed = [c["id"] for c in first.chats_summary + second.chats_summary]
    assert sorted(listed) == sorted(ids)

    inactive = await lc.agent.list_chats(filters={"active": False})
    assert [c["id"] for c in inactive.chats_summary] == [ids[0]]
    assert inactive.chats_summary[0]["last_thread_summary"]["active"] is False


async def test_deactivate_then_resume_opens_a_linked_active_thread(lc):
    started = await lc.agent.start_chat()
    await lc.agent.deactivate_chat(started.chat_id)
    closed = await lc.agent.get_chat(started.chat_id)
    assert closed.thread is not None
    assert closed.thread.active is False

    resumed = await lc.agent.resume_chat(
        started.chat_id, events=[message_event("back again", custom_id="r-1")]
    )
    assert resumed.thread_id != started.thread_id
    assert len(resumed.event_ids) == 1
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert (chat.thread.id, chat.thread.active) == (resumed.thread_id, True)
    assert chat.thread.previous_thread_id == started.thread_id
    assert [ev.id for ev in chat.thread.events] == resumed.event_ids


async def test_transfer_to_a_group_assigns_the_least_busy_accepting_agent(rig, lc):
    chat_id, customer_id = await started_with_customer(rig, lc)
    await lc.agent.transfer_chat(
        chat_id, target_type="group", target_ids=[0], ignore_agents_availability=True
    )
    chat = await lc.agent.get_chat(chat_id)
    # The PAT's account hands the chat over; the first accepting human agent takes it.
    assert present_ids(chat) == {customer_id, ALICE}
    assert chat.thread is not None
    assert chat.thread.queue is None


async def test_transfer_to_a_group_queues_while_nobody_accepts(rig, lc):
    for agent in (ALICE, BOB):
        rig.sim.set_agent_status(agent, "not_accepting_chats")
    chat_id, customer_id = await started_with_customer(rig, lc)
    with pytest.raises(e.InvalidRequestError, match="Cannot assign any agent"):
        await lc.agent.transfer_chat(chat_id, target_type="group", target_ids=[0])

    await lc.agent.transfer_chat(
        chat_id, target_type="group", target_ids=[0], ignore_agents_availability=True
    )
    queued = await lc.agent.get_chat(chat_id)
    assert queued.thread is not None
    assert queued.thread.queue is not None
    assert queued.thread.queue.position == 1
    assert present_ids(queued) == {customer_id}

    rig.sim.set_agent_status(BOB, "accepting_chats")  # the router takes the queue
    assigned = await lc.agent.get_chat(chat_id)
    assert assigned.thread is not None
    assert assigned.thread.queue is None
    assert present_ids(assigned) == {customer_id, BOB}


async def test_transfer_to_an_agent(rig, lc):
    chat_id, _ = await started_with_customer(rig, lc)
    await lc.agent.transfer_chat(chat_id, target_type="agent", target_ids=[BOB])
    chat = await lc.agent.get_chat(chat_id)
    assert BOB in present_ids(chat)
    assert rig.api_agent not in present_ids(chat)


async def test_add_and_remove_an_agent(rig, lc):
    chat_id, _ = await started_with_customer(rig, lc)
    await lc.agent.add_user_to_chat(chat_id, BOB, "agent", visibility="agents")
    chat = await lc.agent.get_chat(chat_id)
    bob = chat.user(BOB)
    assert isinstance(bob, Agent)
    assert (bob.present, bob.visibility, bob.name) == (True, "agents", "Bob Agent")

    await lc.agent.remove_user_from_chat(chat_id, BOB, "agent")
    chat = await lc.agent.get_chat(chat_id)
    assert BOB not in present_ids(chat)
    assert rig.api_agent in present_ids(chat)


async def test_add_the_customer_to_a_chat(rig, lc):
    session = await rig.new_customer(lc)
    started = await lc.agent.start_chat()
    await lc.agent.add_user_to_chat(started.chat_id, session.customer_id, "customer")
    chat = await lc.agent.get_chat(started.chat_id)
    customer = chat.customer()
    assert customer is not None
    assert (customer.id, customer.present) == (session.customer_id, True)


async def test_send_event_is_stored_with_author_and_custom_id(rig, lc):
    started = await lc.agent.start_chat()
    sent = await lc.agent.send_event(
        started.chat_id, message_event("Hello from the bot", custom_id="o-1")
    )
    noted = await lc.agent.send_event(started.chat_id, custom_event({"k": [1, 2]}, custom_id="o-2"))
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    message, custom = chat.thread.events
    assert isinstance(message, MessageEvent)
    assert (message.id, message.text, message.custom_id) == (
        sent.event_id,
        "Hello from the bot",
        "o-1",
    )
    assert message.author_id == rig.api_agent
    assert isinstance(custom, CustomEvent)
    assert (custom.id, custom.content, custom.visibility) == (
        noted.event_id,
        {"k": [1, 2]},
        "agents",
    )


async def test_upload_file_serves_the_same_bytes_and_a_file_event_describes_it(rig, lc):
    content = bytes(range(256)) * 8
    uploaded = await lc.agent.upload_file("receipt.pdf", content, "application/pdf")
    served = await rig.http.get(uploaded.url)
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["content-type"].startswith("application/pdf")

    started = await lc.agent.start_chat()
    await lc.agent.send_event(started.chat_id, file_event(uploaded.url, custom_id="f-1"))
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    (event,) = chat.thread.events
    assert isinstance(event, FileEvent)
    assert (event.name, event.size, event.content_type, event.url) == (
        "receipt.pdf",
        len(content),
        "application/pdf",
        uploaded.url,
    )


async def test_send_typing_indicator_needs_an_active_chat(lc):
    started = await lc.agent.start_chat()
    await lc.agent.send_typing_indicator(started.chat_id, True, visibility="all")
    await lc.agent.send_typing_indicator(started.chat_id, False)
    await lc.agent.deactivate_chat(started.chat_id)
    with pytest.raises(e.ChatInactiveError):
        await lc.agent.send_typing_indicator(started.chat_id, True)


async def test_update_chat_properties_is_visible_in_get_chat(lc):
    started = await lc.agent.start_chat(properties={"hitl": {"handoff_id": "h-1"}})
    await lc.agent.update_chat_properties(
        started.chat_id, {"hitl": {"state": "queued"}, "crm": {"ticket": 42}}
    )
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.properties["hitl"] == {"handoff_id": "h-1", "state": "queued"}
    assert chat.properties["crm"] == {"ticket": 42}


async def test_tag_thread_is_visible_in_the_threads_tags(lc):
    started = await lc.agent.start_chat()
    for tag in ("handoff", "Handoff", "handoff"):  # case-sensitive, no duplicates
        await lc.agent.tag_thread(started.chat_id, started.thread_id, tag)
    chat = await lc.agent.get_chat(started.chat_id)
    assert chat.thread is not None
    assert chat.thread.tags == ["handoff", "Handoff"]


async def test_update_customer_changes_what_get_customer_returns(rig, lc):
    session = await rig.new_customer(lc)
    before = await lc.agent.get_customer(session.customer_id)
    assert (before.id, before.name, before.email) == (session.customer_id, None, None)

    await lc.agent.update_customer(
        session.customer_id,
        name="Ada Lovelace",
        email="ada@example.com",
        avatar="https://example.com/ada.png",
        phone_number="+441234567890",
        session_fields=[{"handoff_id": "h-1"}],
    )
    after = await lc.agent.get_customer(session.customer_id)
    assert (after.name, after.email, after.avatar, after.phone_number) == (
        "Ada Lovelace",
        "ada@example.com",
        "https://example.com/ada.png",
        "+441234567890",
    )
    assert after.session_fields == [{"handoff_id": "h-1"}]


async def test_list_routing_statuses_reflects_status_changes_and_group_filter():
    async with open_rig(sim_config(other_groups={7: "Billing"})) as rig:
        lc = rig.client()
        rig.sim.add_agent("carol@sandbox.example", "Carol", group_ids=[7])
        statuses = {s.agent_id: s.status for s in await lc.agent.list_routing_statuses()}
        assert statuses == {
            rig.api_agent: "not_accepting_chats",
            ALICE: "accepting_chats",
            BOB: "accepting_chats",
            "carol@sandbox.example": "accepting_chats",
        }
        rig.sim.set_agent_status("carol@sandbox.example", "not_accepting_chats")
        billing = await lc.agent.list_routing_statuses(group_ids=[7])
        assert [(s.agent_id, s.status) for s in billing] == [
            ("carol@sandbox.example", "not_accepting_chats")
        ]


async def test_list_agents_for_transfer_names_accepting_agents_not_in_the_chat(rig, lc):
    chat_id, _ = await started_with_customer(rig, lc)
    await lc.agent.transfer_chat(
        chat_id, target_type="group", target_ids=[0], ignore_agents_availability=True
    )
    candidates = await lc.agent.list_agents_for_transfer(chat_id)
    assert [(c.agent_id, c.total_active_chats) for c in candidates] == [(BOB, 0)]

    second, _ = await started_with_customer(rig, lc)
    await lc.agent.transfer_chat(second, target_type="agent", target_ids=[BOB])
    candidates = await lc.agent.list_agents_for_transfer(chat_id)
    assert [(c.agent_id, c.total_active_chats) for c in candidates] == [(BOB, 1)]


async def test_a_bot_token_acts_as_the_bot_on_the_agent_api(rig, lc):
    bot = await lc.configuration.create_bot("Triage bot", max_chats_count=10)
    token = await lc.configuration.issue_bot_token(bot.id, bot.secret)
    as_bot = lc.agent_as(AgentCredentials.from_bearer(token.get_secret_value()))

    started = await as_bot.start_chat(events=[message_event("Hi, I am the bot")])
    chat = await as_bot.get_chat(started.chat_id)
    assert chat.thread is not None
    (event,) = chat.thread.events
    assert event.author_id == bot.id
    assert [u.id for u in chat.agents()] == [bot.id]
