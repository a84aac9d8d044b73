"""The gateway's CPU per message at fixed agent → bot rates, for one change at a time.

The full bench (bench/run.py) reports rates and latencies; this one answers "what does a
message cost now": the same processes (simulator, `livechat-hitl serve` on SQLite or
PostgreSQL, the signature-checking bot receiver), the live handoffs and a warm-up, then
for each rate an open loop of `incoming_event` webhooks for `--seconds`, waiting until
the bot has every one. Printed per rate: the gateway's CPU (user + system, from /proc)
as a share of one core and per message, its user/system split, the end-to-end latency
percentiles, the zero-loss check, and per message the relay's claims (found, empty,
handed over by the writing transaction) and deliveries by target, from `/metrics`;
with `--profile`, py-spy's busiest frames.

    python -m bench.probe [--rates 50,300] [--seconds 10] [--postgres URL] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx

from bench import loadgen
from bench.procs import Process, Processes
from bench.run import (
    LIVE_HANDOFFS,
    Bench,
    Stack,
    add_gateway_setting,
    cpu_check_ms,
    end_to_end,
    gateway_settings,
    parse_args,
    profile_summary,
    profiled,
)


async def _counters(url: str) -> Counter[str]:
    """The relay's claims (found/empty) and deliveries (by target) from `/metrics`."""
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("hitl_outbox_claims_total{"):
            counts["claims " + line.split('result="')[1].split('"')[0]] += int(
                float(line.split()[-1])
            )
        elif line.startswith("hitl_outbox_deliveries_total{") and 'outcome="delivered"' in line:
            counts["delivered " + line.split('target="')[1].split('"')[0]] += int(
                float(line.split()[-1])
            )
    return counts


def _ticks(process: Process) -> tuple[int, int]:
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


async def probe(args: argparse.Namespace, workdir: Path) -> int:
    postgres = ["--postgres", args.postgres] if args.postgres else []
    run_args = parse_args(["--no-results-md", *postgres])
    procs = Processes(workdir)
    stack = Stack(workdir, procs, run_args.postgres, settings=gateway_settings(args))
    bench = Bench(stack, run_args)
    failed = 0
    try:
        stack.start_common()
        gateway = stack.start_gateway(await stack.new_database("probe"))
        await bench.open_live_handoffs(LIVE_HANDOFFS)
        await bench.warm_up()
        for rate in args.rates:
            tag = bench.tag()
            out = args.profile_dir / f"probe-{rate:g}.txt"
            counts0 = await _counters(stack.gateway_url)
            cpu0, (user0, system0) = gateway.cpu_seconds(), _ticks(gateway)
            out0 = gateway.children_cpu_seconds()
            with profiled(gateway, out, args.profile):
                async with loadgen.client(stack.gateway_url, connections=64) as http:
                    shots, _elapsed, skipped = await loadgen.open_loop(
                        http, bench.webhook_factory(tag), rate=rate, seconds=args.seconds
                    )
                received = await bench.wait_at_bot(tag, len(shots))
            cpu = gateway.cpu_seconds() - cpu0
            outbound = gateway.children_cpu_seconds() - out0
            user1, system1 = _ticks(gateway)
            counts = await _counters(stack.gateway_url)
            counts.subtract(counts0)
            e2e = end_to_end(shots, received)
            delivered = max(1, e2e["received"])
            lat = e2e["latency_ms"]
            failed += not e2e["zero_loss"]
            print(
                f"\n{rate:g}/s × {args.seconds:g} s: gateway CPU "
                f"{cpu / args.seconds:.0%} of a core, "
                f"{cpu / delivered * 1000:.2f} ms per message (user/system ticks "
                f"{user1 - user0}/{system1 - system0}); its outbound process "
                f"{outbound / args.seconds:.0%} of a core, {outbound / delivered * 1000:.2f} ms "
                f"per message; end to end p50/p95/p99 "
                f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms; "
                f"{skipped} skipped, {e2e['missing']} lost, {e2e['duplicates']} dup; "
                f"CPU check {cpu_check_ms()} ms (lower is faster)",
                flush=True,
            )
            per = ", ".join(f"{k} {v / delivered:.2f}" for k, v in sorted(counts.items()))
            print(f"  per message: {per}", flush=True)
            if args.profile:
                for frame, own, incl in profile_summary(out, top=20):
                    print(f"  {own:5.1f}% self {incl:5.1f}% incl  {frame}")
    finally:
        procs.stop_all()
        await stack.drop_databases()
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__.split("\n")[0])
    p.add_argument("--rates", default="50,300", help="comma list of events/s (default 50,300)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds at each rate")
    p.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL; default SQLite")
    p.add_argument("--profile", action="store_true", help="py-spy the gateway at each rate")
    add_gateway_setting(p)
    p.add_argument("--profile-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = p.parse_args()
    args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="livechat-hitl-probe-") as tmp:
        return asyncio.run(probe(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
