"""The fault suite's world: `livechat-hitl simulator` and `livechat-hitl serve` as real
processes on loopback (the gateway restartable on the same SQLite database), a bot
receiver that verifies every signature and can be told to be down, slow or gone, a
workload of numbered messages both ways, and the honest count of what arrived.

Counting (one `Row` per scenario):
- bot → LiveChat: the customer's message events in the simulator's chats, by text and by
  `custom_id`; one LiveChat event per bot message, so any second event with a text
  already seen (or a `custom_id` already seen) is a duplicate.
- LiveChat → bot: deliveries the receiver accepted, first de-duplicated on `webhook-id`
  (Standard Webhooks: a receiver must, and a redelivery after a lost answer is allowed);
  then any second event id, or second `handoff.message` with a text already seen, is a
  duplicate. Raw redeliveries (same `webhook-id` again) are reported apart.
- out of order: per handoff and direction, a message that arrived after a later-numbered
  one of the same handoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from e2e.procs import (
    LOOPBACK,
    BotReceiver,
    Process,
    Processes,
    children,
    clean_env,
    free_port,
    fresh_credentials,
    gateway_settings,
    run_command,
    wait_http,
    wait_port,
)
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AGENTS = ",".join(f"agent{n}@faults.test:Agent {n}" for n in range(4))


# -- the bot's endpoint ------------------------------------------------------------------


@dataclass
class FaultyBot(BotReceiver):
    """`mode`: `up` (200), `down` (503), `error` (500), `slow` (answers after
    `slow_seconds`, having kept the event: the gateway times out first and redelivers),
    `gone` (410)."""

    mode: str = "up"
    slow_seconds: float = 2.0
    deliveries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answered: Counter[str] = field(default_factory=Counter)

    def app(self) -> Starlette:
        verifier = Webhook(self.secret)

        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verifier.verify(body, dict(request.headers))
            except Exception:
                with self._lock:
                    self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=400)
            mode = self.mode
            with self._lock:
                self.answered[mode] += 1
            if mode == "down":
                return JSONResponse({"error": "down"}, status_code=503)
            if mode == "error":
                return JSONResponse({"error": "boom"}, status_code=500)
            if mode == "gone":
                return JSONResponse({"error": "gone"}, status_code=410)
            event = json.loads(body)
            with self._lock:
                self.deliveries.append((request.headers["webhook-id"], event))
                self.events.append(event)
            if mode == "slow":
                await asyncio.sleep(self.slow_seconds)
            return JSONResponse({})

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.deliveries)

    def has_texts(self, handoff_id: str) -> set[str]:
        with self._lock:
            return {
                e["data"]["message"].get("text", "")
                for _id, e in self.deliveries
                if e["handoff_id"] == handoff_id and e["type"] == "handoff.message"
            }


# -- the processes -----------------------------------------------------------------------


@dataclass
class World:
    processes: Processes
    workdir: Path
    bot: FaultyBot
    sim_url: str
    gateway_url: str
    gateway_env: dict[str, str]
    api_key: str
    secrets: list[str]
    setup_output: str = ""
    gateway: Process | None = None
    restarts: int = 0

    def start_gateway(self) -> Process:
        self.restarts += 1
        process = self.processes.start(f"gateway-{self.restarts}", ["serve"], self.gateway_env)
        wait_http(f"{self.gateway_url}/healthz", process, timeout=30)
        self.gateway = process
        return process

    def kill_gateway(self) -> None:
        """SIGKILL: no shutdown, no lease released, whatever was in flight stays so."""
        assert self.gateway is not None
        self.gateway.popen.kill()
        self.gateway.popen.wait(timeout=10)

    def kill_outbound_process(self) -> int:
        """SIGKILL the gateway's outbound process (its child making the bot POSTs and
        LiveChat calls), whatever it has in flight; its process id."""
        assert self.gateway is not None
        [child] = children(self.gateway.popen.pid)
        os.kill(child, signal.SIGKILL)
        return child

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        path = self.gateway_env["HITL_DATABASE_URL"].removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            return list(db.execute(query).fetchall())

    def outbox_counts(self) -> dict[str, int]:
        path = self.gateway_env["HITL_DATABASE_URL"].removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            rows = db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        return {str(status): int(count) for status, count in rows}


def start_world(processes: Processes, workdir: Path, **gateway_overrides: str) -> World:
    sim_port, gateway_port = free_port(), free_port()
    sim_url = f"http://{LOOPBACK}:{sim_port}"
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    creds = fresh_credentials("faults")
    bot = FaultyBot(creds.bot_secret)
    bot.start()
    simulator = processes.start(
        "simulator",
        ["simulator"],
        clean_env(
            HITL_SIMULATOR_PORT=str(sim_port), HITL_SIMULATOR_AGENTS=AGENTS, **creds.livechat
        ),
    )
    wait_port(sim_port, simulator)
    settings = gateway_settings(
        creds,
        port=gateway_port,
        simulator_url=sim_url,
        database=workdir / "gateway.db",
        bot_url=bot.url,
        HITL_LOG_LEVEL="info",
        # A short retry schedule keeps the suite to minutes; the behaviour is the same.
        HITL_RELAY_BACKOFF_BASE_SECONDS="0.1",
        HITL_RELAY_BACKOFF_CAP_SECONDS="1",
        HITL_RELAY_LEASE_SECONDS="5",
        HITL_LIVECHAT_TIMEOUT_SECONDS="2",
        HITL_BOT_WEBHOOK_TIMEOUT="1",
    )
    env = clean_env(**{**settings, **gateway_overrides})
    setup = run_command(["setup"], env, cwd=workdir)
    assert setup.returncode == 0, f"setup failed:\n{setup.stdout}\n{setup.stderr}"
    world = World(
        processes,
        workdir,
        bot,
        sim_url,
        gateway_url,
        env,
        creds.api_key,
        creds.secrets,
        setup_output=setup.stdout + setup.stderr,
    )
    world.start_gateway()
    return world


# -- the workload ------------------------------------------------------------------------


def bot_text(n: int, i: int) -> str:
    return f"bot {n} #{i:04d}"


def agent_text(n: int, i: int) -> str:
    return f"agent {n} #{i:04d}"


async def call(
    client: httpx.AsyncClient, method: str, path: str, *, ok: tuple[int, ...], **kw: Any
) -> httpx.Response:
    """A bot's client: what got no answer (the gateway is down, restarting) is retried,
    same body, so the idempotency keys (`conversation_id`, message `id`) make it safe."""
    deadline = time.monotonic() + 120
    while True:
        try:
            answer = await client.request(method, path, **kw)
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.status_code in ok:
            return answer
        if answer is not None and answer.status_code < 500:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {path}: no answer within 120 s")
        await asyncio.sleep(0.1)


@dataclass
class Workload:
    handoffs: int
    per_handoff: int  # messages each way, per handoff
    window: int = 25  # an agent has at most this many lines not yet at the bot
    ids: list[str] = field(default_factory=list)
    chats: list[str] = field(default_factory=list)
    bot_posted: int = 0

    @property
    def each_way(self) -> int:
        return self.handoffs * self.per_handoff


async def run_workload(
    world: World,
    work: Workload,
    *,
    on_bot_message: Callable[[int], Awaitable[None]] | None = None,
    timeout: float = 150.0,
) -> None:
    auth = {"Authorization": f"Bearer {world.api_key}"}
    async with (
        httpx.AsyncClient(base_url=world.gateway_url, headers=auth, timeout=10) as api,
        httpx.AsyncClient(base_url=world.sim_url, timeout=30) as sim,
    ):
        for n in range(work.handoffs):
            body = {"conversation_id": f"conv-{n}", "user": {"id": f"user-{n}", "name": f"U{n}"}}
            answer = await call(api, "POST", "/v1/handoffs", ok=(200, 201), json=body)
            work.ids.append(answer.json()["id"])
        assigned = [await _assigned(api, h) for h in work.ids]
        work.chats = [a["livechat"]["chat_id"] for a in assigned]

        async def bot_side(n: int, handoff_id: str) -> None:
            for i in range(work.per_handoff):
                message = {"type": "text", "text": bot_text(n, i), "id": f"m-{n}-{i}"}
                path = f"/v1/handoffs/{handoff_id}/messages"
                await call(api, "POST", path, ok=(202,), json=message)
                work.bot_posted += 1
                if on_bot_message is not None:
                    await on_bot_message(work.bot_posted)

        async def agent_side(n: int, handoff: dict[str, Any]) -> None:
            chat_id, agent_id = handoff["livechat"]["chat_id"], handoff["agent"]["id"]
            for i in range(work.per_handoff):
                if i >= work.window:
                    behind = agent_text(n, i - work.window)
                    await _until(lambda t=behind: t in world.bot.has_texts(handoff["id"]), 120)
                answer = await sim.post(
                    f"/_sim/chats/{chat_id}/reply",
                    json={"agent_id": agent_id, "text": agent_text(n, i)},
                )
                assert answer.status_code == 200, answer.text

        async with asyncio.timeout(timeout):
            await asyncio.gather(
                *(bot_side(n, h) for n, h in enumerate(work.ids)),
                *(agent_side(n, h) for n, h in enumerate(assigned)),
            )
            for handoff_id in work.ids:
                await call(api, "POST", f"/v1/handoffs/{handoff_id}/close", ok=(200,))
            await _until(lambda: _all_arrived(world, work), 120)


async def _assigned(api: httpx.AsyncClient, handoff_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            answer = await call(api, "GET", f"/v1/handoffs/{handoff_id}", ok=(200,))
            if answer.json()["state"] == "assigned":
                return dict(answer.json())
            await asyncio.sleep(0.05)


async def _until(predicate: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _all_arrived(world: World, work: Workload) -> bool:
    """Every agent line and every handoff.closed at the bot."""
    deliveries = world.bot.snapshot()
    closed = {e["handoff_id"] for _id, e in deliveries if e["type"] == "handoff.closed"}
    if set(work.ids) - closed:
        return False
    return all(
        agent_text(n, work.per_handoff - 1) in world.bot.has_texts(h)
        for n, h in enumerate(work.ids)
    )


async def settle(world: World, work: Workload, timeout: float = 60.0) -> None:
    """Wait until the gateway's outbox is empty and LiveChat shows every bot message;
    then a moment more, so a late duplicate would still be counted."""
    async with httpx.AsyncClient(base_url=world.sim_url, timeout=30) as sim:
        async with asyncio.timeout(timeout):
            while True:
                counts = world.outbox_counts()
                if not counts.get("pending"):
                    chats = (await sim.get("/_sim/chats")).json()
                    if _livechat_complete(chats, work):
                        break
                await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)


def _customer_texts(chat: dict[str, Any], n: int) -> list[dict[str, Any]]:
    prefix = f"bot {n} #"
    return [
        e
        for t in chat["threads"]
        for e in t["events"]
        if e["type"] == "message" and str(e.get("text", "")).startswith(prefix)
    ]


def _livechat_complete(chats: list[dict[str, Any]], work: Workload) -> bool:
    by_id = {c["id"]: c for c in chats}
    for n, chat_id in enumerate(work.chats):
        texts = {e["text"] for e in _customer_texts(by_id[chat_id], n)}
        if len(texts) < work.per_handoff:
            return False
    return True


# -- the count ---------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    each_way: int
    faults: str
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    redelivered: int = 0
    seconds: float = 0.0
    dead_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.out_of_order == 0


def _out_of_order(indices: list[int]) -> int:
    """Messages that arrived after a later-numbered one."""
    late, highest = 0, -1
    for index in indices:
        if index < highest:
            late += 1
        highest = max(highest, index)
    return late


async def count(world: World, work: Workload, row: Row) -> Row:
    async with httpx.AsyncClient(base_url=world.sim_url, timeout=30) as sim:
        chats = {c["id"]: c for c in (await sim.get("/_sim/chats")).json()}
    deliveries = world.bot.snapshot()
    unique: dict[str, dict[str, Any]] = {}
    for webhook_id, event in deliveries:
        if webhook_id in unique:
            row.redelivered += 1
        else:
            unique[webhook_id] = event
    event_ids = Counter(e["id"] for e in unique.values())
    row.duplicated += sum(c - 1 for c in event_ids.values())
    row.duplicated += sum(1 for w, e in unique.items() if e["id"] != w)  # id must be the w-id

    for n, (handoff_id, chat_id) in enumerate(zip(work.ids, work.chats, strict=True)):
        # LiveChat → bot
        events = [e for e in unique.values() if e["handoff_id"] == handoff_id]
        texts = [e["data"]["message"]["text"] for e in events if e["type"] == "handoff.message"]
        expected = [agent_text(n, i) for i in range(work.per_handoff)]
        row.lost += len(set(expected) - set(texts))
        row.duplicated += len(texts) - len(set(texts))
        row.delivered += len(set(expected) & set(texts))
        firsts: dict[str, int] = {}
        for t in texts:
            firsts.setdefault(t, int(t.rsplit("#", 1)[1]))
        row.out_of_order += _out_of_order(list(firsts.values()))
        types = [e["type"] for e in events]
        if types.count("handoff.closed") != 1:
            row.notes.append(f"handoff {n}: {types.count('handoff.closed')} handoff.closed")
            row.duplicated += max(0, types.count("handoff.closed") - 1)
        # bot → LiveChat
        sent = _customer_texts(chats[chat_id], n)
        sent_texts = [e["text"] for e in sent]
        expected = [bot_text(n, i) for i in range(work.per_handoff)]
        row.lost += len(set(expected) - set(sent_texts))
        row.delivered += len(set(expected) & set(sent_texts))
        custom_ids = [e.get("custom_id") for e in sent]
        row.duplicated += max(
            len(sent_texts) - len(set(sent_texts)), len(custom_ids) - len(set(custom_ids))
        )
        firsts = {}
        for t in sent_texts:
            firsts.setdefault(t, int(t.rsplit("#", 1)[1]))
        row.out_of_order += _out_of_order(list(firsts.values()))
    row.dead_rows = world.outbox_counts().get("dead", 0)
    return row


def print_table(rows: list[Row], write: Callable[[str], None]) -> None:
    header = (
        "scenario",
        "msgs each way",
        "faults injected",
        "delivered",
        "lost",
        "duplicated",
        "out of order",
        "raw redeliveries",
        "dead rows",
        "seconds",
    )
    body = [
        (
            r.scenario,
            str(r.each_way),
            r.faults,
            f"{r.delivered}/{2 * r.each_way}",
            str(r.lost),
            str(r.duplicated),
            str(r.out_of_order),
            str(r.redelivered),
            str(r.dead_rows),
            f"{r.seconds:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    rule = "-+-".join("-" * w for w in widths)
    write("fault suite: real processes on loopback (serve + simulator + bot receiver)")
    write(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    write(rule)
    for line in body:
        write(" | ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    for r in rows:
        for note in r.notes:
            write(f"  {r.scenario}: {note}")


async def inject(sim_url: str, **fault: Any) -> None:
    async with httpx.AsyncClient(base_url=sim_url, timeout=10) as sim:
        answer = await sim.post("/_sim/faults", json=fault)
        assert answer.status_code == 200, answer.text
