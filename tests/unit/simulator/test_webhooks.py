"""Webhook registry, filters, delivery, retries and delivery faults."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import HOOK_URL, Harness


async def test_registry_limit_list_and_unregister(harness: Harness) -> None:
    owner = harness.sim.config.client_id
    body = {
        "action": "incoming_event",
        "secret_key": "k",
        "url": HOOK_URL,
        "type": "license",
        "owner_client_id": owner,
    }
    ids = [(await harness.config_api("register_webhook", body)).json()["id"] for _ in range(3)]
    r = await harness.config_api("register_webhook", body)
    assert r.json()["error"]["type"] == "limit_reached"
    listed = (await harness.config_api("list_webhooks", {"owner_client_id": owner})).json()
    assert [w["id"] for w in listed] == ids
    assert set(listed[0]) == {"id", "url", "action", "filters", "owner_client_id", "type"}
    assert (
        await harness.config_api("unregister_webhook", {"id": ids[0], "owner_client_id": owner})
    ).json() == {}
    assert (await harness.config_api("register_webhook", body)).status_code == 200
    r = await harness.config_api("unregister_webhook", {"id": "nope", "owner_client_id": owner})
    assert r.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    "patch",
    [
        {"action": "incoming_customer"},
        {"type": "agent"},
        {"url": "ftp://x"},
        {"secret_key": None},
        {"owner_client_id": None},
        {"filters": {"author_type": "agent"}, "action": "chat_deactivated"},
        {"filters": {"author_type": "bot"}},
        {"additional_data": ["nope"]},
    ],
)
async def test_register_validation(harness: Harness, patch: dict) -> None:
    body = {
        "action": "incoming_event",
        "secret_key": "k",
        "url": HOOK_URL,
        "type": "license",
        "owner_client_id": harness.sim.config.client_id,
        **patch,
    }
    body = {k: v for k, v in body.items() if v is not None}
    r = await harness.config_api("register_webhook", body)
    assert r.json()["error"]["type"] == "validation"


async def test_license_webhooks_need_enabling(harness: Harness) -> None:
    owner = harness.sim.config.client_id
    await harness.config_api(
        "register_webhook",
        {
            "action": "incoming_chat",
            "secret_key": "k",
            "url": HOOK_URL,
            "type": "license",
            "owner_client_id": owner,
        },
    )
    state = (
        await harness.config_api("get_license_webhooks_state", {"owner_client_id": owner})
    ).json()
    assert state == {"license_webhooks_enabled": False}
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    assert harness.receiver.bodies == []
    await harness.config_api("enable_license_webhooks", {"owner_client_id": owner})
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    assert harness.receiver.actions() == ["incoming_chat"]
    body = harness.receiver.bodies[0]
    assert set(body) == {
        "webhook_id",
        "secret_key",
        "action",
        "organization_id",
        "payload",
        "additional_data",
    }
    assert body["additional_data"] == {}
    assert body["secret_key"] == "k"
    await harness.config_api("disable_license_webhooks", {"owner_client_id": owner})
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    assert len(harness.receiver.bodies) == 1


async def test_author_type_filter_and_additional_data(harness: Harness) -> None:
    await harness.hooks(
        "incoming_event",
        filters={"author_type": "agent"},
        additional_data=["chat_properties", "chat_presence_user_ids"],
    )
    chat_id, token, _ = await harness.handoff_chat()
    await harness.customer(
        token,
        "send_event",
        {"chat_id": chat_id, "event": {"type": "message", "text": "from customer"}},
    )
    harness.sim.agent_reply("alice@sandbox.example", chat_id, "from agent")
    await harness.sim.drain()
    events = harness.receiver.of("incoming_event")
    assert [e["event"]["text"] for e in events] == ["from agent"]
    extra = harness.receiver.bodies[0]["additional_data"]
    assert "alice@sandbox.example" in extra["chat_presence_user_ids"]
    assert extra["chat_properties"]["routing"]["continuous"] is False


async def test_chat_presence_and_source_type_filters(harness: Harness) -> None:
    await harness.hooks(
        "incoming_event",
        filters={"chat_presence": {"user_ids": {"values": ["bob@sandbox.example"]}}},
    )
    chat_id, _token, _ = await harness.handoff_chat()  # goes to alice
    harness.sim.agent_reply("alice@sandbox.example", chat_id, "hi")
    await harness.sim.drain()
    assert harness.receiver.bodies == []
    harness.sim.transfer(chat_id, agent_id="bob@sandbox.example")
    harness.sim.agent_reply("bob@sandbox.example", chat_id, "bob here")
    await harness.sim.drain()
    assert [e["event"]["text"] for e in harness.receiver.of("incoming_event")] == ["bob here"]


async def test_source_type_system(harness: Harness) -> None:
    await harness.hooks("chat_deactivated", filters={"source_type": ["system"]})
    chat_id, _, _ = await harness.handoff_chat()
    await harness.agent("deactivate_chat", {"id": chat_id, "ignore_requester_presence": True})
    chat2, _, _ = await harness.handoff_chat()
    harness.sim.close_chat(chat2)
    await harness.sim.drain()
    assert harness.receiver.of("chat_deactivated") == [
        {"chat_id": chat2, "thread_id": harness.sim.list_chats()[1]["threads"][0]["id"]}
    ]


async def test_handoff_flow_webhooks(harness: Harness) -> None:
    await harness.hooks(
        "incoming_chat",
        "user_added_to_chat",
        "chat_transferred",
        "user_removed_from_chat",
        "chat_access_updated",
        "chat_deactivated",
        "incoming_event",
        "routing_status_set",
        "thread_tagged",
        "chat_properties_updated",
    )
    _chat_id, _token, customer = await harness.handoff_chat()
    await harness.sim.drain()
    assert harness.receiver.actions() == [
        "incoming_chat",
        "user_added_to_chat",
        "user_removed_from_chat",
        "chat_transferred",
        "user_added_to_chat",
    ]
    transferred = harness.receiver.of("chat_transferred")[0]
    assert transferred["reason"] == "manual"
    assert transferred["transferred_to"] == {
        "group_ids": [0],
        "agent_ids": ["alice@sandbox.example"],
    }
    assert transferred["requester_id"] == harness.sim.config.api_agent_id
    added = harness.receiver.of("user_added_to_chat")
    assert added[0]["user"]["id"] == customer
    assert added[0]["user_type"] == "customer"
    assert added[1]["user"]["name"] == "Alice Agent"
    harness.sim.set_agent_status("bob@sandbox.example", "not_accepting_chats")
    await harness.sim.drain()
    assert harness.receiver.of("routing_status_set")[-1] == {
        "agent_id": "bob@sandbox.example",
        "status": "not accepting chats",
    }


@pytest.mark.sim(routing_status_webhook_spelling="underscore")
async def test_routing_status_spelling_is_configurable(harness: Harness) -> None:
    await harness.hooks(
        "routing_status_set", filters={"agent_ids": {"values": ["bob@sandbox.example"]}}
    )
    harness.sim.set_agent_status("alice@sandbox.example", "not_accepting_chats")
    harness.sim.set_agent_status("bob@sandbox.example", "not_accepting_chats")
    await harness.sim.drain()
    assert harness.receiver.of("routing_status_set") == [
        {"agent_id": "bob@sandbox.example", "status": "not_accepting_chats"}
    ]


async def test_queue_then_assignment_when_agent_frees_up(harness: Harness) -> None:
    await harness.hooks("chat_transferred", "user_added_to_chat")
    harness.sim.set_agent_status("bob@sandbox.example", "not_accepting_chats")
    harness.sim.add_agent("carol@sandbox.example", "Carol", accepting=False)
    harness.sim.world.agents["alice@sandbox.example"].max_chats = 1
    first, _, _ = await harness.handoff_chat()
    queued, _, _ = await harness.handoff_chat()
    third, _, _ = await harness.handoff_chat()
    q = (await harness.agent("get_chat", {"chat_id": third})).json()["thread"]["queue"]
    assert q["position"] == 2
    assert q["wait_time"] == 120
    await harness.sim.drain()
    queued_event = harness.receiver.of("chat_transferred")[1]
    assert queued_event["transferred_to"] == {"group_ids": [0], "agent_ids": []}
    assert queued_event["queue"]["position"] == 1
    harness.sim.close_chat(first, "alice@sandbox.example")  # alice frees up
    await harness.sim.drain()
    assigned = harness.receiver.of("chat_transferred")[-1]
    assert assigned == {
        "chat_id": queued,
        "thread_id": assigned["thread_id"],
        "reason": "assigned",
        "transferred_to": {"group_ids": [0], "agent_ids": ["alice@sandbox.example"]},
    }
    assert harness.receiver.of("user_added_to_chat")[-1]["user"]["id"] == "alice@sandbox.example"
    harness.sim.set_agent_status("carol@sandbox.example", "accepting_chats")
    chat = (await harness.agent("get_chat", {"chat_id": third})).json()
    assert "queue" not in chat["thread"]
    assert chat["thread"]["queues_duration"] == 0
    assert "carol@sandbox.example" in [u["id"] for u in chat["users"] if u["present"]]


@pytest.mark.sim(routing_mode="manual")
async def test_manual_routing_accept_chat(harness: Harness) -> None:
    chat_id, _, _ = await harness.handoff_chat()
    thread = (await harness.agent("get_chat", {"chat_id": chat_id})).json()["thread"]
    assert thread["queue"]["position"] == 1
    harness.sim.accept_chat("bob@sandbox.example", chat_id)
    chat = (await harness.agent("get_chat", {"chat_id": chat_id})).json()
    assert "queue" not in chat["thread"]
    assert "bob@sandbox.example" in [u["id"] for u in chat["users"] if u["present"]]


@pytest.mark.sim(webhook_retry_schedule=[0.05, 0.1, 0.2])
async def test_retries_on_schedule_then_gives_up(harness: Harness) -> None:
    await harness.hooks("incoming_chat")
    harness.receiver.statuses = [500, 503, 201, 500]
    await harness.agent("start_chat", {})
    loop = asyncio.get_running_loop()
    started = loop.time()
    await harness.sim.drain()
    elapsed = loop.time() - started
    assert len(harness.receiver.bodies) == 4
    assert elapsed >= 0.35
    log = harness.sim.deliveries()
    assert log[0]["outcome"] == "failed"
    assert [a["status"] for a in log[0]["attempts"]] == [500, 503, 201, 500]
    harness.receiver.statuses = [500]
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    assert harness.sim.deliveries()[1]["outcome"] == "delivered"
    assert len(harness.sim.deliveries()[1]["attempts"]) == 2


@pytest.mark.sim(webhook_timeout=0.05, webhook_retry_schedule=[0.01])
async def test_slow_receiver_counts_as_failure(harness: Harness, receiver) -> None:
    await harness.hooks("incoming_chat")
    original = receiver.app

    slow = {"n": 1}

    async def sleepy() -> None:
        if slow["n"]:
            slow["n"] -= 1
            await asyncio.sleep(0.2)

    harness.sim.core.emitter._http = None  # replace transport with a slow app
    import httpx
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hook(request):
        await sleepy()
        receiver.bodies.append(await request.json())
        return JSONResponse({})

    harness.sim.core.emitter._http = httpx.AsyncClient(
        transport=httpx.ASGITransport(Starlette(routes=[Route("/hooks", hook, methods=["POST"])]))
    )
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    attempts = harness.sim.deliveries()[0]["attempts"]
    assert [a["error"] for a in attempts] == ["timeout", None]
    assert harness.sim.deliveries()[0]["outcome"] == "delivered"
    await harness.sim.core.emitter._http.aclose()
    del original


@pytest.mark.parametrize("concurrent", [False, True])
async def test_duplicate_delivery_fault(harness: Harness, concurrent: bool) -> None:
    await harness.hooks("incoming_chat")
    harness.sim.duplicate_webhooks(1, concurrent=concurrent)
    await harness.agent("start_chat", {})
    await harness.agent("start_chat", {})
    await harness.sim.drain()
    bodies = harness.receiver.bodies
    assert len(bodies) == 3
    chat_ids = [b["payload"]["chat"]["id"] for b in bodies]
    first = harness.sim.deliveries()[0]["body"]["payload"]["chat"]["id"]
    assert chat_ids.count(first) == 2
    assert len(set(chat_ids)) == 2
    twice = [b for b in bodies if b["payload"]["chat"]["id"] == first]
    assert twice[0] == twice[1]
    assert [d["copy"] for d in harness.sim.deliveries()] == [1, 2, 1]
