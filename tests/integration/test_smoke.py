"""The whole loop once: start → queue → accept → messages both ways → close."""

from __future__ import annotations

from typing import Any


async def test_whole_handoff_loop(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.start_handoff(
            "conv-42", title="Refund", transcript=[{"role": "user", "text": "refund please"}]
        )
        assert handoff["state"] == "requested"
        queued = await env.wait_state(handoff["id"], "queued")
        chat_id = queued["livechat"]["chat_id"]
        assert chat_id
        env.sim.accept_chat(env.agents[0], chat_id)
        assigned = await env.wait_state(handoff["id"], "assigned")
        assert assigned["agent"]["id"] == env.agents[0]
        env.sim.agent_reply(env.agents[0], chat_id, "Hello Ada")
        await env.wait_for(lambda: "handoff.message" in env.bot.types(), what="agent reply")
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": "Thanks"}
        )
        assert posted.status_code == 202
        closed = await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        assert closed.json()["state"] == "closed"
        await env.settle()
        assert env.bot.types(handoff["id"]) == [
            "handoff.started",
            "handoff.queued",
            "handoff.assigned",
            "handoff.message",
            "handoff.closed",
        ]
        assert env.bot.bad_signatures == 0
        texts = [e.get("text") for e in env.chat_events(chat_id) if e["type"] == "message"]
        assert "Thanks" in texts
        assert env.chat(chat_id)["threads"][-1]["active"] is False
