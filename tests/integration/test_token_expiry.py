"""A customer token LiveChat no longer accepts (8 hours passed): the gateway renews it
(same customer, through the kept cookies) and the message goes out, once."""

from __future__ import annotations

from typing import Any


async def test_a_message_after_eight_hours_renews_the_customer_token_and_is_sent_once(
    make_env: Any,
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-token")
        chat_id = handoff["livechat"]["chat_id"]
        before = await env.gateway.store.get_identity(handoff["user"]["id"])
        assert before is not None
        env.sim.clock.advance(8 * 3600 + 60)  # LiveChat's customer tokens last 8 h
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": "still here"}
        )
        assert posted.status_code == 202, posted.text
        await env.settle()
        events = [e for e in env.chat_events(chat_id) if e.get("text") == "still here"]
        assert len(events) == 1
        customer = next(u for u in env.chat(chat_id)["users"] if u["type"] == "customer")
        assert events[0]["author_id"] == customer["id"] == before.customer_id
        after = await env.gateway.store.get_identity(handoff["user"]["id"])
        assert after is not None
        assert after.access_token != before.access_token
        items = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        assert [m["status"] for m in items if m["text"] == "still here"] == ["delivered"]
