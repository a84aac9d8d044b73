"""`POST /livechat/webhooks`, row by row of CONTRACT §2, against a live gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from livechat_hitl.domain.models import OutboxTarget

MIB = 1024 * 1024


async def outbox_rows(env: Any, target: OutboxTarget | None = None) -> list[Any]:
    rows = await env.gateway.store.list_outbox(limit=1000)
    return [r for r in rows if target is None or r.target == target]


def secret(env: Any) -> str:
    value: str = env.gateway.settings.livechat_webhook_secret.get_secret_value()
    return value


def agent_message(env: Any, handoff: dict[str, Any], text: str, event_id: str) -> dict[str, Any]:
    """A delivery of an agent's message in the handoff's chat, shaped as LiveChat sends it."""
    return {
        "webhook_id": "wh-test",
        "secret_key": secret(env),
        "action": "incoming_event",
        "organization_id": env.sim.config.organization_id,
        "payload": {
            "chat_id": handoff["livechat"]["chat_id"],
            "thread_id": handoff["livechat"]["thread_id"],
            "event": {
                "id": event_id,
                "created_at": "2026-01-01T00:00:00.000000Z",
                "visibility": "all",
                "type": "message",
                "text": text,
                "author_id": handoff["agent"]["id"],
            },
        },
        "additional_data": {},
    }


async def assert_nothing_stored(env: Any, before: int) -> None:
    await asyncio.sleep(0.05)  # let a wrongly accepted delivery reach the relay
    assert len(await outbox_rows(env, OutboxTarget.INBOUND)) == before


async def test_wrong_missing_secret_or_other_organization_is_401_and_nothing_stored(
    make_env: Any,
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-auth")
        await env.settle()
        before = len(await outbox_rows(env, OutboxTarget.INBOUND))
        good = agent_message(env, handoff, "forged", "EV-AUTH")
        wrong = {**good, "secret_key": secret(env) + "x"}
        missing = {k: v for k, v in good.items() if k != "secret_key"}
        not_a_string = {**good, "secret_key": 12345}
        other_org = {**good, "organization_id": "00000000-0000-4000-8000-000000000000"}
        no_org = {k: v for k, v in good.items() if k != "organization_id"}
        for body in (wrong, missing, not_a_string, other_org, no_org):
            response = await env.post_webhook(body)
            assert response.status_code == 401, body
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == 401
        await assert_nothing_stored(env, before)
        assert env.events(handoff["id"], "handoff.message") == []
        # the untouched delivery is accepted, proving the forged ones differed only there
        assert (await env.post_webhook(good)).status_code == 200
        await env.wait_event(handoff["id"], "handoff.message")


async def test_not_json_or_not_an_object_is_400_and_nothing_stored(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-400")
        await env.settle()
        before = len(await outbox_rows(env, OutboxTarget.INBOUND))
        for content in (b"not json", b"{", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b""):
            response = await env.post_webhook(None, content=content)
            assert response.status_code == 400, content
            assert response.json()["status"] == 400
        # an object whose payload is not an object is refused too
        bad = {**agent_message(env, handoff, "x", "EV-400"), "payload": [1]}
        assert (await env.post_webhook(bad)).status_code == 400
        await assert_nothing_stored(env, before)


async def test_body_over_one_mib_is_413_and_nothing_stored(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-413")
        await env.settle()
        before = len(await outbox_rows(env, OutboxTarget.INBOUND))
        big = agent_message(env, handoff, "x" * (MIB + 10), "EV-BIG")
        content = json.dumps(big).encode()
        assert len(content) > MIB

        declared = await env.post_webhook(None, content=content)
        assert declared.status_code == 413
        assert declared.json()["status"] == 413

        # a lying Content-Length must not let the body through
        lying = await env.post_webhook(None, content=content, headers={"Content-Length": "100"})
        assert lying.status_code == 413

        # no Content-Length at all: a chunked body, counted as it streams
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(content), 64 * 1024):
                yield content[start : start + 64 * 1024]

        chunked = await env.api.post(
            "/livechat/webhooks",
            content=chunks(),
            headers={"Content-Type": "application/json", "Authorization": ""},
        )
        assert chunked.status_code == 413
        await assert_nothing_stored(env, before)
        assert env.events(handoff["id"], "handoff.message") == []
        # just under the limit is fine
        small = agent_message(env, handoff, "y" * (MIB - 2000), "EV-SMALL")
        assert (await env.post_webhook(small)).status_code == 200


async def test_valid_delivery_is_recorded_before_the_200_and_applied_by_the_relay(
    make_env: Any,
) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-durable")
        await env.settle()
        await env.gateway.relay.stop()
        before = await outbox_rows(env, OutboxTarget.INBOUND)
        started = asyncio.get_running_loop().time()
        response = await env.post_webhook(agent_message(env, handoff, "Recorded?", "EV-DUR"))
        assert response.status_code == 200
        assert asyncio.get_running_loop().time() - started < 10
        after = await outbox_rows(env, OutboxTarget.INBOUND)
        [new] = [r for r in after if r.id not in {b.id for b in before}]
        assert str(new.status) == "pending"
        assert new.handoff_id == handoff["id"]
        assert new.payload["payload"]["event"]["text"] == "Recorded?"
        assert env.events(handoff["id"], "handoff.message") == []
        env.gateway.relay.start()
        [event] = await env.wait_event(handoff["id"], "handoff.message")
        assert event["data"]["message"]["text"] == "Recorded?"


async def test_relay_off_from_the_start_records_every_simulator_delivery(make_env: Any) -> None:
    async with make_env(run_relay=False) as env:
        handoff = await env.start_handoff("conv-norelay")
        # drive the start (the only row) by hand; LiveChat's webhooks only get recorded
        assert await env.gateway.relay.run_once() == 1
        await env.sim.drain()
        inbound = await outbox_rows(env, OutboxTarget.INBOUND)
        assert {r.kind for r in inbound} >= {"chat_transferred"}
        assert all(str(r.status) == "pending" for r in inbound)
        assert (await env.handoff(handoff["id"]))["state"] == "requested"
        env.gateway.relay.start()
        await env.wait_state(handoff["id"], "queued")


async def test_the_same_delivery_again_has_one_effect(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-dup")
        await env.settle()
        body = agent_message(env, handoff, "once", "EV-ONCE")
        for _ in range(3):
            assert (await env.post_webhook(body)).status_code == 200
        await env.settle()
        assert [
            e["data"]["message"]["text"] for e in env.events(handoff["id"], "handoff.message")
        ] == ["once"]


async def test_identical_deliveries_at_once_have_one_effect(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-dup2")
        await env.settle()
        body = agent_message(env, handoff, "racing", "EV-RACE")
        answers = await asyncio.gather(*(env.post_webhook(body) for _ in range(5)))
        assert [a.status_code for a in answers] == [200] * 5
        await env.settle()
        assert len(env.events(handoff["id"], "handoff.message")) == 1
        messages = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        assert [m["text"] for m in messages if m["direction"] == "to_bot"] == ["racing"]


async def test_simulator_duplicates_have_one_effect(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-simdup")
        chat_id = handoff["livechat"]["chat_id"]
        await env.settle()
        env.sim.duplicate_webhooks(count=10, concurrent=True)
        env.sim.agent_reply(env.agents[0], chat_id, "first")
        env.sim.agent_reply(env.agents[0], chat_id, "second")
        env.sim.close_chat(chat_id, agent_id=env.agents[0])
        await env.wait_state(handoff["id"], "closed")
        await env.settle()
        copies = [d for d in env.sim.deliveries() if d["copy"] == 2]
        assert copies, "the simulator should have delivered duplicates"
        types = env.bot.types(handoff["id"])
        assert types.count("handoff.message") == 2
        assert types.count("handoff.closed") == 1
        texts = [e["data"]["message"]["text"] for e in env.events(handoff["id"], "handoff.message")]
        # concurrent copies may overtake each other: each message once, in any order
        assert sorted(texts) == ["first", "second"]


async def test_unused_actions_and_foreign_chats_are_200_and_ignored(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-ignore")
        await env.settle()
        before = len(await outbox_rows(env, OutboxTarget.INBOUND))
        events_before = len(env.bot.events)
        unused = {
            **agent_message(env, handoff, "x", "EV-U"),
            "action": "chat_properties_updated",
            "payload": {"chat_id": handoff["livechat"]["chat_id"], "properties": {}},
        }
        assert (await env.post_webhook(unused)).status_code == 200
        unknown = {**unused, "action": "some_future_action", "payload": {"whatever": 1}}
        assert (await env.post_webhook(unknown)).status_code == 200
        foreign = agent_message(env, handoff, "not ours", "EV-F")
        foreign["payload"]["chat_id"] = "NOTOURCHAT"
        assert (await env.post_webhook(foreign)).status_code == 200
        await assert_nothing_stored(env, before)
        await env.settle()
        assert len(env.bot.events) == events_before


async def test_a_chat_started_elsewhere_in_livechat_is_ignored(make_env: Any) -> None:
    # A customer chat the gateway did not create: its real webhooks reach the door.
    async with make_env(sim_overrides={"routing_mode": "auto"}) as env:
        agent_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=env.sim.app), base_url=env.sim.config.base_url
        )
        async with agent_client:
            token = env.sim.config.agent_token
            started = await agent_client.post(
                "/v3.6/agent/action/start_chat",
                json={"chat": {"access": {"group_ids": [0]}}},
                headers={"Authorization": f"Basic {token}"},
            )
            assert started.status_code == 200, started.text
            chat_id = started.json()["chat_id"]
        env.sim.transfer(chat_id, agent_id=env.agents[0])
        env.sim.agent_reply(env.agents[0], chat_id, "hello stranger")
        env.sim.close_chat(chat_id, agent_id=env.agents[0])
        await env.settle()
        delivered = [
            d for d in env.sim.deliveries() if d["body"]["payload"].get("chat_id") == chat_id
        ]
        assert delivered
        assert all(d["outcome"] == "delivered" for d in delivered)
        assert all(d["attempts"][-1]["status"] == 200 for d in delivered)
        assert await outbox_rows(env, OutboxTarget.INBOUND) == []
        assert env.bot.events == []
        assert (await env.api.get("/v1/handoffs")).json()["items"] == []


async def test_other_methods_are_405_naming_post(make_env: Any) -> None:
    async with make_env() as env:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            response = await env.api.request(method, "/livechat/webhooks")
            assert response.status_code == 405, method
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["allow"] == "POST"
        operation = (await env.api.get("/openapi.json")).json()["paths"]["/livechat/webhooks"]
        assert set(operation) == {"post"}
        assert {"200", "400", "401", "413"} <= set(operation["post"]["responses"])


async def test_the_router_path_answers_like_the_door(make_env: Any) -> None:
    # Under a root_path the app leaves the request to its router, whose route serves it
    # through the same door: the same answers, the same single effect.
    async with make_env() as env:
        handoff = await env.assigned("conv-router")
        await env.settle()
        routed = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=env.app, root_path="/behind-a-proxy"),
            base_url="http://gateway.test",
        )
        good = agent_message(env, handoff, "via the router", "EV-ROUTER")
        cases: list[tuple[Any, bytes | None]] = [
            (good, None),
            (good, None),  # again: no second effect
            ({**good, "secret_key": "wrong"}, None),
            (None, b"not json"),
            (None, json.dumps(agent_message(env, handoff, "x" * MIB, "EV-R-BIG")).encode()),
        ]
        statuses = []
        async with routed:
            for body, content in cases:
                content = content if content is not None else json.dumps(body).encode()
                direct = await env.post_webhook(None, content=content)
                via_router = await routed.post(
                    "/livechat/webhooks",
                    content=content,
                    headers={"Content-Type": "application/json"},
                )
                assert via_router.status_code == direct.status_code
                assert via_router.headers["content-type"] == direct.headers["content-type"]
                assert via_router.content == direct.content
                statuses.append(direct.status_code)
        assert statuses == [200, 200, 401, 400, 413]
        await env.settle()
        texts = [e["data"]["message"]["text"] for e in env.events(handoff["id"], "handoff.message")]
        assert texts == ["via the router"]
