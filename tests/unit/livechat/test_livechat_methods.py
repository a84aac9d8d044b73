"""Each typed method sends the documented body to the documented path and reads the answer."""

from __future__ import annotations

import pytest
from livechat_fakes import CLIENT_ID, ORGANIZATION_ID
from pydantic import SecretStr

from livechat_hitl.livechat import AgentCredentials, CustomerSession, errors
from livechat_hitl.livechat.events import (
    custom_event,
    file_event,
    message_event,
    system_message_event,
)
from livechat_hitl.livechat.structures import Agent, Customer, MessageEvent

AGENT = "/v3.6/agent/action/"
CUSTOMER = "/v3.6/customer/action/"
CONFIG = "/v3.6/configuration/action/"


async def test_start_chat_with_group_transcript_and_customer(client, fake):
    fake.on(AGENT + "start_chat", {"chat_id": "PJ0MRSHTDG", "thread_id": "K600PKZON8"})
    events = [system_message_event("User: hi", custom_id="t-1")]
    started = await client.agent.start_chat(
        group_ids=[7],
        users=[{"id": "cust-1", "type": "customer"}],
        events=events,
        properties={"hitl": {"handoff_id": "h1"}},
        continuous=True,
    )
    assert (started.chat_id, started.thread_id, started.event_ids) == (
        "PJ0MRSHTDG",
        "K600PKZON8",
        [],
    )
    assert fake.last.url.path == AGENT + "start_chat"
    assert fake.body() == {
        "chat": {
            "access": {"group_ids": [7]},
            "users": [{"id": "cust-1", "type": "customer"}],
            "properties": {"hitl": {"handoff_id": "h1"}},
            "thread": {
                "events": [
                    {
                        "type": "system_message",
                        "text": "User: hi",
                        "system_message_type": "custom",
                        "custom_id": "t-1",
                        "visibility": "agents",
                    }
                ]
            },
        },
        "continuous": True,
    }


async def test_start_chat_without_arguments_sends_an_empty_body(client, fake):
    fake.on(AGENT + "start_chat", {"chat_id": "C", "thread_id": "T", "event_ids": ["T_1"]})
    started = await client.agent.start_chat()
    assert fake.body() == {}
    assert started.event_ids == ["T_1"]


async def test_resume_chat(client, fake):
    fake.on(AGENT + "resume_chat", {"thread_id": "T2"})
    resumed = await client.agent.resume_chat("C", group_ids=[0], active=True)
    assert resumed.thread_id == "T2"
    assert fake.body() == {"chat": {"id": "C", "access": {"group_ids": [0]}}, "active": True}


async def test_get_chat_parses_users_and_thread(client, fake):
    fake.on(
        AGENT + "get_chat",
        {
            "id": "C",
            "thread": {
                "id": "T",
                "active": True,
                "events": [{"id": "T_1", "type": "message", "text": "hi"}],
            },
            "users": [
                {"id": "agent@x.com", "type": "agent", "name": "Ann", "avatar": "a.png"},
                {"id": "cust-1", "type": "customer", "name": "Ada"},
            ],
        },
    )
    chat = await client.agent.get_chat("C", thread_id="T")
    assert fake.body() == {"chat_id": "C", "thread_id": "T"}
    assert [a.id for a in chat.agents()] == ["agent@x.com"]
    assert isinstance(chat.customer(), Customer)
    assert chat.thread is not None
    assert isinstance(chat.thread.events[0], MessageEvent)


async def test_get_chat_without_thread_id_omits_it(client, fake):
    fake.on(AGENT + "get_chat", {"id": "C"})
    await client.agent.get_chat("C")
    assert fake.body() == {"chat_id": "C"}


async def test_list_chats_first_page_and_next_page(client, fake):
    fake.on(
        AGENT + "list_chats",
        {"chats_summary": [{"id": "C"}], "found_chats": 1, "next_page_id": "p2"},
    )
    page = await client.agent.list_chats(filters={"active": True}, limit=5)
    assert fake.body() == {"filters": {"active": True}, "limit": 5}
    assert page.next_page_id == "p2"
    await client.agent.list_chats(page_id="p2", limit=5)
    assert fake.body() == {"page_id": "p2"}  # page_id must travel alone


async def test_deactivate_chat(client, fake):
    await client.agent.deactivate_chat("C", ignore_requester_presence=True)
    assert fake.last.url.path == AGENT + "deactivate_chat"
    assert fake.body() == {"id": "C", "ignore_requester_presence": True}


async def test_transfer_chat_to_group_queueing_allowed(client, fake):
    await client.agent.transfer_chat(
        "C", target_type="group", target_ids=[19], ignore_agents_availability=True
    )
    assert fake.last.url.path == AGENT + "transfer_chat"
    assert fake.body() == {
        "id": "C",
        "target": {"type": "group", "ids": [19]},
        "ignore_agents_availability": True,
    }


async def test_transfer_chat_without_target(client, fake):
    await client.agent.transfer_chat("C")
    assert fake.body() == {"id": "C"}


async def test_add_and_remove_users(client, fake):
    await client.agent.add_user_to_chat("C", "cust-1", "customer", ignore_requester_presence=True)
    assert fake.last.url.path == AGENT + "add_user_to_chat"
    assert fake.body() == {
        "chat_id": "C",
        "user_id": "cust-1",
        "user_type": "customer",
        "visibility": "all",
        "ignore_requester_presence": True,
    }
    await client.agent.remove_user_from_chat("C", "agent@x.com")
    assert fake.last.url.path == AGENT + "remove_user_from_chat"
    assert fake.body() == {"chat_id": "C", "user_id": "agent@x.com", "user_type": "agent"}


async def test_send_event_with_custom_id(client, fake):
    fake.on(AGENT + "send_event", {"event_id": "K600PKZON8_3"})
    sent = await client.agent.send_event("C", message_event("hello", custom_id="out-1"))
    assert sent.event_id == "K600PKZON8_3"
    assert fake.body() == {
        "chat_id": "C",
        "event": {"type": "message", "text": "hello", "custom_id": "out-1", "visibility": "all"},
    }


def test_event_builders():
    assert file_event("https://cdn/x.png", alternative_text="x") == {
        "type": "file",
        "url": "https://cdn/x.png",
        "alternative_text": "x",
        "visibility": "all",
    }
    assert custom_event({"a": 1}, custom_id="c") == {
        "type": "custom",
        "content": {"a": 1},
        "custom_id": "c",
        "visibility": "agents",
    }
    assert message_event("hi", visibility=None) == {"type": "message", "text": "hi"}


async def test_upload_file_is_multipart_with_part_file(client, fake):
    fake.on(AGENT + "upload_file", {"url": "https://cdn.livechat-files.com/api/file/x.png"})
    uploaded = await client.agent.upload_file("x.png", b"PNGDATA", "image/png")
    request = fake.last
    assert uploaded.url.endswith("/x.png")
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    content = request.read()
    assert b'name="file"; filename="x.png"' in content
    assert b"Content-Type: image/png" in content
    assert b"PNGDATA" in content


async def test_update_chat_properties_and_tag_thread(client, fake):
    await client.agent.update_chat_properties("C", {"hitl": {"handoff_id": "h1"}})
    assert fake.last.url.path == AGENT + "update_chat_properties"
    assert fake.body() == {"id": "C", "properties": {"hitl": {"handoff_id": "h1"}}}
    await client.agent.tag_thread("C", "T", "handoff")
    assert fake.last.url.path == AGENT + "tag_thread"
    assert fake.body() == {"chat_id": "C", "thread_id": "T", "tag": "handoff"}


async def test_get_and_update_customer(client, fake):
    fake.on(AGENT + "get_customer", {"id": "cust-1", "type": "customer", "name": "Ada", "extra": 1})
    customer = await client.agent.get_customer("cust-1")
    assert fake.body() == {"id": "cust-1"}
    assert (customer.id, customer.name, customer.model_extra) == ("cust-1", "Ada", {"extra": 1})
    await client.agent.update_customer("cust-1", name="Ada", email="ada@example.com")
    assert fake.last.url.path == AGENT + "update_customer"
    assert fake.body() == {"id": "cust-1", "name": "Ada", "email": "ada@example.com"}


async def test_list_routing_statuses_reads_a_top_level_array(client, fake):
    fake.on(
        AGENT + "list_routing_statuses",
        [
            {"agent_id": "smith@example.com", "status": "accepting_chats"},
            {"agent_id": "agent@example.com", "status": "not_accepting_chats"},
        ],
    )
    statuses = await client.agent.list_routing_statuses(group_ids=[0])
    assert fake.body() == {"filters": {"group_ids": [0]}}
    assert [(s.agent_id, s.status) for s in statuses] == [
        ("smith@example.com", "accepting_chats"),
        ("agent@example.com", "not_accepting_chats"),
    ]


async def test_list_routing_statuses_refuses_an_object(client, fake):
    fake.on(AGENT + "list_routing_statuses", {"statuses": []})
    with pytest.raises(errors.LiveChatError) as caught:
        await client.agent.list_routing_statuses()
    assert caught.value.type == "unexpected_response"


async def test_an_undocumented_answer_shape_is_an_unexpected_response(client, fake):
    fake.on(AGENT + "send_event", {"id": "no event_id here"})
    with pytest.raises(errors.LiveChatError) as caught:
        await client.agent.send_event("C", message_event("hi"))
    assert caught.value.type == "unexpected_response"
    assert not caught.value.retryable


async def test_list_agents_for_transfer(client, fake):
    fake.on(AGENT + "list_agents_for_transfer", [{"agent_id": "a@x.com", "total_active_chats": 2}])
    candidates = await client.agent.list_agents_for_transfer("C")
    assert fake.body() == {"chat_id": "C"}
    assert candidates[0].total_active_chats == 2


async def test_send_typing_indicator(client, fake):
    await client.agent.send_typing_indicator("C", True, visibility="all")
    assert fake.last.url.path == AGENT + "send_typing_indicator"
    assert fake.body() == {"chat_id": "C", "is_typing": True, "visibility": "all"}


async def test_agent_as_uses_other_credentials(client, fake):
    bot = AgentCredentials.from_bearer("bot-jwt-token")
    fake.on(AGENT + "send_event", {"event_id": "E"})
    await client.agent_as(bot).send_event("C", message_event("hi"))
    assert fake.last.headers["Authorization"] == "Bearer bot-jwt-token"


# -- Customer Chat API -----------------------------------------------------------------


@pytest.fixture(name="session")
def fixture_session() -> CustomerSession:
    return CustomerSession.from_dict(
        {
            "customer_id": "cust-1",
            "access_token": "dal:cust-token",
            "expires_at": "2099-01-01T00:00:00Z",
            "organization_id": ORGANIZATION_ID,
        }
    )


async def test_customer_start_chat_returns_ids(client, fake, session):
    fake.on(CUSTOMER + "start_chat", {"chat_id": "PJ0MRSHTDG", "thread_id": "PGDGHT5G"})
    started = await client.customer(session).start_chat(group_ids=[3], continuous=True)
    request = fake.last
    assert (started.chat_id, started.thread_id) == ("PJ0MRSHTDG", "PGDGHT5G")
    assert request.url.params["organization_id"] == ORGANIZATION_ID
    assert request.headers["Authorization"] == "Bearer dal:cust-token"
    assert fake.body() == {"chat": {"access": {"group_ids": [3]}}, "continuous": True}


@pytest.mark.parametrize(
    ("call", "action", "body", "answer"),
    [
        (lambda c: c.resume_chat("C"), "resume_chat", {"chat": {"id": "C"}}, {"thread_id": "T"}),
        (
            lambda c: c.send_event("C", message_event("hi", custom_id="m1", visibility=None)),
            "send_event",
            {"chat_id": "C", "event": {"type": "message", "text": "hi", "custom_id": "m1"}},
            {"event_id": "E"},
        ),
        (
            lambda c: c.send_event("C", message_event("hi"), attach_to_last_thread=True),
            "send_event",
            {
                "chat_id": "C",
                "event": {"type": "message", "text": "hi", "visibility": "all"},
                "attach_to_last_thread": True,
            },
            {"event_id": "E"},
        ),
        (lambda c: c.deactivate_chat("C"), "deactivate_chat", {"id": "C"}, {}),
        (lambda c: c.get_customer(), "get_customer", {}, {"id": "cust-1", "type": "customer"}),
        (
            lambda c: c.update_customer(name="Ada", avatar="https://a/x.png"),
            "update_customer",
            {"name": "Ada", "avatar": "https://a/x.png"},
            {},
        ),
        (
            lambda c: c.send_sneak_peek("C", "typing…"),
            "send_sneak_peek",
            {"chat_id": "C", "sneak_peek_text": "typing…"},
            {},
        ),
    ],
)
async def test_customer_methods(client, fake, session, call, action, body, answer):
    fake.on(CUSTOMER + action, answer)
    await call(client.customer(session))
    assert fake.last.url.path == CUSTOMER + action
    assert fake.last.url.params["organization_id"] == ORGANIZATION_ID
    assert fake.last.headers["Authorization"] == "Bearer dal:cust-token"
    assert fake.body() == body


async def test_customer_update_needs_a_field(client, fake, session):
    with pytest.raises(ValueError):
        await client.customer(session).update_customer()
    assert fake.requests == []


async def test_customer_upload_file(client, fake, session):
    fake.on(CUSTOMER + "upload_file", {"url": "https://cdn/x.txt"})
    uploaded = await client.customer(session).upload_file("x.txt", b"hello", "text/plain")
    assert uploaded.url == "https://cdn/x.txt"
    assert fake.last.url.params["organization_id"] == ORGANIZATION_ID
    assert b'name="file"; filename="x.txt"' in fake.last.read()


async def test_customer_list_group_statuses(client, fake, session):
    fake.on(
        CUSTOMER + "list_group_statuses",
        {"groups_status": {"1": "online", "3": "online_for_queue"}},
    )
    statuses = await client.customer(session).list_group_statuses()
    assert fake.body() == {"all": True}
    assert statuses == {1: "online", 3: "online_for_queue"}
    await client.customer(session).list_group_statuses([1])
    assert fake.body() == {"group_ids": [1]}


# -- Configuration API -----------------------------------------------------------------


async def test_register_webhook_with_filter(client, fake):
    fake.on(CONFIG + "register_webhook", {"id": "pqi8oasdjahuakndw9nsad9na"})
    webhook_id = await client.configuration.register_webhook(
        "incoming_event",
        "https://gw.example/livechat/webhooks",
        "s3cret",
        filters={"author_type": "agent"},
        description="hitl",
    )
    assert webhook_id == "pqi8oasdjahuakndw9nsad9na"
    assert fake.body() == {
        "action": "incoming_event",
        "url": "https://gw.example/livechat/webhooks",
        "secret_key": "s3cret",
        "type": "license",
        "owner_client_id": CLIENT_ID,
        "description": "hitl",
        "filters": {"author_type": "agent"},
    }


async def test_list_and_unregister_webhooks(client, fake):
    fake.on(
        CONFIG + "list_webhooks",
        [
            {
                "id": "w1",
                "url": "https://u",
                "action": "chat_deactivated",
                "type": "license",
                "filters": {},
            }
        ],
    )
    webhooks = await client.configuration.list_webhooks()
    assert fake.body() == {"owner_client_id": CLIENT_ID}
    assert [(w.id, w.action) for w in webhooks] == [("w1", "chat_deactivated")]
    await client.configuration.unregister_webhook("w1")
    assert fake.last.url.path == CONFIG + "unregister_webhook"
    assert fake.body() == {"id": "w1", "owner_client_id": CLIENT_ID}


async def test_license_webhooks_state(client, fake):
    await client.configuration.enable_license_webhooks()
    assert fake.last.url.path == CONFIG + "enable_license_webhooks"
    assert fake.body() == {"owner_client_id": CLIENT_ID}
    fake.on(CONFIG + "get_license_webhooks_state", {"license_webhooks_enabled": True})
    assert await client.configuration.get_license_webhooks_state() is True
    fake.on(CONFIG + "get_license_webhooks_state", {"license_webhooks_enabled": False})
    assert await client.configuration.get_license_webhooks_state() is False


async def test_groups(client, fake):
    fake.on(CONFIG + "list_groups", [{"id": 0, "name": "General", "routing_status": "offline"}])
    groups = await client.configuration.list_groups(fields=["routing_status"])
    assert fake.body() == {"fields": ["routing_status"]}
    assert (groups[0].id, groups[0].routing_status) == (0, "offline")
    fake.on(
        CONFIG + "get_group", {"id": 19, "name": "Sports", "agent_priorities": {"a@x": "normal"}}
    )
    group = await client.configuration.get_group(19)
    assert fake.body() == {"id": 19}
    assert group.agent_priorities == {"a@x": "normal"}


async def test_bots(client, fake):
    fake.on(CONFIG + "create_bot", {"id": "5c98", "secret": "641e"})
    bot = await client.configuration.create_bot("HITL bot", max_chats_count=10)
    assert fake.body() == {"name": "HITL bot", "owner_client_id": CLIENT_ID, "max_chats_count": 10}
    assert bot.secret.get_secret_value() == "641e"
    assert "641e" not in repr(bot)
    fake.on(CONFIG + "list_bots", [{"id": "2c1b", "name": "Bot Name"}])
    bots = await client.configuration.list_bots(all=True)
    assert fake.body() == {"all": True}
    assert bots[0].name == "Bot Name"


async def test_issue_bot_token_is_anonymous_and_secret(client, fake):
    fake.on(CONFIG + "issue_bot_token", {"token": "jwt.bot.token"})
    token = await client.configuration.issue_bot_token("5c98", SecretStr("641e"))
    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == "jwt.bot.token"
    assert "Authorization" not in fake.last.headers
    assert fake.body() == {
        "bot_id": "5c98",
        "client_id": CLIENT_ID,
        "bot_secret": "641e",
        "organization_id": ORGANIZATION_ID,
    }


def test_agent_model_is_used_for_agents():
    assert Agent.model_validate({"id": "a@x", "type": "agent"}).type == "agent"
