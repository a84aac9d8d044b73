"""What reaches the bot: message events of every kind (and what must not), ordering
both ways, and Standard Webhooks signing and retries."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from livechat_hitl.livechat.agent import AgentApi

RICH = {
    "template_id": "cards",
    "elements": [
        {
            "title": "Plan A",
            "subtitle": "cheap",
            "buttons": [{"text": "Pick", "type": "message", "value": "A", "postback_id": "a"}],
        },
        {"title": "Plan B"},
    ],
}


async def test_agent_text_file_and_rich_messages_reach_the_bot(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-kinds")
        hid, chat_id = handoff["id"], handoff["livechat"]["chat_id"]
        agent = env.agents[0]
        env.sim.agent_reply(agent, chat_id, "plain text")
        env.sim.agent_reply(agent, chat_id, file=("report.pdf", b"%PDF-1.4", "application/pdf"))
        env.sim.agent_reply(agent, chat_id, rich_message=RICH)
        messages = await env.wait_event(hid, "handoff.message", count=3)
        text, file, rich = (m["data"] for m in messages)
        name = dict(env.sim.config.agents)[agent]
        for data in (text, file, rich):
            assert data["agent"] == {"id": agent, "name": name}
            assert data["message"]["id"]
        assert text["message"] == {
            "id": text["message"]["id"],
            "type": "text",
            "text": "plain text",
        }
        assert file["message"]["type"] == "file"
        assert file["message"]["name"] == "report.pdf"
        assert file["message"]["content_type"] == "application/pdf"
        stored = env.sim.core.files.by_url(file["message"]["url"])
        assert stored is not None
        assert stored.content == b"%PDF-1.4"
        assert rich["message"]["type"] == "rich"
        assert [e.get("title") for e in rich["message"]["elements"]] == ["Plan A", "Plan B"]
        assert rich["message"]["elements"][0]["buttons"][0]["text"] == "Pick"
        # the bot's view of the conversation has them too
        items = (await env.api.get(f"/v1/handoffs/{hid}/messages")).json()["items"]
        assert [m["type"] for m in items] == ["text", "file", "rich"]
        assert all(m["direction"] == "to_bot" for m in items)


def delivery(env: Any, handoff: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    secret = env.gateway.settings.livechat_webhook_secret.get_secret_value()
    return {
        "webhook_id": "wh-test",
        "secret_key": secret,
        "action": "incoming_event",
        "organization_id": env.sim.config.organization_id,
        "payload": {
            "chat_id": handoff["livechat"]["chat_id"],
            "thread_id": handoff["livechat"]["thread_id"],
            "event": {"created_at": "2026-01-01T00:00:00.000000Z", **event},
        },
        "additional_data": {},
    }


async def test_notes_system_messages_and_the_customers_echo_are_not_relayed(
    make_env: Any,
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-quiet")
        hid, chat_id = handoff["id"], handoff["livechat"]["chat_id"]
        agent = env.agents[0]
        env.sim.agent_reply(agent, chat_id, "internal note", visibility="agents")
        posted = await env.api.post(
            f"/v1/handoffs/{hid}/messages", json={"type": "text", "text": "from the user"}
        )
        assert posted.status_code == 202
        # a transfer writes system messages into the chat
        env.sim.transfer(chat_id, agent_id=env.agents[1], by=agent)
        await env.settle()
        customer = next(u["id"] for u in env.chat(chat_id)["users"] if u["type"] == "customer")
        # LiveChat's webhook filters may let these through: the gateway checks itself
        crafted = [
            {"id": "EV-ECHO", "type": "message", "text": "echo", "author_id": customer},
            {
                "id": "EV-NOTE",
                "type": "message",
                "text": "note",
                "author_id": agent,
                "visibility": "agents",
            },
            {
                "id": "EV-SYS",
                "type": "system_message",
                "text": "Chat transferred",
                "system_message_type": "chat_transferred",
                "visibility": "all",
            },
            {
                "id": "EV-API",
                "type": "message",
                "text": "by the API account",
                "author_id": env.sim.config.account_id,
                "visibility": "all",
            },
            {"id": "EV-CUSTOM", "type": "custom", "content": {"x": 1}, "author_id": agent},
        ]
        for event in crafted:
            assert (await env.post_webhook(delivery(env, handoff, event))).status_code == 200
        env.sim.agent_reply(env.agents[1], chat_id, "the only one")
        await env.wait_event(hid, "handoff.message")
        await env.settle()
        texts = [e["data"]["message"].get("text") for e in env.events(hid, "handoff.message")]
        assert texts == ["the only one"]
        items = (await env.api.get(f"/v1/handoffs/{hid}/messages")).json()["items"]
        assert [(m["direction"], m["text"]) for m in items] == [
            ("to_agent", "from the user"),
            ("to_bot", "the only one"),
        ]


async def test_fifty_bot_messages_arrive_in_order_once_each(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-50-out")
        hid, chat_id = handoff["id"], handoff["livechat"]["chat_id"]
        for n in range(50):
            response = await env.api.post(
                f"/v1/handoffs/{hid}/messages", json={"type": "text", "text": f"user {n}"}
            )
            assert response.status_code == 202
        await env.settle(timeout=30)
        customer = next(u["id"] for u in env.chat(chat_id)["users"] if u["type"] == "customer")
        texts = [e["text"] for e in env.chat_events(chat_id) if e.get("author_id") == customer]
        assert texts == [f"user {n}" for n in range(50)]
        items = (await env.api.get(f"/v1/handoffs/{hid}/messages")).json()["items"]
        assert [m["status"] for m in items] == ["delivered"] * 50


async def test_fifty_agent_replies_reach_the_bot_in_order_once_each(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-50-in")
        hid, chat_id = handoff["id"], handoff["livechat"]["chat_id"]
        for n in range(50):
            env.sim.agent_reply(env.agents[0], chat_id, f"agent {n}")
        await env.wait_event(hid, "handoff.message", count=50, timeout=30)
        await env.settle(timeout=30)
        texts = [e["data"]["message"]["text"] for e in env.events(hid, "handoff.message")]
        assert texts == [f"agent {n}" for n in range(50)]
        assert len({e["id"] for e in env.bot.events}) == len(env.bot.events)


async def test_every_event_is_signed_and_its_webhook_id_is_the_event_id(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-sign")
        env.sim.agent_reply(env.agents[0], handoff["livechat"]["chat_id"], "signed?")
        await env.wait_event(handoff["id"], "handoff.message")
        await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        await env.settle()
        assert env.bot.types(handoff["id"]) == [
            "handoff.started",
            "handoff.queued",
            "handoff.assigned",
            "handoff.message",
            "handoff.closed",
        ]
        assert env.bot.bad_signatures == 0
        assert len(env.bot.deliveries) == len(env.bot.events)
        for delivery, event in zip(env.bot.deliveries, env.bot.events, strict=True):
            assert delivery["webhook-id"] == event["id"]
            assert delivery["webhook-signature"].startswith("v1,")
            assert event["id"].startswith("evt_")
            assert event["handoff_id"] == handoff["id"]
            assert event["conversation_id"] == "conv-sign"
            assert event["created_at"].endswith("Z")
        # the receiver really checks: a wrong secret would not verify these
        wrong = Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==")
        delivery = env.bot.deliveries[0]
        import json

        try:
            wrong.verify(json.dumps(env.bot.events[0]), delivery)
        except Exception:
            pass
        else:  # pragma: no cover - would mean signatures prove nothing
            raise AssertionError("a wrong secret verified the event")


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id(make_env: Any) -> None:
    async with make_env() as env:
        env.bot.statuses = [500, 503]
        handoff = await env.queued("conv-retry")
        await env.settle()
        ids = [d["webhook-id"] for d in env.bot.deliveries]
        first_event = env.bot.events[0]
        assert first_event["type"] == "handoff.started"
        # the first event was tried three times under one webhook-id, then accepted once
        assert ids[:3] == [first_event["id"]] * 3
        assert [e["type"] for e in env.bot.events] == ["handoff.started", "handoff.queued"]
        assert len({e["id"] for e in env.bot.events}) == 2
        assert env.bot.bad_signatures == 0
        # the handoff's later event waited for the earlier one: order is kept
        assert env.bot.events[1]["handoff_id"] == handoff["id"]


async def test_a_gone_bot_endpoint_does_not_hold_back_livechat(make_env: Any) -> None:
    async with make_env() as env:
        env.bot.statuses = [500] * 1000
        handoff = await env.start_handoff("conv-down")
        # LiveChat work does not wait for the bot's webhook
        queued = await env.wait_state(handoff["id"], "queued")
        env.sim.accept_chat(env.agents[0], queued["livechat"]["chat_id"])
        await env.wait_state(handoff["id"], "assigned")
        assert env.bot.events == []
        env.bot.statuses = []
        await env.wait_event(handoff["id"], "handoff.assigned", timeout=10)
        assert env.bot.types(handoff["id"]) == [
            "handoff.started",
            "handoff.queued",
            "handoff.assigned",
        ]


async def test_a_message_whose_thread_cannot_be_read_is_relayed_alone(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-nothread")
        body = delivery(
            env,
            handoff,
            {"id": "EV-LOST", "type": "message", "text": "orphan", "author_id": env.agents[0]},
        )
        body["payload"]["thread_id"] = "NOSUCHTHRD"
        assert (await env.post_webhook(body)).status_code == 200
        [event] = await env.wait_event(handoff["id"], "handoff.message")
        assert event["data"]["message"]["text"] == "orphan"
        await env.settle()
        assert await env.gateway.store.list_outbox(dead_only=True) == []


async def test_a_backlog_delivered_in_reverse_reaches_the_bot_in_thread_order(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agent messages recorded newest first, applied as one lane batch: the bot gets
    them in the thread's order, each once, for one read of the thread."""
    async with make_env() as env:
        handoff = await env.assigned("conv-reverse")
        hid, chat_id = handoff["id"], handoff["livechat"]["chat_id"]
        await env.settle()
        await env.gateway.relay.stop()
        webhooks = env.sim.core.webhooks.license_enabled
        saved = dict(webhooks)
        webhooks.update(dict.fromkeys(webhooks, False))  # LiveChat holds its webhooks back
        sent = [env.sim.agent_reply(env.agents[0], chat_id, f"agent {n}") for n in range(6)]
        webhooks.update(saved)
        for event in reversed(sent):
            assert (await env.post_webhook(delivery(env, handoff, event))).status_code == 200
        reads = 0
        get_chat = AgentApi.get_chat

        async def counting(self: AgentApi, *args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await get_chat(self, *args, **kwargs)

        monkeypatch.setattr(AgentApi, "get_chat", counting)
        env.gateway.relay.start()
        await env.wait_event(hid, "handoff.message", count=6, timeout=30)
        await env.settle()
        texts = [e["data"]["message"]["text"] for e in env.events(hid, "handoff.message")]
        assert texts == [f"agent {n}" for n in range(6)]
        assert reads == 1
