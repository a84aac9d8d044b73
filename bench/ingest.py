"""Webhook ingest alone: `POST /livechat/webhooks` of a gateway whose relay is off.

The full bench (bench/run.py) measures ingest while the same process drains the
outbox to the bot, so its figure moves with the relay's work. This one isolates the
door: a gateway on a SQLite file seeded with open handoffs (bench/seed.py), served like
`livechat-hitl serve` (same uvicorn flags, same logging) but without the relay, and the
baseline app, both driven by the same closed loop. At the end, every acknowledged
delivery must be an INBOUND outbox row.

    python -m bench.ingest [--count 20000] [--seconds 10] [--concurrency 64] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench import floor_app, loadgen
from bench.procs import LOOPBACK, Processes, clean_env, free_port, wait_http, wait_until
from bench.seed import seed_open_handoffs

HANDOFFS = 100
ROOT = Path(__file__).resolve().parent.parent
SERVE = "--serve"  # child mode: run the gateway


def _agent(i: int) -> str:
    return f"agent{i % 50}@seed.example"  # as bench/seed.py names them


def webhook_factory(secret: str, organization_id: str, tag: str) -> loadgen.RequestFactory:
    """`incoming_event` deliveries (an agent's message) shaped like LiveChat's."""

    def make(seq: int) -> tuple[str, bytes]:
        i = seq % HANDOFFS
        thread_id = f"SEEDT{i:07d}"
        body = {
            "webhook_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "secret_key": secret,
            "action": "incoming_event",
            "organization_id": organization_id,
            "payload": {
                "chat_id": f"SEED{i:07d}",
                "thread_id": thread_id,
                "event": {
                    "id": f"{thread_id}_{tag}{seq}",
                    "created_at": "2026-01-01T12:00:00.000000Z",
                    "visibility": "all",
                    "type": "message",
                    "text": f"bench {tag} {seq}",
                    "author_id": _agent(i),
                },
            },
            "additional_data": {"chat_properties": {}, "chat_presence_user_ids": []},
        }
        return "/livechat/webhooks", json.dumps(body).encode()

    return make


def serve() -> None:
    """The child: `livechat-hitl serve` without the relay (settings from HITL_*)."""
    import uvicorn

    from livechat_hitl.config import load_settings
    from livechat_hitl.http.app import create_app
    from livechat_hitl.logs import configure_logging, register_secrets
    from livechat_hitl.runtime import Gateway

    settings = load_settings(require_serve=True)
    register_secrets(settings.secret_values())
    configure_logging(settings.log_level.value, settings.log_format.value)
    config = uvicorn.Config(
        create_app(Gateway(settings, run_relay=False)),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
         "--format", "raw", "-o", str(out), "--rate", "200", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def inbound_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM outbox WHERE target = 'inbound'").fetchone()
    return int(count)


async def closed_loop(url: str, make: loadgen.RequestFactory, args: Any) -> dict[str, Any]:
    async with loadgen.client(url, connections=args.concurrency) as http:
        await loadgen.closed_loop(http, make, count=500, concurrency=16, max_seconds=10)  # warm
        shots, seconds = await loadgen.closed_loop(
            http,
            make,
            count=args.count,
            concurrency=args.concurrency,
            max_seconds=args.seconds,
            first_seq=1_000_000,
        )
    ok = [s for s in shots if s.status == 200]
    return {
        "rps": len(ok) / seconds,
        "ok": len(ok),
        "errors": len(shots) - len(ok),
        **loadgen.percentiles([s.latency for s in ok]),
    }


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    db = workdir / "ingest.db"
    await seed_open_handoffs(f"sqlite:///{db}", HANDOFFS)
    seeded_rows = inbound_rows(db)
    secret = f"lc-{secrets.token_urlsafe(12)}"
    organization_id = str(uuid.uuid4())
    port, baseline_port, floor_port = free_port(), free_port(), free_port()
    floor_db = str(workdir / "floor.db")
    env = clean_env(
        HITL_HOST=LOOPBACK,
        HITL_PORT=str(port),
        HITL_PUBLIC_URL=f"http://{LOOPBACK}:{port}",
        HITL_DATABASE_URL=f"sqlite:///{db}",
        HITL_API_KEYS=f"bench-{secrets.token_urlsafe(12)}",
        HITL_LIVECHAT_API_URL=f"http://{LOOPBACK}:9",  # never called: the relay is off
        HITL_LIVECHAT_ACCOUNTS_URL=f"http://{LOOPBACK}:9",
        HITL_LIVECHAT_WEBHOOK_SECRET=secret,
        HITL_LIVECHAT_ACCOUNT_ID="5f0d2a8e-1c3b-4d5e-9f7a-6b8c0d2e4f61",
        HITL_LIVECHAT_PAT="dal:bench-pat-0000000000000000",
        HITL_LIVECHAT_CLIENT_ID="0123456789abcdef0123456789abcdef",
        HITL_LIVECHAT_ORGANIZATION_ID=organization_id,
        HITL_BOT_WEBHOOK_URL=f"http://{LOOPBACK}:9/hooks",
        HITL_BOT_WEBHOOK_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        HITL_LOG_LEVEL="info",
        # This tree's code, also when the tree is a copy (to compare with another commit).
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    )
    procs = Processes(workdir)
    try:
        gateway = procs.start("gateway", [sys.executable, "-m", "bench.ingest", SERVE], env)
        baseline = procs.start(
            "baseline", [sys.executable, "-m", "bench.baseline_app", str(baseline_port)], env
        )
        wait_http(f"http://{LOOPBACK}:{port}/healthz", gateway, timeout=120)
        floor = procs.start(
            "floor",
            [sys.executable, "-m", "bench.floor_app", str(floor_port), floor_db, secret],
            env,
        )
        baseline_url = f"http://{LOOPBACK}:{baseline_port}"
        floor_url = f"http://{LOOPBACK}:{floor_port}"
        for url, proc in ((baseline_url, baseline), (floor_url, floor)):
            wait_until(
                lambda url=url: httpx.post(url, content=b"{}", timeout=2).status_code < 500,
                what=url,
                alive=[proc],
            )
        make = webhook_factory(secret, organization_id, secrets.token_hex(2))
        base = await closed_loop(baseline_url, make, args)
        least = await closed_loop(floor_url, make, args)
        spy = start_profiler(gateway.pid, args.profile_out) if args.profile else None
        await asyncio.sleep(1)
        cpu0 = gateway.cpu_seconds()
        gw = await closed_loop(f"http://{LOOPBACK}:{port}", make, args)
        cpu = gateway.cpu_seconds() - cpu0
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
    finally:
        procs.stop_all()
    rows = inbound_rows(db) - seeded_rows
    floor_rows = floor_app.rows(floor_db)
    acknowledged = gw["ok"] + 500  # + the warm-up
    print(
        f"ingest only ({args.concurrency} conns): gateway {gw['rps']:,.0f} req/s "
        f"(p50 {gw['p50']:.1f} / p99 {gw['p99']:.1f} ms, {gw['errors']} errors, "
        f"{cpu / max(1, gw['ok'] + 500) * 1e6:,.0f} µs CPU per request incl. warm-up) | "
        f"baseline {base['rps']:,.0f} req/s | ratio {gw['rps'] / base['rps']:.3f} | "
        f"inbound rows {rows} for {acknowledged} acknowledged"
    )
    print(
        f"durable floor: {least['rps']:,.0f} req/s (p50 {least['p50']:.1f} / p99 "
        f"{least['p99']:.1f} ms, {least['errors']} errors) | ratio to the baseline "
        f"{least['rps'] / base['rps']:.3f} | the gateway at "
        f"{gw['rps'] / least['rps']:.3f} of it | rows {floor_rows} "
        f"for {least['ok'] + 500} acknowledged"
    )
    if rows != acknowledged or floor_rows != least["ok"] + 500:
        raise SystemExit("an acknowledged delivery was not recorded")
    if args.profile:
        from bench.run import profile_summary

        for frame, own, incl in profile_summary(args.profile_out, top=30):
            print(f"  {own:5.1f}% self {incl:5.1f}% incl  {frame}")


def main() -> None:
    if sys.argv[1:] == [SERVE]:
        serve()
        return
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--profile", action="store_true", help="py-spy the gateway")
    p.add_argument("--profile-out", type=Path, default=Path("/tmp/ingest-profile.txt"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="livechat-hitl-ingest-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
