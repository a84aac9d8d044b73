"""The handoff lifecycle as the bot sees it: every event type, both routing modes,
transfers, both close paths, and failure — gateway and simulator in-process."""

from __future__ import annotations

import asyncio
from typing import Any

AVATAR = "https://cdn.livechat-files.com/api/file/lc/avatars/{}.png"


def agent_users(env: Any, chat_id: str) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in env.chat(chat_id)["users"] if u["type"] == "agent"}


async def test_queue_then_assign_reports_started_queued_and_the_real_agent(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.start_handoff("conv-q")
        hid = handoff["id"]
        queued = await env.wait_state(hid, "queued")
        chat_id = queued["livechat"]["chat_id"]
        thread_id = queued["livechat"]["thread_id"]
        assert chat_id
        assert thread_id
        assert queued["queue"]["position"] == 1
        assert queued["agent"] is None

        [started] = await env.wait_event(hid, "handoff.started")
        assert started["data"]["livechat"] == {"chat_id": chat_id, "thread_id": thread_id}
        assert started["conversation_id"] == "conv-q"
        [queued_event] = await env.wait_event(hid, "handoff.queued")
        assert queued_event["data"]["queue"]["position"] == 1
        assert isinstance(queued_event["data"]["queue"]["wait_time"], int)

        env.sim.accept_chat(env.agents[1], chat_id)
        assigned = await env.wait_state(hid, "assigned")
        [event] = await env.wait_event(hid, "handoff.assigned")
        name = dict(env.sim.config.agents)[env.agents[1]]
        expected = {"id": env.agents[1], "name": name, "avatar_url": AVATAR.format(env.agents[1])}
        assert event["data"]["agent"] == expected
        assert assigned["agent"] == expected
        assert assigned["queue"] is None
        # never the customer, never the API account
        customer = [u for u in env.chat(chat_id)["users"] if u["type"] == "customer"]
        assert customer
        assert event["data"]["agent"]["id"] != customer[0]["id"]
        await env.settle()
        assert env.bot.types(hid) == ["handoff.started", "handoff.queued", "handoff.assigned"]


async def test_auto_routing_assigns_directly(make_env: Any) -> None:
    async with make_env(sim_overrides={"routing_mode": "auto"}) as env:
        handoff = await env.start_handoff("conv-auto")
        assigned = await env.wait_state(handoff["id"], "assigned")
        assert assigned["agent"]["id"] in env.agents
        assert assigned["agent"]["name"] == dict(env.sim.config.agents)[assigned["agent"]["id"]]
        await env.settle()
        types = env.bot.types(handoff["id"])
        assert types == ["handoff.started", "handoff.assigned"]
        assert env.bot.bad_signatures == 0


async def test_the_chat_has_the_transcript_for_agents_and_the_user_as_customer(
    make_env: Any,
) -> None:
    async with make_env() as env:
        queued = await env.queued(
            "conv-t",
            title="Refund",
            transcript=[
                {"role": "user", "text": "I want a refund"},
                {"role": "bot", "text": "Let me get a human"},
            ],
        )
        chat = env.chat(queued["livechat"]["chat_id"])
        notes = [e for t in chat["threads"] for e in t["events"] if e["type"] == "message"]
        assert notes
        assert all(e["visibility"] == "agents" for e in notes)
        joined = "\n".join(e["text"] for e in notes)
        assert "I want a refund" in joined
        assert "Let me get a human" in joined
        assert joined.index("I want a refund") < joined.index("Let me get a human")
        [customer] = [u for u in chat["users"] if u["type"] == "customer"]
        assert customer["name"] == "Ada"
        assert customer["email"] == "ada@example.com"


async def test_agent_transfer_reports_the_new_agent(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-x", agent=0)
        chat_id = handoff["livechat"]["chat_id"]
        env.sim.transfer(chat_id, agent_id=env.agents[1], by=env.agents[0])
        [event] = await env.wait_event(handoff["id"], "handoff.transferred")
        assert event["data"]["agent"]["id"] == env.agents[1]
        assert event["data"]["agent"]["name"] == dict(env.sim.config.agents)[env.agents[1]]
        assert event["data"]["group_ids"] == [0]
        current = await env.handoff(handoff["id"])
        assert current["state"] == "assigned"
        assert current["agent"]["id"] == env.agents[1]
        # the new agent's words reach the bot with the new agent's name
        env.sim.agent_reply(env.agents[1], chat_id, "I take over")
        [message] = await env.wait_event(handoff["id"], "handoff.message")
        assert message["data"]["agent"]["id"] == env.agents[1]


async def test_group_transfer_reports_the_groups_and_queues(make_env: Any) -> None:
    async with make_env(sim_overrides={"other_groups": {7: "Billing"}}) as env:
        handoff = await env.assigned("conv-g", agent=0)
        chat_id = handoff["livechat"]["chat_id"]
        env.sim.transfer(chat_id, group_id=7, by=env.agents[0])
        [event] = await env.wait_event(handoff["id"], "handoff.transferred")
        assert event["data"]["group_ids"] == [7]
        current = await env.wait_state(handoff["id"], "queued")
        assert current["group_id"] == 7
        assert current["agent"] is None
        # someone of the new group takes it
        env.sim.add_agent("carol@sandbox.example", "Carol", group_ids=[7])
        env.sim.accept_chat("carol@sandbox.example", chat_id)
        assigned = await env.wait_state(handoff["id"], "assigned")
        assert assigned["agent"]["id"] == "carol@sandbox.example"
        assert assigned["agent"]["name"] == "Carol"


async def test_agent_close_reports_agent_closed(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-ac")
        env.sim.close_chat(handoff["livechat"]["chat_id"], agent_id=env.agents[0])
        closed = await env.wait_state(handoff["id"], "closed")
        assert closed["close_reason"] == "agent_closed"
        assert closed["closed_at"]
        [event] = await env.wait_event(handoff["id"], "handoff.closed")
        assert event["data"] == {"reason": "agent_closed"}
        # the closed handoff refuses messages; a new handoff of the conversation is allowed
        refused = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": "hi"}
        )
        assert refused.status_code == 409


async def test_router_close_reports_livechat_closed(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.queued("conv-rc")
        env.sim.close_chat(handoff["livechat"]["chat_id"])
        closed = await env.wait_state(handoff["id"], "closed")
        assert closed["close_reason"] == "livechat_closed"
        [event] = await env.wait_event(handoff["id"], "handoff.closed")
        assert event["data"] == {"reason": "livechat_closed"}


async def test_bot_close_reports_bot_closed_and_deactivates_the_chat(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-bc")
        chat_id = handoff["livechat"]["chat_id"]
        response = await env.api.post(f"/v1/handoffs/{handoff['id']}/close", json={})
        assert response.status_code == 200
        assert response.json()["close_reason"] == "bot_closed"
        await env.settle()
        assert env.chat(chat_id)["threads"][-1]["active"] is False
        assert [e["data"] for e in env.events(handoff["id"], "handoff.closed")] == [
            {"reason": "bot_closed"}
        ]
        # LiveChat's own chat_deactivated (caused by our close) is not a second close
        assert (await env.handoff(handoff["id"]))["close_reason"] == "bot_closed"


async def test_unknown_group_fails_the_handoff_and_tells_the_bot(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.start_handoff("conv-f", group_id=4242)
        failed = await env.wait_state(handoff["id"], "failed")
        assert failed["close_reason"] == "failed"
        assert failed["error"]["type"] == "group_not_found"
        assert failed["error"]["message"]
        [event] = await env.wait_event(handoff["id"], "handoff.failed")
        assert event["data"]["error"] == failed["error"]
        await env.settle()
        assert env.sim.list_chats() == []  # LiveChat refused before creating anything
        assert "handoff.started" not in env.bot.types(handoff["id"])
        # a failed handoff does not block the conversation
        again = await env.api.post(
            "/v1/handoffs", json={"conversation_id": "conv-f", "user": {"id": "u"}}
        )
        assert again.status_code == 201
        assert again.json()["id"] != handoff["id"]


async def test_a_refusal_after_the_chat_exists_deactivates_that_chat(make_env: Any) -> None:
    # The LiveChat app is gone (its client id no longer belongs to the organization): the
    # chat is created with the agent token, then LiveChat refuses the customer identity.
    # The handoff fails, and the created chat must not be left open.
    async with make_env() as env:
        env.sim.config.client_id = "f" * 32
        handoff = await env.start_handoff("conv-orphan")
        failed = await env.wait_state(handoff["id"], "failed")
        assert failed["error"]["type"]
        [event] = await env.wait_event(handoff["id"], "handoff.failed")
        assert event["data"]["error"]["type"] == failed["error"]["type"]
        await env.settle()
        [chat] = env.sim.list_chats()
        assert failed["livechat"]["chat_id"] == chat["id"]
        assert all(not t["active"] for t in chat["threads"])
        assert env.bot.types(handoff["id"]) == ["handoff.started", "handoff.failed"]


async def test_the_gateway_stops_at_once_right_after_a_commit(make_env: Any) -> None:
    # The relay's wait can swallow the stop's cancellation when a commit's wake-up lands
    # at the same moment (Python 3.11 wait_for); the stop must not sleep on for a minute.
    for attempt in range(3):
        async with make_env() as env:
            await env.start_handoff(f"conv-stop-{attempt}")
            leaving = asyncio.get_running_loop().time()
            await env.gateway.relay.stop()
            assert asyncio.get_running_loop().time() - leaving < 2.0


async def test_a_commit_before_the_relays_first_wait_is_not_slept_through(
    make_env: Any,
) -> None:
    # The relay claims (nothing yet), asks when the next row is due, then waits on the
    # notifier. A handoff committed in between must wake it, not wait for idle_wait.
    async with make_env(run_relay=False) as env:
        store = env.gateway.store
        original = store.next_due_at
        started: list[dict[str, Any]] = []

        async def commit_meanwhile(targets: Any, **kw: Any) -> Any:
            due = await original(targets, **kw)  # nothing is due: the relay will sleep long
            if not started:
                started.append(await env.start_handoff("conv-first-wait"))
            return due

        store.next_due_at = commit_meanwhile  # type: ignore[method-assign]
        env.gateway.relay.start()
        await env.wait_for(lambda: started)
        await env.wait_state(started[0]["id"], "queued", timeout=5)
