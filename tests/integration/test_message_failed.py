"""A bot message LiveChat refuses for good is reported to the bot, not dropped."""

from __future__ import annotations

from typing import Any

from livechat_hitl.livechat.client import Api


async def test_a_message_to_a_chat_the_agent_closed_is_reported(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-refused")
        await env.settle()
        chat_id = handoff["livechat"]["chat_id"]
        # The gateway does not hear of the close yet (webhooks off), and the agent closes.
        await env.gateway.livechat.call(
            Api.CONFIGURATION,
            "disable_license_webhooks",
            {"owner_client_id": env.sim.config.client_id},
        )
        env.sim.close_chat(chat_id, agent_id=env.agents[0])
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages",
            json={"type": "text", "text": "anyone there?", "id": "m-late"},
        )
        assert posted.status_code == 202
        await env.settle()
        failed = env.events(handoff["id"], "handoff.message_failed")
        assert len(failed) == 1
        assert failed[0]["data"]["message"] == {
            "id": posted.json()["id"],
            "client_message_id": "m-late",
        }
        assert failed[0]["data"]["error"].startswith("chat_inactive")
        messages = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        late = next(m for m in messages if m["id"] == posted.json()["id"])
        assert late["status"] == "failed"
        texts = [e.get("text") for e in env.chat_events(chat_id)]
        assert "anyone there?" not in texts
