"""A real simulator under uvicorn on a loopback port, plus a webhook receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvicorn

from livechat_hitl.simulator import Simulator, SimulatorConfig, create_simulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


class Running:
    def __init__(self, sim: Simulator, base: str, receiver: Receiver) -> None:
        self.sim = sim
        self.base = base
        self.receiver = receiver

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the simulator's delivery log has no pending delivery."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = httpx.get(f"{self.base}/_sim/webhooks/deliveries").json()
            if all(d["outcome"] != "pending" for d in log):
                return
            time.sleep(0.02)
        raise AssertionError("webhook deliveries did not settle")


@pytest.fixture
def running() -> Iterator[Running]:
    receiver = Receiver()
    receiver.thread.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = create_simulator(
        SimulatorConfig(
            seed=3,
            group_id=5,
            group_name="Support",
            base_url=base,
            webhook_retry_schedule=[0.05, 0.1, 0.2],
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(sim.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    try:
        yield Running(sim, base, receiver)
    finally:
        server.should_exit = True
        thread.join(10)
        receiver.server.shutdown()
        receiver.server.server_close()
