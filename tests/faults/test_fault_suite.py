"""The fault suite (issue 4): nothing lost, nothing duplicated, nothing out of order,
both ways, while the gateway is SIGKILLed, LiveChat fails, the bot's endpoint fails and
LiveChat delivers every webhook twice. One table is printed at the end of the run
(conftest.py); every row must read lost 0, duplicated 0, out of order 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from e2e.procs import Processes

from .harness import Row, Workload, World, count, inject, run_workload, settle, start_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _check(row: Row, rows: list[Row]) -> None:
    rows.append(row)
    assert row.clean, (
        f"{row.scenario}: lost {row.lost}, duplicated {row.duplicated}, "
        f"out of order {row.out_of_order}; {row.notes}"
    )
    assert row.delivered == 2 * row.each_way
    assert row.dead_rows == 0


async def test_gateway_sigkilled_three_times(
    processes: Processes, tmp_path: Path, rows: list[Row]
) -> None:
    world = start_world(processes, tmp_path)
    work = Workload(handoffs=5, per_handoff=200)
    kills = {work.each_way * k // 4 for k in (1, 2, 3)}
    started = time.monotonic()

    async def maybe_kill(posted: int) -> None:
        if posted in kills:
            world.kill_gateway()
            await asyncio.sleep(random.uniform(0.0, 0.5))
            await asyncio.to_thread(world.start_gateway)

    try:
        await run_workload(world, work, on_bot_message=maybe_kill, timeout=200)
        await settle(world, work)
    finally:
        world.bot.stop()
    row = Row("gateway SIGKILLed 3x", work.each_way, f"{world.restarts - 1} SIGKILL + restart")
    row.seconds = time.monotonic() - started
    _check(await count(world, work, row), rows)
    assert world.restarts == 4


async def test_outbound_process_sigkilled_three_times(
    processes: Processes, tmp_path: Path, rows: list[Row]
) -> None:
    # The child that makes the gateway's bot POSTs and LiveChat calls dies with requests
    # in flight; the gateway fails them, starts a new child, and retries.
    world = start_world(processes, tmp_path)
    work = Workload(handoffs=5, per_handoff=200)
    kills = {work.each_way * k // 4 for k in (1, 2, 3)}
    killed: list[int] = []
    started = time.monotonic()

    async def maybe_kill(posted: int) -> None:
        if posted in kills:
            killed.append(world.kill_outbound_process())
            await asyncio.sleep(1.5)  # the gateway starts a new one at most once a second

    try:
        await run_workload(world, work, on_bot_message=maybe_kill, timeout=200)
        await settle(world, work)
    finally:
        world.bot.stop()
    row = Row("outbound process SIGKILLed 3x", work.each_way, f"{len(killed)} SIGKILL")
    row.seconds = time.monotonic() - started
    _check(await count(world, work, row), rows)
    assert len(set(killed)) == 3  # a new child each time
    assert world.restarts == 1  # the gateway itself ran on


async def test_livechat_sends_fail_thirty_percent(
    processes: Processes, tmp_path: Path, rows: list[Row]
) -> None:
    world = start_world(processes, tmp_path)
    work = Workload(handoffs=5, per_handoff=60)
    kinds: Counter[str] = Counter()
    chance = random.Random(4)
    started = time.monotonic()

    async def maybe_fail(posted: int) -> None:
        # ~30% of the customer's sends: the next send_event answers 429 (Retry-After),
        # 500, or hangs past the gateway's LiveChat deadline (HITL_LIVECHAT_TIMEOUT_SECONDS).
        if chance.random() < 0.3:
            kind = chance.choice(["429", "500", "hang"])
            kinds[kind] += 1
            await inject(
                world.sim_url,
                kind=kind,
                method="send_event",
                retry_after=1,
                hang_seconds=3,
            )

    try:
        await run_workload(world, work, on_bot_message=maybe_fail)
        await settle(world, work)
    finally:
        world.bot.stop()
    described = " ".join(f"{n}x{k}" for k, n in sorted(kinds.items()))
    row = Row("LiveChat 429/500/hang on 30% of sends", work.each_way, described)
    row.seconds = time.monotonic() - started
    _check(await count(world, work, row), rows)
    assert sum(kinds.values()) >= work.each_way // 5


def _messages_at_bot(world: World) -> int:
    return sum(1 for _id, event in world.bot.snapshot() if event["type"] == "handoff.message")


async def test_bot_endpoint_down_then_back(
    processes: Processes, tmp_path: Path, rows: list[Row]
) -> None:
    world = start_world(processes, tmp_path)
    work = Workload(handoffs=5, per_handoff=60)
    started = time.monotonic()

    async def outage() -> None:
        # Mid-stream, however fast the gateway delivers: once a quarter of the agents'
        # messages are at the bot (a fixed delay let a fast run finish before it).
        while _messages_at_bot(world) < work.each_way // 4:
            await asyncio.sleep(0.01)
        world.bot.mode = "down"  # 503 to everything
        await asyncio.sleep(8)
        world.bot.mode = "slow"  # answers after the gateway gave up: redeliveries
        await asyncio.sleep(3)
        world.bot.mode = "up"

    task = asyncio.create_task(outage())
    try:
        await run_workload(world, work)
        await task
        await settle(world, work)
    finally:
        task.cancel()
        world.bot.stop()
    answered = world.bot.answered
    described = f"503 x{answered['down']}, slow x{answered['slow']} (8 s down, 3 s slow)"
    row = Row("bot endpoint down, slow, back", work.each_way, described)
    row.seconds = time.monotonic() - started
    _check(await count(world, work, row), rows)
    assert answered["down"] > 0
    assert answered["slow"] > 0


async def test_every_webhook_delivered_twice(
    processes: Processes, tmp_path: Path, rows: list[Row]
) -> None:
    world = start_world(processes, tmp_path)
    work = Workload(handoffs=5, per_handoff=60)
    started = time.monotonic()

    async def duplicate_everything() -> None:
        # Every webhook twice; the two copies alternate between one after the other
        # and at the same time (two requests in flight for one delivery).
        concurrent = False
        async with httpx.AsyncClient(base_url=world.sim_url, timeout=10) as sim:
            while True:
                await sim.post(
                    "/_sim/webhooks/duplicate",
                    json={"count": 1_000_000, "concurrent": concurrent},
                )
                concurrent = not concurrent
                await asyncio.sleep(0.25)

    async with httpx.AsyncClient(base_url=world.sim_url, timeout=10) as sim:
        await sim.post("/_sim/webhooks/duplicate", json={"count": 1_000_000})
    task = asyncio.create_task(duplicate_everything())
    try:
        await run_workload(world, work)
        await settle(world, work)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        world.bot.stop()
    async with httpx.AsyncClient(base_url=world.sim_url, timeout=30) as sim:
        deliveries = (await sim.get("/_sim/webhooks/deliveries")).json()
    webhooks = Counter(d["copy"] for d in deliveries)
    described = f"{webhooks[2]} of {webhooks[1]} webhooks sent twice"
    row = Row("every LiveChat webhook twice", work.each_way, described)
    row.seconds = time.monotonic() - started
    _check(await count(world, work, row), rows)
    assert webhooks[2] == webhooks[1]
