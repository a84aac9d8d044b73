"""Agent Chat API: happy paths and documented errors."""

from __future__ import annotations

import pytest

from .conftest import Harness


async def test_start_chat_returns_ids_and_get_chat_shows_thread(harness: Harness) -> None:
    r = await harness.agent(
        "start_chat",
        {"chat": {"thread": {"events": [{"type": "message", "text": "hi", "custom_id": "c1"}]}}},
    )
    assert r.status_code == 200
    data = r.json()
    assert set(data) == {"chat_id", "thread_id", "event_ids"}
    assert data["event_ids"] == [f"{data['thread_id']}_1"]
    chat = (await harness.agent("get_chat", {"chat_id": data["chat_id"]})).json()
    assert chat["thread"]["active"] is True
    event = chat["thread"]["events"][0]
    assert event["custom_id"] == "c1"
    assert event["author_id"] == harness.sim.config.api_agent_id
    assert event["created_at"] == "2025-01-02T03:04:05.678901Z"
    assert [u["id"] for u in chat["users"]] == [harness.sim.config.api_agent_id]


async def test_deterministic_ids_with_same_seed(harness: Harness) -> None:
    from livechat_hitl.simulator import create_simulator

    from .conftest import make_config

    a = create_simulator(make_config(seed=11)).core.ids
    b = create_simulator(make_config(seed=11)).core.ids
    assert [a.chat_id(), a.uuid4(), a.hex32()] == [b.chat_id(), b.uuid4(), b.hex32()]


async def test_send_event_to_inactive_chat_is_chat_inactive(harness: Harness) -> None:
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    assert (await harness.agent("deactivate_chat", {"id": chat_id})).status_code == 200
    r = await harness.agent(
        "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "x"}}
    )
    assert r.json()["error"]["type"] == "chat_inactive"
    r = await harness.agent("deactivate_chat", {"id": chat_id})
    assert r.json()["error"]["type"] == "chat_inactive"


async def test_resume_chat_opens_a_new_linked_thread(harness: Harness) -> None:
    started = (await harness.agent("start_chat", {})).json()
    await harness.agent("deactivate_chat", {"id": started["chat_id"]})
    r = await harness.agent("resume_chat", {"chat": {"id": started["chat_id"]}})
    assert r.status_code == 200, r.text
    chat = (await harness.agent("get_chat", {"chat_id": started["chat_id"]})).json()
    assert chat["thread"]["id"] == r.json()["thread_id"]
    assert chat["thread"]["previous_thread_id"] == started["thread_id"]
    again = await harness.agent("resume_chat", {"chat": {"id": started["chat_id"]}})
    assert again.json()["error"]["type"] == "validation"


async def test_handoff_flow_assigns_least_busy_human(harness: Harness) -> None:
    chat_id, _, customer_id = await harness.handoff_chat()
    chat = (await harness.agent("get_chat", {"chat_id": chat_id})).json()
    present = {u["id"]: u["present"] for u in chat["users"]}
    assert present[customer_id] is True
    assert present["alice@sandbox.example"] is True
    assert present[harness.sim.config.api_agent_id] is False
    chat2, _, _ = await harness.handoff_chat()
    chat = (await harness.agent("get_chat", {"chat_id": chat2})).json()
    assert "bob@sandbox.example" in [u["id"] for u in chat["users"] if u["present"]]


async def test_requester_must_be_present_unless_ignored(harness: Harness) -> None:
    chat_id, _, _ = await harness.handoff_chat()
    r = await harness.agent("deactivate_chat", {"id": chat_id})
    assert r.json()["error"]["type"] == "authorization"
    r = await harness.agent(
        "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "x"}}
    )
    assert r.json()["error"]["type"] == "authorization"
    r = await harness.agent(
        "transfer_chat", {"id": chat_id, "target": {"type": "group", "ids": [0]}}
    )
    assert r.json()["error"]["type"] == "authorization"
    r = await harness.agent("deactivate_chat", {"id": chat_id, "ignore_requester_presence": True})
    assert r.status_code == 200


async def test_an_inactive_chat_is_reported_before_presence(harness: Harness) -> None:
    # The transfer took the API agent out of the chat; after the close, its send is
    # refused because the chat is inactive, not because it left (see chats.send_event).
    chat_id, _, _ = await harness.handoff_chat()
    harness.sim.close_chat(chat_id, "alice@sandbox.example")
    r = await harness.agent(
        "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "x"}}
    )
    assert r.json()["error"]["type"] == "chat_inactive"


async def test_one_customer_per_chat(harness: Harness) -> None:
    chat_id, _, _ = await harness.handoff_chat()
    _, other = await harness.new_customer()
    r = await harness.agent(
        "add_user_to_chat",
        {
            "chat_id": chat_id,
            "user_id": other,
            "user_type": "customer",
            "visibility": "all",
            "ignore_requester_presence": True,
        },
    )
    assert r.json()["error"]["type"] == "users_limit_reached"
    r = await harness.agent(
        "remove_user_from_chat",
        {
            "chat_id": chat_id,
            "user_id": other,
            "user_type": "customer",
            "ignore_requester_presence": True,
        },
    )
    assert r.json()["error"]["type"] == "validation"


async def test_customer_must_be_added_with_visibility_all(harness: Harness) -> None:
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    _, customer = await harness.new_customer()
    r = await harness.agent(
        "add_user_to_chat",
        {"chat_id": chat_id, "user_id": customer, "user_type": "customer", "visibility": "agents"},
    )
    assert r.json()["error"]["type"] == "validation"


async def test_transfer_without_available_agent_fails_or_queues(harness: Harness) -> None:
    for agent in ("alice@sandbox.example", "bob@sandbox.example"):
        harness.sim.set_agent_status(agent, "not_accepting_chats")
    _token, _customer = await harness.new_customer()
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    r = await harness.agent(
        "transfer_chat", {"id": chat_id, "target": {"type": "group", "ids": [0]}}
    )
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "validation",
        "message": "Cannot assign any agent from requested groups",
    }
    r = await harness.agent(
        "transfer_chat",
        {
            "id": chat_id,
            "target": {"type": "group", "ids": [0]},
            "ignore_agents_availability": True,
        },
    )
    assert r.status_code == 200
    thread = (await harness.agent("get_chat", {"chat_id": chat_id})).json()["thread"]
    assert thread["queue"] == {
        "position": 1,
        "wait_time": 60,
        "queued_at": "2025-01-02T03:04:05.678901Z",
    }


async def test_transfer_to_unknown_group(harness: Harness) -> None:
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    r = await harness.agent(
        "transfer_chat", {"id": chat_id, "target": {"type": "group", "ids": [99]}}
    )
    assert r.json()["error"]["type"] == "group_not_found"


async def test_properties_tags_typing_and_customer(harness: Harness) -> None:
    started = (await harness.agent("start_chat", {})).json()
    chat_id, thread_id = started["chat_id"], started["thread_id"]
    assert (
        await harness.agent(
            "update_chat_properties", {"id": chat_id, "properties": {"ns": {"k": 1}}}
        )
    ).json() == {}
    assert (
        await harness.agent(
            "tag_thread", {"chat_id": chat_id, "thread_id": thread_id, "tag": "vip"}
        )
    ).json() == {}
    chat = (await harness.agent("get_chat", {"chat_id": chat_id})).json()
    assert chat["properties"]["ns"] == {"k": 1}
    assert chat["thread"]["tags"] == ["vip"]
    assert (
        await harness.agent("send_typing_indicator", {"chat_id": chat_id, "is_typing": True})
    ).json() == {}
    _, customer = await harness.new_customer()
    assert (
        await harness.agent("update_customer", {"id": customer, "name": "Ada", "email": "a@x.io"})
    ).json() == {}
    got = (await harness.agent("get_customer", {"id": customer})).json()
    assert (got["id"], got["name"], got["email"], got["type"]) == (
        customer,
        "Ada",
        "a@x.io",
        "customer",
    )
    r = await harness.agent("get_customer", {"id": "nope"})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"


async def test_routing_statuses_and_agents_for_transfer(harness: Harness) -> None:
    statuses = (await harness.agent("list_routing_statuses", {})).json()
    assert {"agent_id": "alice@sandbox.example", "status": "accepting_chats"} in statuses
    assert {
        "agent_id": harness.sim.config.api_agent_id,
        "status": "not_accepting_chats",
    } in statuses
    r = await harness.agent(
        "set_routing_status", {"status": "not_accepting_chats", "agent_id": "bob@sandbox.example"}
    )
    assert r.json() == {}
    chat_id = (await harness.agent("start_chat", {})).json()["chat_id"]
    agents = (await harness.agent("list_agents_for_transfer", {"chat_id": chat_id})).json()
    assert agents == [{"agent_id": "alice@sandbox.example", "total_active_chats": 0}]
    r = await harness.agent("set_routing_status", {"status": "offline"})
    assert r.json()["error"]["type"] == "validation"


async def test_list_chats_paginates(harness: Harness) -> None:
    ids = [(await harness.agent("start_chat", {})).json()["chat_id"] for _ in range(3)]
    first = (await harness.agent("list_chats", {"limit": 2, "sort_order": "asc"})).json()
    assert first["found_chats"] == 3
    assert [c["id"] for c in first["chats_summary"]] == ids[:2]
    second = (await harness.agent("list_chats", {"page_id": first["next_page_id"]})).json()
    assert [c["id"] for c in second["chats_summary"]] == ids[2:]
    bad = await harness.agent("list_chats", {"page_id": first["next_page_id"], "limit": 1})
    assert bad.json()["error"]["type"] == "validation"


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("send_event", {"chat_id": 5, "event": {"type": "message", "text": "x"}}),
        ("send_event", {"chat_id": "X", "event": "nope"}),
        ("start_chat", {"chat": {"access": {"group_ids": ["a"]}}}),
        ("start_chat", {"active": "yes"}),
        ("transfer_chat", {"id": "X", "target": "group"}),
        ("list_chats", {"limit": 1000}),
        ("update_chat_properties", {"id": "X", "properties": []}),
    ],
)
async def test_wrong_types_answer_validation_or_not_found(
    harness: Harness, method: str, body: dict
) -> None:
    r = await harness.agent(method, body)
    assert r.status_code in (400, 404)
    assert r.json()["error"]["type"] in ("validation", "not_found")


async def test_malformed_json_and_non_objects(harness: Harness) -> None:
    for content in (b"{nope", b"[1,2]", b"\xff\xfe", b'"text"'):
        r = await harness.http.post(
            "/v3.6/agent/action/start_chat", content=content, headers=harness.basic
        )
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "validation"


async def test_unknown_method_version_and_path(harness: Harness) -> None:
    r = await harness.agent("close_chat", {"chat_id": "X"})
    assert r.json()["error"]["type"] == "not_found"
    r = await harness.http.post("/v3.5/agent/action/start_chat", json={}, headers=harness.basic)
    assert r.json()["error"]["type"] == "unsupported_version"
    r = await harness.http.get("/nothing/here")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"
    r = await harness.http.get("/v3.6/agent/action/start_chat")
    assert r.json()["error"]["type"] == "validation"


@pytest.mark.sim(error_status={"validation": 422})
async def test_error_status_table_is_configurable(harness: Harness) -> None:
    r = await harness.agent("get_chat", {})
    assert r.status_code == 422
