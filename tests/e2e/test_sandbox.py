"""`livechat-hitl sandbox` starts, prints its URLs and a curl, and that curl works."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from .procs import (
    LOOPBACK,
    Processes,
    clean_env,
    free_port,
    run_command,
    wait_http,
    wait_until,
)

pytestmark = pytest.mark.slow

READY = "Then accept, reply and close the chat in the agent console."


def start_curl(banner: str) -> str:
    lines = [line.strip() for line in banner.splitlines()]
    return next(line for line in lines if line.startswith("curl ") and "/v1/handoffs" in line)


def run_curl(command: str) -> dict[str, Any]:
    """Run the printed command as a user would paste it (httpx where curl is missing)."""
    if shutil.which("curl") and shutil.which("bash"):
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=20, check=False
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))
    args = shlex.split(command)
    url = next(a for a in args if a.startswith("http"))
    headers = dict(args[i + 1].split(": ", 1) for i, a in enumerate(args) if a == "-H")
    body = args[args.index("-d") + 1]
    response = httpx.post(url, headers=headers, content=body, timeout=10)
    return dict(response.json())


def test_sandbox_prints_urls_and_a_curl_that_starts_a_handoff(
    processes: Processes, tmp_path: Path
) -> None:
    gateway_port, sim_port = free_port(), free_port()
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    simulator_url = f"http://{LOOPBACK}:{sim_port}"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    sandbox = processes.start(
        "sandbox",
        ["sandbox"],
        clean_env(HITL_PORT=str(gateway_port), HITL_SIMULATOR_PORT=str(sim_port)),
        cwd=cwd,
    )
    banner = sandbox.wait_for_stdout(READY)
    wait_http(f"{gateway_url}/healthz", sandbox)

    assert re.search(rf"gateway\s+{re.escape(gateway_url)}\s", banner), banner
    assert f"{gateway_url}/console/" in banner
    assert re.search(rf"simulator\s+{re.escape(simulator_url)}\s", banner), banner
    assert "API key        sandbox-key" in banner
    assert "setup problem" not in banner
    assert (cwd / "livechat-hitl-sandbox.db").exists(), "the sandbox store is in the cwd"

    command = start_curl(banner)
    handoff = run_curl(command)
    assert handoff["conversation_id"] == "demo-1"
    assert handoff["state"] in ("requested", "queued")

    # Manual routing: the chat waits in the queue for a person in the console.
    api = httpx.Client(
        base_url=gateway_url, headers={"Authorization": "Bearer sandbox-key"}, timeout=10
    )
    with api:
        queued = wait_until(
            lambda: (
                (h := api.get(f"/v1/handoffs/{handoff['id']}").json())["state"] == "queued" and h
            ),
            what="the sandbox handoff to be queued",
            alive=[sandbox],
        )
        chat_id = queued["livechat"]["chat_id"]
        console = httpx.get(f"{gateway_url}/console/", timeout=10)
        assert console.status_code == 200
        assert chat_id in console.text
        assert "I want a refund for order 1234." in console.text

        # The same curl again is the same handoff (never a second LiveChat chat).
        again = run_curl(command)
        assert again["id"] == handoff["id"]
        assert len(httpx.get(f"{simulator_url}/_sim/chats", timeout=10).json()) == 1

    # The printed event-stream curl shows the bot's events so far.
    events_curl = next(line.strip() for line in banner.splitlines() if "/v1/events" in line)
    if shutil.which("curl"):
        done = subprocess.run(
            ["bash", "-c", f"{events_curl} --max-time 2"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert "event: handoff.started" in done.stdout
        assert "event: handoff.queued" in done.stdout


def test_sandbox_stops_cleanly_on_sigterm(processes: Processes, tmp_path: Path) -> None:
    gateway_port, sim_port = free_port(), free_port()
    sandbox = processes.start(
        "sandbox",
        ["sandbox"],
        clean_env(HITL_PORT=str(gateway_port), HITL_SIMULATOR_PORT=str(sim_port)),
        cwd=tmp_path,
    )
    sandbox.wait_for_stdout(READY)
    sandbox.popen.send_signal(signal.SIGTERM)
    assert sandbox.popen.wait(timeout=15) == 0, sandbox.output()
    assert "Traceback" not in sandbox.stderr
    for port in (gateway_port, sim_port):
        with pytest.raises(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            pass


def test_sandbox_names_a_busy_port_and_exits(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = clean_env(HITL_PORT=str(port), HITL_SIMULATOR_PORT=str(free_port()))
        result = run_command(["sandbox"], env, cwd=tmp_path, timeout=20)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"HITL_PORT: cannot listen on {LOOPBACK}:{port} (Address already in use)"
    ]
    assert not (tmp_path / "livechat-hitl-sandbox.db").exists()


def test_sandbox_never_prints_an_api_key_from_the_environment(
    processes: Processes, tmp_path: Path
) -> None:
    key = "my-own-S3CR3T-key"
    gateway_port = free_port()
    sandbox = processes.start(
        "sandbox",
        ["sandbox"],
        clean_env(
            HITL_PORT=str(gateway_port),
            HITL_SIMULATOR_PORT=str(free_port()),
            HITL_API_KEYS=f"{key},second-key",
        ),
        cwd=tmp_path,
    )
    banner = sandbox.wait_for_stdout(READY)
    assert key not in banner
    command = start_curl(banner)
    # The printed curl reads the key from the shell, as the banner says.
    if shutil.which("curl"):
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ, "HITL_API_KEYS": f"{key},second-key"},
        )
        assert json.loads(done.stdout)["conversation_id"] == "demo-1", done.stdout + done.stderr
    assert key not in sandbox.stdout + sandbox.stderr
