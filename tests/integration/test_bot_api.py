"""The bot-facing REST API v1, row by row of CONTRACT §3, against gateway + simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

USER = {"id": "u-1", "name": "Ada", "email": "ada@example.com"}
FILE_URL = "http://files.test/invoice.pdf"
PDF = b"%PDF-1.4 pretend invoice\n"


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["title"]
    assert body["detail"]
    return body


def customer_of(env: Any, chat_id: str) -> str:
    [customer] = [u["id"] for u in env.chat(chat_id)["users"] if u["type"] == "customer"]
    return str(customer)


def customer_messages(env: Any, chat_id: str) -> list[dict[str, Any]]:
    customer = customer_of(env, chat_id)
    return [e for e in env.chat_events(chat_id) if e.get("author_id") == customer]


async def post_text(env: Any, handoff_id: str, text: str, **extra: Any) -> httpx.Response:
    return await env.api.post(
        f"/v1/handoffs/{handoff_id}/messages", json={"type": "text", "text": text, **extra}
    )


async def test_every_endpoint_needs_a_valid_api_key(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.start_handoff("conv-key")
        hid = handoff["id"]
        calls = [
            ("POST", "/v1/handoffs", {"conversation_id": "c", "user": {"id": "u"}}),
            ("GET", "/v1/handoffs", None),
            ("GET", f"/v1/handoffs/{hid}", None),
            ("POST", f"/v1/handoffs/{hid}/messages", {"type": "text", "text": "x"}),
            ("GET", f"/v1/handoffs/{hid}/messages", None),
            ("POST", f"/v1/handoffs/{hid}/close", {}),
            ("GET", "/v1/availability", None),
            ("GET", "/v1/events", None),
        ]
        async with httpx.AsyncClient(
            transport=env.api._transport, base_url=str(env.api.base_url)
        ) as anonymous:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                for method, path, body in calls:
                    response = await anonymous.request(method, path, json=body, headers=headers)
                    is_problem(response, 401)
                    assert response.headers["www-authenticate"].lower().startswith("bearer")
        await env.settle()
        # nothing above had an effect
        current = await env.handoff(hid)
        assert current["state"] == "queued"
        assert (await env.api.get("/v1/handoffs")).json()["items"] == [current]


async def test_start_is_idempotent_per_conversation(make_env: Any) -> None:
    async with make_env() as env:
        body = {"conversation_id": "conv-idem", "user": USER, "title": "Help"}
        first = await env.api.post("/v1/handoffs", json=body)
        assert first.status_code == 201
        created = first.json()
        assert created["state"] == "requested"
        assert created["conversation_id"] == "conv-idem"
        assert created["user"] == {**USER, "avatar_url": None}
        assert created["group_id"] == env.sim.config.group_id
        assert created["livechat"] == {"chat_id": None, "thread_id": None}
        await env.wait_state(created["id"], "queued")
        again = await env.api.post("/v1/handoffs", json={**body, "title": "Other"})
        assert again.status_code == 200
        assert again.json()["id"] == created["id"]
        assert again.json()["state"] == "queued"
        await env.settle()
        assert len(env.sim.list_chats()) == 1


async def test_concurrent_starts_make_one_handoff_and_one_chat(make_env: Any) -> None:
    async with make_env() as env:
        body = {"conversation_id": "conv-race", "user": USER}
        answers = await asyncio.gather(*(env.api.post("/v1/handoffs", json=body) for _ in range(5)))
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
        assert len({a.json()["id"] for a in answers}) == 1
        await env.wait_state(answers[0].json()["id"], "queued")
        await env.settle()
        assert len(env.sim.list_chats()) == 1
        listed = (await env.api.get("/v1/handoffs?conversation_id=conv-race")).json()["items"]
        assert len(listed) == 1
        assert env.bot.types().count("handoff.started") == 1


async def test_a_new_handoff_after_the_previous_one_closed(make_env: Any) -> None:
    async with make_env() as env:
        first = await env.queued("conv-again")
        closed = await env.api.post(f"/v1/handoffs/{first['id']}/close")
        assert closed.status_code == 200
        second = await env.api.post(
            "/v1/handoffs",
            json={"conversation_id": "conv-again", "user": {"id": "user-conv-again"}},
        )
        assert second.status_code == 201
        assert second.json()["id"] != first["id"]
        queued = await env.wait_state(second.json()["id"], "queued")
        assert queued["livechat"]["chat_id"]
        await env.settle()
        chats = env.sim.list_chats()
        active = [c for c in chats if any(t["active"] for t in c["threads"])]
        assert len(active) == 1
        assert active[0]["id"] == queued["livechat"]["chat_id"]
        # the same end user is the same LiveChat customer both times
        customers = {customer_of(env, c["id"]) for c in chats}
        assert len(customers) == 1


async def test_bad_start_bodies_are_422_naming_the_fields(make_env: Any) -> None:
    async with make_env() as env:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"user": {"id": "u"}}, "conversation_id"),
            ({"conversation_id": "c", "user": {"name": "Ada"}}, "user.id"),
            ({"conversation_id": "c"}, "user"),
            (
                {"conversation_id": "c", "user": {"id": "u"}, "metadata": {"k": "v" * 5000}},
                "metadata",
            ),
            (
                {
                    "conversation_id": "c",
                    "user": {"id": "u"},
                    "metadata": {"nested": {"not": "flat"}},
                },
                "metadata.nested",
            ),
            (
                {
                    "conversation_id": "c",
                    "user": {"id": "u"},
                    "transcript": [{"role": "agent", "text": "hi"}],
                },
                "transcript.0.role",
            ),
            (
                {
                    "conversation_id": "c",
                    "user": {"id": "u"},
                    "transcript": [{"role": "user", "text": "ok"}, {"role": "bot", "text": ""}],
                },
                "transcript.1.text",
            ),
            ({"conversation_id": "c", "user": {"id": "u"}, "colour": "red"}, "colour"),
            ({"conversation_id": "c", "user": {"id": "u", "shoe": 42}}, "user.shoe"),
            ({"conversation_id": "c", "user": {"id": "u", "email": "nope"}}, "user.email"),
            ({"conversation_id": "c", "user": {"id": "u"}, "group_id": -1}, "group_id"),
        ]
        for body, field in cases:
            response = await env.api.post("/v1/handoffs", json=body)
            problem = is_problem(response, 422)
            named = {e["field"] for e in problem["errors"]}
            assert any(n == field or n.startswith(field + ".") for n in named), (field, problem)
            assert field.split(".")[0] in problem["detail"]
        # metadata of exactly 4 KB is fine
        fits = {"k": "v" * (4096 - len('{"k":""}'))}
        ok = await env.api.post(
            "/v1/handoffs", json={"conversation_id": "c4k", "user": {"id": "u"}, "metadata": fits}
        )
        assert ok.status_code == 201
        assert ok.json()["metadata"] == fits
        await env.settle()
        assert [
            h["conversation_id"] for h in (await env.api.get("/v1/handoffs")).json()["items"]
        ] == ["c4k"]


async def test_bad_message_bodies_are_422_naming_the_fields(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.queued("conv-422m")
        path = f"/v1/handoffs/{handoff['id']}/messages"
        cases: list[tuple[Any, str]] = [
            ({"type": "text", "text": ""}, "text"),
            ({"type": "text"}, "text"),
            ({"type": "text", "text": "x", "extra": 1}, "extra"),
            ({"type": "file"}, "url"),
            ({"type": "file", "url": "not a url"}, "url"),
            ({"type": "video", "url": "http://files.test/x"}, "type"),
            ({"type": "text", "text": "x", "id": ""}, "id"),
            ({"text": "no type"}, "type"),
        ]
        for body, field in cases:
            problem = is_problem(await env.api.post(path, json=body), 422)
            named = {e["field"] for e in problem["errors"]}
            assert any(n == field or n.endswith("." + field) for n in named), (field, problem)
        is_problem(
            await env.api.post(path, content=b"{", headers={"Content-Type": "application/json"}),
            400,
        )
        await env.settle()
        assert (await env.api.get(path)).json()["items"] == []


async def test_get_one_and_404(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.start_handoff("conv-get")
        got = await env.api.get(f"/v1/handoffs/{handoff['id']}")
        assert got.status_code == 200
        assert got.json()["id"] == handoff["id"]
        for path in (
            "/v1/handoffs/ho_nope",
            "/v1/handoffs/ho_nope/messages",
        ):
            is_problem(await env.api.get(path), 404)
        is_problem(await env.api.post("/v1/handoffs/ho_nope/close"), 404)
        is_problem(await post_text(env, "ho_nope", "hi"), 404)


async def test_list_filters_and_pages(make_env: Any) -> None:
    async with make_env() as env:
        ids = []
        for n in range(7):
            ids.append((await env.start_handoff(f"conv-list-{n}"))["id"])
        await env.settle()
        closed = await env.api.post(f"/v1/handoffs/{ids[2]}/close")
        assert closed.status_code == 200

        one = (await env.api.get("/v1/handoffs", params={"conversation_id": "conv-list-3"})).json()
        assert [h["id"] for h in one["items"]] == [ids[3]]
        assert one["next_cursor"] is None

        by_state = (await env.api.get("/v1/handoffs", params={"state": "closed"})).json()
        assert [h["id"] for h in by_state["items"]] == [ids[2]]
        queued = (await env.api.get("/v1/handoffs", params={"state": "queued"})).json()
        assert sorted(h["id"] for h in queued["items"]) == sorted(set(ids) - {ids[2]})
        assert all(h["state"] == "queued" for h in queued["items"])

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = (await env.api.get("/v1/handoffs", params=params)).json()
            assert len(page["items"]) <= 3
            seen += [h["id"] for h in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))

        # filters and paging together
        first = (await env.api.get("/v1/handoffs", params={"state": "queued", "limit": 4})).json()
        rest = (
            await env.api.get(
                "/v1/handoffs",
                params={"state": "queued", "limit": 4, "cursor": first["next_cursor"]},
            )
        ).json()
        assert len(first["items"]) == 4
        assert len(rest["items"]) == 2
        assert rest["next_cursor"] is None

        is_problem(await env.api.get("/v1/handoffs", params={"cursor": "garbage"}), 422)
        is_problem(await env.api.get("/v1/handoffs", params={"state": "sleeping"}), 422)
        is_problem(await env.api.get("/v1/handoffs", params={"limit": 0}), 422)


async def test_bot_messages_reach_livechat_as_the_customer(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-msg")
        chat_id = handoff["livechat"]["chat_id"]
        posted = await post_text(env, handoff["id"], "My order is 42")
        assert posted.status_code == 202
        accepted = posted.json()
        assert accepted["handoff_id"] == handoff["id"]
        assert accepted["status"] == "queued"
        assert accepted["id"]
        await env.settle()
        [event] = customer_messages(env, chat_id)
        assert event["text"] == "My order is 42"
        assert event["visibility"] == "all"
        # the customer is the end user, not the gateway's API agent
        assert customer_of(env, chat_id) != env.sim.config.account_id
        # the bot never hears its own message back
        assert env.events(handoff["id"], "handoff.message") == []


async def test_a_repeated_client_message_id_is_accepted_once(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-cid")
        answers = [await post_text(env, handoff["id"], "only once", id="m-1") for _ in range(3)]
        answers += await asyncio.gather(
            *(post_text(env, handoff["id"], "only once", id="m-1") for _ in range(3))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1
        other = await post_text(env, handoff["id"], "another", id="m-2")
        assert other.json()["id"] != answers[0].json()["id"]
        await env.settle()
        texts = [e["text"] for e in customer_messages(env, handoff["livechat"]["chat_id"])]
        assert texts == ["only once", "another"]


async def test_messages_to_a_closed_or_failed_handoff_are_409(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.queued("conv-409")
        await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        is_problem(await post_text(env, handoff["id"], "too late"), 409)
        file = {"type": "file", "url": FILE_URL}
        is_problem(await env.api.post(f"/v1/handoffs/{handoff['id']}/messages", json=file), 409)

        failed = await env.start_handoff("conv-409f", group_id=999)
        await env.wait_state(failed["id"], "failed")
        is_problem(await post_text(env, failed["id"], "anyone?"), 409)
        await env.settle()
        assert [
            e
            for e in env.chat_events(handoff["livechat"]["chat_id"])
            if e.get("text") == "too late"
        ] == []


async def test_file_messages_are_uploaded_into_the_chat(make_env: Any) -> None:
    async with make_env() as env:
        env.files["invoice.pdf"] = (PDF, "application/pdf")
        handoff = await env.assigned("conv-file")
        chat_id = handoff["livechat"]["chat_id"]
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages",
            json={"type": "file", "url": FILE_URL, "name": "invoice.pdf"},
        )
        assert posted.status_code == 202
        await env.settle()
        [event] = customer_messages(env, chat_id)
        assert event["type"] == "file"
        assert event["name"] == "invoice.pdf"
        assert event["content_type"] == "application/pdf"
        stored = env.sim.core.files.by_url(event["url"])
        assert stored is not None
        assert stored.content == PDF
        [message] = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        assert message["type"] == "file"
        assert message["status"] == "delivered"


async def test_a_refused_file_fails_that_message_only(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-badfile")
        chat_id = handoff["livechat"]["chat_id"]
        path = f"/v1/handoffs/{handoff['id']}/messages"
        # Known at POST time: a non-public address is a 422 naming the url.
        outside = await env.api.post(
            path, json={"type": "file", "url": "http://169.254.169.254/latest"}
        )
        assert outside.status_code == 422
        assert outside.json()["errors"][0]["field"] == "url"
        # Known only when fetched: the file is gone. Accepted, then failed and reported.
        missing = await env.api.post(path, json={"type": "file", "url": "http://files.test/gone"})
        assert missing.status_code == 202
        after = await post_text(env, handoff["id"], "did you get it?")
        assert after.status_code == 202
        await env.settle()
        items = (await env.api.get(path)).json()["items"]
        statuses = {m["id"]: m for m in items}
        assert statuses[missing.json()["id"]]["status"] == "failed"
        assert statuses[missing.json()["id"]]["error"]
        reported = env.events(handoff["id"], "handoff.message_failed")
        assert [e["data"]["message"]["id"] for e in reported] == [missing.json()["id"]]
        assert statuses[after.json()["id"]]["status"] == "delivered"
        assert [e.get("text") for e in customer_messages(env, chat_id)] == ["did you get it?"]
        # and the handoff can still be closed
        await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        await env.settle()
        assert env.chat(chat_id)["threads"][-1]["active"] is False


async def test_a_file_over_10_mb_is_a_422_at_post_time(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-bigfile")
        env.files["big.bin"] = (b"0" * (10 * 1024 * 1024 + 1), "application/octet-stream")
        response = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages",
            json={"type": "file", "url": "http://files.test/big.bin"},
        )
        assert response.status_code == 422
        assert "10 MB" in response.json()["detail"]
        assert (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"] == []


async def test_messages_both_ways_oldest_first_with_status(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-both")
        chat_id = handoff["livechat"]["chat_id"]
        await post_text(env, handoff["id"], "user 1")
        await env.settle()
        env.sim.agent_reply(env.agents[0], chat_id, "agent 1")
        await env.wait_event(handoff["id"], "handoff.message")
        await post_text(env, handoff["id"], "user 2")
        await env.settle()
        env.sim.agent_reply(env.agents[0], chat_id, "agent 2")
        await env.wait_event(handoff["id"], "handoff.message", count=2)
        items = (await env.api.get(f"/v1/handoffs/{handoff['id']}/messages")).json()["items"]
        assert [(m["direction"], m["text"]) for m in items] == [
            ("to_agent", "user 1"),
            ("to_bot", "agent 1"),
            ("to_agent", "user 2"),
            ("to_bot", "agent 2"),
        ]
        assert all(m["status"] == "delivered" for m in items)
        assert [m["agent_id"] for m in items if m["direction"] == "to_bot"] == [env.agents[0]] * 2
        assert [m["created_at"] for m in items] == sorted(m["created_at"] for m in items)


async def test_close_deactivates_the_chat_and_repeating_is_harmless(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-close")
        chat_id = handoff["livechat"]["chat_id"]
        first = await env.api.post(f"/v1/handoffs/{handoff['id']}/close", json={"reason": "done"})
        assert first.status_code == 200
        body = first.json()
        assert body["state"] == "closed"
        assert body["close_reason"] == "bot_closed"
        assert body["closed_at"]
        await env.settle()
        assert env.chat(chat_id)["threads"][-1]["active"] is False
        for _ in range(2):
            again = await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
            assert again.status_code == 200
            assert again.json()["state"] == "closed"
            assert again.json()["close_reason"] == "bot_closed"
            assert again.json()["closed_at"] == body["closed_at"]
        no_body = await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        assert no_body.status_code == 200
        await env.settle()
        assert env.bot.types(handoff["id"]).count("handoff.closed") == 1
        deactivations = [d for d in env.sim.deliveries() if d["action"] == "chat_deactivated"]
        assert len(deactivations) == 1


async def test_close_before_livechat_heard_of_it_creates_no_chat(make_env: Any) -> None:
    async with make_env(run_relay=False) as env:
        handoff = await env.start_handoff("conv-early")
        closed = await env.api.post(f"/v1/handoffs/{handoff['id']}/close")
        assert closed.json()["state"] == "closed"
        env.gateway.relay.start()
        await env.settle()
        assert env.sim.list_chats() == []
        assert env.bot.types(handoff["id"]) == ["handoff.closed"]


async def test_availability_counts_accepting_agents(make_env: Any) -> None:
    async with make_env(sim_overrides={"other_groups": {5: "Empty"}}) as env:

        async def availability(**params: Any) -> dict[str, Any]:
            response = await env.api.get("/v1/availability", params=params)
            assert response.status_code == 200, response.text
            return dict(response.json())

        group = env.sim.config.group_id
        assert await availability() == {
            "group_id": group,
            "accepting_chats": True,
            "agents_accepting": len(env.agents),
        }
        env.sim.set_agent_status(env.agents[0], "not_accepting_chats")
        assert (await availability())["agents_accepting"] == len(env.agents) - 1
        for agent in env.agents:
            env.sim.set_agent_status(agent, "not_accepting_chats")
        assert await availability(group_id=group) == {
            "group_id": group,
            "accepting_chats": False,
            "agents_accepting": 0,
        }
        env.sim.set_agent_status(env.agents[1], "accepting_chats")
        assert (await availability())["agents_accepting"] == 1
        assert await availability(group_id=5) == {
            "group_id": 5,
            "accepting_chats": False,
            "agents_accepting": 0,
        }
        env.sim.add_agent("dora@sandbox.example", "Dora", group_ids=[5])
        assert (await availability(group_id=5))["agents_accepting"] == 1
        is_problem(await env.api.get("/v1/availability", params={"group_id": -3}), 422)


async def test_openapi_lists_the_endpoints(make_env: Any) -> None:
    async with make_env() as env:
        response = await env.api.get("/openapi.json")
        assert response.status_code == 200
        paths = response.json()["paths"]
        expected = {
            "/v1/handoffs": {"get", "post"},
            "/v1/handoffs/{handoff_id}": {"get"},
            "/v1/handoffs/{handoff_id}/messages": {"get", "post"},
            "/v1/handoffs/{handoff_id}/close": {"post"},
            "/v1/availability": {"get"},
            "/v1/events": {"get"},
            "/livechat/webhooks": {"post"},
            "/healthz": {"get"},
            "/readyz": {"get"},
            "/metrics": {"get"},
        }
        for path, methods in expected.items():
            assert path in paths, path
            assert methods <= set(paths[path]), (path, paths[path].keys())
