"""A LiveChat call that took effect but whose outcome the gateway never recorded (a crash
right after it, or an answer lost on the way back): the retry recognises what LiveChat
already has instead of doing it twice (issue 4: crash safety).

The "crash" is a sink that raises right after the LiveChat call returned: the relay
counts the try as an attempt (`attempts > 0`) and retries the row, exactly as after a
SIGKILL whose lease ran out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from livechat_hitl.livechat.agent import AgentApi
from livechat_hitl.livechat.customer import CustomerApi


class Crash(RuntimeError):
    pass


def crash_after(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str, times: int = 1) -> list[Any]:
    """`cls.name` does its work, then raises `Crash` (the first `times` calls)."""
    original = getattr(cls, name)
    results: list[Any] = []

    async def crashing(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        results.append(result)
        if len(results) <= times:
            raise Crash(f"crashed after {name} returned")
        return result

    monkeypatch.setattr(cls, name, crashing)
    return results


async def drive(env: Any, until: Any, rounds: int = 200) -> None:
    """Run the relay pass by pass (retries are due within milliseconds)."""
    for _ in range(rounds):
        await env.gateway.relay.run_once()
        await env.sim.drain()
        if await until():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the relay never got there")


async def test_a_start_interrupted_after_start_chat_leaves_no_orphan_chat(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_env(run_relay=False) as env:
        started = crash_after(monkeypatch, AgentApi, "start_chat")
        handoff = await env.start_handoff(
            "conv-crash-start", transcript=[{"role": "user", "text": "hello"}]
        )

        async def queued() -> bool:
            return (await env.handoff(handoff["id"]))["state"] == "queued"

        await drive(env, queued)
        chats = env.sim.list_chats()
        assert len(started) == 1  # the retry found the chat instead of starting another
        assert len(chats) == 1
        current = await env.handoff(handoff["id"])
        assert current["livechat"]["chat_id"] == chats[0]["id"] == started[0].chat_id
        users = {u["type"] for u in chats[0]["users"]}
        assert "customer" in users  # the start resumed where it stopped

        async def drained() -> bool:
            return bool(await env.gateway.store.outbox_backlog() == 0)

        await drive(env, drained)
        assert env.bot.types(handoff["id"]).count("handoff.started") == 1


async def test_a_second_handoff_start_does_not_adopt_another_handoffs_chat(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_env(run_relay=False) as env:
        first = await env.start_handoff("conv-a")
        await drive(env, lambda: _state(env, first["id"], "queued"))
        crash_after(monkeypatch, AgentApi, "start_chat")
        second = await env.start_handoff("conv-b")
        await drive(env, lambda: _state(env, second["id"], "queued"))
        a, b = await env.handoff(first["id"]), await env.handoff(second["id"])
        assert a["livechat"]["chat_id"] != b["livechat"]["chat_id"]
        assert len(env.sim.list_chats()) == 2


async def _state(env: Any, handoff_id: str, state: str) -> bool:
    return (await env.handoff(handoff_id))["state"] == state


async def test_a_send_whose_answer_was_lost_is_not_posted_twice(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-crash-send")
        chat_id = handoff["livechat"]["chat_id"]
        sent = crash_after(monkeypatch, CustomerApi, "send_event")
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": "only once"}
        )
        assert posted.status_code == 202, posted.text
        await env.settle()
        events = [e for e in env.chat_events(chat_id) if e.get("text") == "only once"]
        assert len(sent) == 1
        assert len(events) == 1
        messages = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        mine = [m for m in messages if m["text"] == "only once"]
        assert mine[0]["status"] == "delivered"


async def test_a_long_text_interrupted_midway_sends_only_the_missing_pieces(
    make_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-crash-long")
        chat_id = handoff["livechat"]["chat_id"]
        sent = crash_after(monkeypatch, CustomerApi, "send_event")  # after piece 0
        text = " ".join(f"word{n:05d}" for n in range(5000))  # ~50 KB: four pieces
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": text}
        )
        assert posted.status_code == 202, posted.text
        await env.settle()
        events = env.chat_events(chat_id)
        row_id = events[-1]["custom_id"].rsplit(":", 1)[0]  # the message's outbox row
        pieces = [e for e in events if str(e.get("custom_id", "")).startswith(f"{row_id}:")]
        custom_ids = [e["custom_id"] for e in pieces]
        assert len(custom_ids) == len(set(custom_ids)) >= 3
        assert "".join(e["text"] for e in pieces).split() == text.split()
        assert len(sent) == len(pieces)
