"""A real sandbox process (gateway + simulator) on free loopback ports, for fuzzing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

API_KEY = "sandbox-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("sandbox")
    gateway_port, simulator_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HITL_")},
        "HITL_PORT": str(gateway_port),
        "HITL_SIMULATOR_PORT": str(simulator_port),
        "HITL_LOG_LEVEL": "warning",
        # Generated file URLs name random public hosts: fetch nothing (loopback only).
        "HITL_FETCH_ONLY_ALLOWLIST": "true",
    }
    log = (workdir / "sandbox.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "livechat_hitl", "sandbox"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{gateway_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(Path(log.name).read_text())
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not become ready:\n" + Path(log.name).read_text())
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
