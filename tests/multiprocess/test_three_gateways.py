"""Three `livechat-hitl serve` processes on one PostgreSQL database, one
`livechat-hitl simulator` process, a round-robin proxy in front of the gateways (LiveChat
webhooks and bot API calls alike) and a bot receiver that verifies signatures. Several
handoffs; agents and the bot each send many numbered messages; one gateway is SIGKILLed
midway and the proxy skips it from then on.

Asserted, per handoff and both ways: every message arrives, exactly once by its
delivery id (the bot's `webhook-id`, LiveChat's `custom_id`), never as two different
deliveries, in the order sent; every bot event is signed and arrives once per id; the
outbox ends empty with nothing dead. A redelivery under the same id (the killed process
had delivered but not yet recorded) is allowed by both peers' contracts and is counted
in the summary table.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from harness import (
    LOOPBACK,
    BotReceiver,
    Children,
    RoundRobinProxy,
    free_port,
    serve,
    wait_http,
)
from sqlalchemy.engine import make_url

from livechat_hitl.simulator.config import SimulatorConfig
from livechat_hitl.store.pg_notifier import asyncpg_dsn

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
HANDOFFS = 6
MESSAGES = 20  # each way, per handoff
API_KEY = "multiprocess-api-key"
LIVECHAT_SECRET = "multiprocess-livechat-webhook-secret"
BOT_SECRET = "whsec_" + base64.b64encode(b"multiprocess-bot-signing-secret!").decode()
LEASE_SECONDS = 3


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _throwaway_database() -> str:
    base = os.environ.get("HITL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    name = f"hitl_mp_{uuid.uuid4().hex[:10]}"
    try:
        await _admin(base, f'CREATE DATABASE "{name}"')
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(base).render_as_string()}: {exc!r}"
        print(f"\nskipping the multi-process test: {reason}")
        pytest.skip(reason)
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def _drop_database(url: str) -> None:
    name = make_url(url).database
    base = os.environ.get("HITL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _call(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response:
    """A client behind a load balancer: retry what never got an answer (502/503),
    with the same body, so idempotency keys make the retry harmless."""
    for _ in range(50):
        answer = await client.request(method, path, **kw)
        if answer.status_code not in (502, 503):
            return answer
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {path}: no gateway answered")


async def test_three_gateways_on_one_database(tmp_path: Any) -> None:
    database_url = await _throwaway_database()
    sim_config = SimulatorConfig()  # the sandbox defaults `livechat-hitl simulator` uses
    sim_port, bot_port, proxy_port = free_port(), free_port(), free_port()
    gateway_ports = [free_port() for _ in range(3)]
    sim_url = f"http://{LOOPBACK}:{sim_port}"
    proxy_url = f"http://{LOOPBACK}:{proxy_port}"
    gateway_urls = [f"http://{LOOPBACK}:{p}" for p in gateway_ports]
    gateway_env = {
        "HITL_DATABASE_URL": database_url,
        "HITL_HOST": LOOPBACK,
        "HITL_PUBLIC_URL": proxy_url,
        "HITL_API_KEYS": API_KEY,
        "HITL_BOT_WEBHOOK_URL": f"http://{LOOPBACK}:{bot_port}/hooks",
        "HITL_BOT_WEBHOOK_SECRET": BOT_SECRET,
        "HITL_LIVECHAT_API_URL": sim_url,
        "HITL_LIVECHAT_ACCOUNTS_URL": sim_url,
        "HITL_LIVECHAT_AGENT_TOKEN": sim_config.agent_token,
        "HITL_LIVECHAT_CLIENT_ID": sim_config.client_id,
        "HITL_LIVECHAT_ORGANIZATION_ID": sim_config.organization_id,
        "HITL_LIVECHAT_WEBHOOK_SECRET": LIVECHAT_SECRET,
        "HITL_LIVECHAT_GROUP_ID": str(sim_config.group_id),
        "HITL_RELAY_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    children = Children(tmp_path, {"HITL_LOG_LEVEL": "info"})
    bot = BotReceiver(BOT_SECRET)
    proxy = RoundRobinProxy(gateway_urls)
    try:
        simulator = children.spawn(
            "simulator", "simulator", env={"HITL_SIMULATOR_PORT": str(sim_port)}
        )
        await wait_http(f"{sim_url}/_sim/chats", simulator)
        children.run("migrate", "migrate", env=gateway_env)
        async with serve(bot.app(), bot_port), serve(proxy.app(), proxy_port):
            gateways = [
                children.spawn(f"gateway-{n}", "serve", env={**gateway_env, "HITL_PORT": str(p)})
                for n, p in enumerate(gateway_ports)
            ]
            for gateway, url in zip(gateways, gateway_urls, strict=True):
                await wait_http(f"{url}/healthz", gateway)
            children.run("setup", "setup", env=gateway_env)
            report = await _workload(proxy_url, sim_url, bot, kill=gateways[1].kill)
            await _settled(database_url)
            # What LiveChat holds, read once the outbox has drained: the bot's
            # `handoff.closed` can arrive while messages to LiveChat still wait out the
            # lease the killed gateway held on them.
            async with httpx.AsyncClient(base_url=sim_url, timeout=30) as sim:
                report["chats"] = (await sim.get("/_sim/chats")).json()
        _check_and_print(report, bot, proxy, gateway_urls)
        assert proxy.dead == {gateway_urls[1]}
    except BaseException:
        children.dump_logs()
        raise
    finally:
        children.kill_all()
        await proxy.aclose()
        await _drop_database(database_url)


async def _workload(proxy_url: str, sim_url: str, bot: BotReceiver, *, kill: Any) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx.AsyncClient(base_url=proxy_url, headers=auth, timeout=30) as api,
        httpx.AsyncClient(base_url=sim_url, timeout=30) as sim,
    ):
        handoffs = []
        for n in range(HANDOFFS):
            body = {"conversation_id": f"conv-{n}", "user": {"id": f"user-{n}", "name": f"U{n}"}}
            answer = await _call(api, "POST", "/v1/handoffs", json=body)
            assert answer.status_code in (200, 201), answer.text
            handoffs.append(answer.json()["id"])
        assigned = await asyncio.gather(*(_state(api, h, "assigned") for h in handoffs))
        posted = Counter[str]()
        kill_after = HANDOFFS * MESSAGES // 2

        async def bot_side(n: int, handoff_id: str) -> None:
            for i in range(MESSAGES):
                message = {"type": "text", "text": f"bot {n} #{i:03d}", "id": f"m-{n}-{i}"}
                answer = await _call(
                    api, "POST", f"/v1/handoffs/{handoff_id}/messages", json=message
                )
                assert answer.status_code == 202, answer.text
                posted["all"] += 1
                if posted["all"] == kill_after:
                    kill()  # SIGKILL gateway-1 midway: whatever it held is in flight

        async def agent_side(n: int, handoff: dict[str, Any]) -> None:
            chat_id, agent_id = handoff["livechat"]["chat_id"], handoff["agent"]["id"]
            for i in range(MESSAGES):
                text = f"agent {n} #{i:03d}"
                answer = await sim.post(
                    f"/_sim/chats/{chat_id}/reply", json={"agent_id": agent_id, "text": text}
                )
                assert answer.status_code == 200, answer.text
                # an agent types at human pace: the previous line has reached the bot
                await _until(lambda t=text: _bot_has(bot, handoff["id"], t), 60, text)

        await asyncio.gather(
            *(bot_side(n, h) for n, h in enumerate(handoffs)),
            *(agent_side(n, h) for n, h in enumerate(assigned)),
        )
        for handoff_id in handoffs:
            closed = await _call(api, "POST", f"/v1/handoffs/{handoff_id}/close")
            assert closed.status_code == 200, closed.text
        for handoff_id in handoffs:
            await _until(
                lambda h=handoff_id: _bot_has_type(bot, h, "handoff.closed"), 60, handoff_id
            )
    return {"handoffs": handoffs, "assigned": assigned}


async def _state(api: httpx.AsyncClient, handoff_id: str, state: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            answer = await _call(api, "GET", f"/v1/handoffs/{handoff_id}")
            if answer.status_code == 200 and answer.json()["state"] == state:
                return dict(answer.json())
            await asyncio.sleep(0.05)


async def _until(predicate: Any, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {timeout} s for {what}") from None


def _bot_has(bot: BotReceiver, handoff_id: str, text: str) -> bool:
    return any(
        e["handoff_id"] == handoff_id and e["data"].get("message", {}).get("text") == text
        for _id, e in bot.deliveries
    )


def _bot_has_type(bot: BotReceiver, handoff_id: str, type_: str) -> bool:
    return any(e["handoff_id"] == handoff_id and e["type"] == type_ for _id, e in bot.deliveries)


async def _settled(database_url: str) -> None:
    """The outbox of the shared database ends empty, with nothing dead."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=3)
    try:
        async with asyncio.timeout(60):
            while await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'"):
                await asyncio.sleep(0.1)
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'dead'") == 0
    finally:
        await conn.close()


def _check_and_print(
    report: dict[str, Any], bot: BotReceiver, proxy: RoundRobinProxy, gateway_urls: list[str]
) -> None:
    assert bot.bad_signatures == 0
    unique = bot.unique()
    for webhook_id, event in unique.items():
        assert event["id"] == webhook_id  # the event id is the webhook-id
    chats = {c["id"]: c for c in report["chats"]}
    rows = []
    for n, (handoff_id, handoff) in enumerate(
        zip(report["handoffs"], report["assigned"], strict=True)
    ):
        # LiveChat → bot
        events = [e for e in unique.values() if e["handoff_id"] == handoff_id]
        types = [e["type"] for e in events]
        texts = [e["data"]["message"]["text"] for e in events if e["type"] == "handoff.message"]
        assert texts == [f"agent {n} #{i:03d}" for i in range(MESSAGES)], texts
        assert types[0] == "handoff.started", types
        assert types[-1] == "handoff.closed", types
        assert Counter(types)["handoff.closed"] == 1
        raw = sum(1 for _id, e in bot.deliveries if e["handoff_id"] == handoff_id)
        # bot → LiveChat
        chat = chats[handoff["livechat"]["chat_id"]]
        customer = [
            e
            for t in chat["threads"]
            for e in t["events"]
            if e["type"] == "message" and str(e.get("text", "")).startswith(f"bot {n} #")
        ]
        first_by_custom_id: dict[str, str] = {}
        for e in customer:
            first_by_custom_id.setdefault(e["custom_id"], e["text"])
        sent = list(first_by_custom_id.values())
        assert sent == [f"bot {n} #{i:03d}" for i in range(MESSAGES)], sent
        rows.append(
            (
                n,
                handoff_id,
                len(events),
                len(texts),
                raw - len(events),
                len(sent),
                len(customer) - len(sent),
            )
        )
    header = ("#", "handoff", "bot events", "agent msgs", "redelivered", "bot msgs", "repeated")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("\nthree gateways, one PostgreSQL database, gateway-1 SIGKILLed midway")
    for r in [header, *rows]:
        print("  ".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True)))
    for n, url in enumerate(gateway_urls):
        state = "killed" if url in proxy.dead else "alive"
        print(
            f"gateway-{n} ({state}): {proxy.forwarded[url]} requests answered, "
            f"{proxy.failed[url]} cut off"
        )
