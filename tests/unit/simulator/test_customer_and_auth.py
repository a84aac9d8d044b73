"""Customer Chat API, accounts API (customer tokens) and auth rules."""

from __future__ import annotations

from .conftest import Harness, b64


async def test_cookie_grant_same_cookies_same_customer(harness: Harness) -> None:
    first = await harness.customer_token()
    body = first.json()
    assert set(body) == {"access_token", "entity_id", "expires_in", "token_type", "organization_id"}
    assert body["expires_in"] == 28800
    assert body["token_type"] == "Bearer"
    cookies = {"__lc_cid": first.cookies["__lc_cid"], "__lc_cst": first.cookies["__lc_cst"]}
    again = await harness.customer_token(cookies)
    assert again.json()["entity_id"] == body["entity_id"]
    assert again.json()["access_token"] != body["access_token"]
    fresh = await harness.customer_token()
    assert fresh.json()["entity_id"] != body["entity_id"]
    forged = await harness.customer_token({"__lc_cid": body["entity_id"], "__lc_cst": "bad"})
    assert forged.json()["entity_id"] != body["entity_id"]


async def test_cookie_grant_errors(harness: Harness) -> None:
    r = await harness.http.post(
        "/v2/customer/token", json={"grant_type": "cookie", "client_id": "x"}
    )
    assert r.status_code == 400
    assert r.json()["oauth_exception"] == "invalid_client"
    r = await harness.http.post(
        "/v2/customer/token",
        json={
            "grant_type": "cookie",
            "client_id": harness.sim.config.client_id,
            "organization_id": harness.sim.config.organization_id,
        },
    )
    assert r.json()["oauth_exception"] == "invalid_request"  # no redirect_uri nor Origin


async def test_customer_token_expires_after_8h(harness: Harness) -> None:
    token, _ = await harness.new_customer()
    assert (await harness.customer(token, "get_customer")).status_code == 200
    harness.sim.clock.advance(8 * 3600)
    r = await harness.customer(token, "get_customer")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication"


async def test_agent_token_grant_refuses_pat_and_accepts_oauth(harness: Harness) -> None:
    body = {
        "grant_type": "agent_token",
        "client_id": harness.sim.config.client_id,
        "response_type": "token",
    }
    r = await harness.http.post("/v2/customer/token", json=body, headers=harness.basic)
    assert r.status_code == 401
    oauth = harness.sim.issue_agent_token("alice@sandbox.example")
    r = await harness.http.post(
        "/v2/customer/token", json=body, headers={"Authorization": f"Bearer {oauth}"}
    )
    assert r.status_code == 200
    assert r.json()["client_id"] == harness.sim.config.client_id
    entity = r.json()["entity_id"]
    r = await harness.http.post(
        "/v2/customer/token",
        json={**body, "entity_id": entity},
        headers={"Authorization": f"Bearer {oauth}"},
    )
    assert r.json()["entity_id"] == entity


async def test_pat_only_as_basic(harness: Harness) -> None:
    cfg = harness.sim.config
    r = await harness.agent("list_routing_statuses", headers={"Authorization": f"Bearer {cfg.pat}"})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication"
    r = await harness.agent(
        "list_routing_statuses",
        headers={"Authorization": f"Basic {b64(cfg.account_id + ':wrong')}"},
    )
    assert r.json()["error"] == {"type": "authentication", "message": "Invalid access token"}
    r = await harness.agent("list_routing_statuses", headers={})
    assert r.json()["error"]["type"] == "authentication"
    oauth = harness.sim.issue_agent_token("bob@sandbox.example")
    r = await harness.agent("list_routing_statuses", headers={"Authorization": f"Bearer {oauth}"})
    assert r.status_code == 200


async def test_customer_routes_only_take_customer_tokens(harness: Harness) -> None:
    org = harness.sim.config.organization_id
    r = await harness.http.post(
        f"/v3.6/customer/action/get_customer?organization_id={org}", json={}, headers=harness.basic
    )
    assert r.json()["error"]["type"] == "authentication"
    token, _ = await harness.new_customer()
    r = await harness.http.post(
        "/v3.6/customer/action/get_customer", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.json()["error"]["type"] == "validation"
    r = await harness.agent("list_routing_statuses", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["error"]["type"] == "authentication"


async def test_customer_chat_lifecycle(harness: Harness) -> None:
    token, customer = await harness.new_customer()
    assert (await harness.customer(token, "update_customer", {"name": "Ada"})).json() == {}
    assert (await harness.customer(token, "get_customer")).json()["name"] == "Ada"
    r = await harness.customer(
        token, "start_chat", {"chat": {"thread": {"events": [{"type": "message", "text": "hi"}]}}}
    )
    assert r.status_code == 200, r.text
    chat_id = r.json()["chat_id"]
    chat = (await harness.agent("get_chat", {"chat_id": chat_id})).json()
    assert {u["id"] for u in chat["users"] if u["present"]} == {customer, "alice@sandbox.example"}
    r = await harness.customer(
        token,
        "send_event",
        {"chat_id": chat_id, "event": {"type": "message", "text": "more", "visibility": "agents"}},
    )
    event_id = r.json()["event_id"]
    chat = (await harness.agent("get_chat", {"chat_id": chat_id})).json()
    sent = next(e for e in chat["thread"]["events"] if e["id"] == event_id)
    assert sent["visibility"] == "all"
    assert sent["author_id"] == customer
    assert (
        await harness.customer(
            token, "send_sneak_peek", {"chat_id": chat_id, "sneak_peek_text": "ty"}
        )
    ).json() == {}
    assert (await harness.customer(token, "deactivate_chat", {"id": chat_id})).json() == {}
    r = await harness.customer(
        token, "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "late"}}
    )
    assert r.json()["error"]["type"] == "chat_inactive"
    r = await harness.customer(
        token,
        "send_event",
        {
            "chat_id": chat_id,
            "attach_to_last_thread": True,
            "event": {"type": "message", "text": "late"},
        },
    )
    assert r.status_code == 200
    r = await harness.customer(token, "resume_chat", {"chat": {"id": chat_id}})
    assert r.status_code == 200
    other, _ = await harness.new_customer()
    r = await harness.customer(
        other, "send_event", {"chat_id": chat_id, "event": {"type": "message", "text": "x"}}
    )
    assert r.json()["error"]["type"] == "not_found"


async def test_customer_start_when_group_offline(harness: Harness) -> None:
    for agent in ("alice@sandbox.example", "bob@sandbox.example"):
        harness.sim.set_agent_status(agent, "not_accepting_chats")
    token, _ = await harness.new_customer()
    r = await harness.customer(token, "start_chat", {})
    assert r.json()["error"]["type"] == "groups_offline"
    statuses = (await harness.customer(token, "list_group_statuses", {"all": True})).json()
    assert statuses == {"groups_status": {"0": "offline"}}
    r = await harness.customer(token, "list_group_statuses", {})
    assert r.json()["error"]["type"] == "validation"


async def test_upload_limit_and_file_serving(harness: Harness) -> None:
    files = {"file": ("cat.png", b"\x89PNG data", "image/png")}
    r = await harness.http.post(
        "/v3.6/agent/action/upload_file", files=files, headers=harness.basic
    )
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith(
        f"http://sim.test/cdn/api/file/lc/att/{harness.sim.config.organization_id}/"
    )
    got = await harness.http.get(url)
    assert got.content == b"\x89PNG data"
    assert got.headers["content-type"] == "image/png"
    big = {"file": ("big.bin", b"0" * (10 * 1024 * 1024 + 1), "application/octet-stream")}
    r = await harness.http.post("/v3.6/agent/action/upload_file", files=big, headers=harness.basic)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "entity_too_large"
    token, _ = await harness.new_customer()
    chat_id = (await harness.customer(token, "start_chat", {})).json()["chat_id"]
    org = harness.sim.config.organization_id
    r = await harness.http.post(
        f"/v3.6/customer/action/upload_file?organization_id={org}",
        files=files,
        headers={"Authorization": f"Bearer {token}"},
    )
    curl = r.json()["url"]
    r = await harness.customer(
        token, "send_event", {"chat_id": chat_id, "event": {"type": "file", "url": curl}}
    )
    assert r.status_code == 200
    r = await harness.customer(
        token,
        "send_event",
        {"chat_id": chat_id, "event": {"type": "file", "url": "https://evil.test/x.png"}},
    )
    assert r.json()["error"]["type"] == "validation"
    r = await harness.http.post("/v3.6/agent/action/upload_file", json={}, headers=harness.basic)
    assert r.json()["error"]["type"] == "validation"


async def test_region_header_mismatch_is_misdirected(harness: Harness) -> None:
    r = await harness.agent("list_routing_statuses", headers={**harness.basic, "X-Region": "fra"})
    assert r.status_code == 421
    assert r.json()["error"] == {
        "type": "misdirected_request",
        "message": "Wrong region",
        "data": {"region": "dal"},
    }
