"""Real processes on loopback ports, for the e2e and browser tiers.

`Processes` starts `livechat-hitl` commands with their output captured to files, waits
for their ports, and always stops them (SIGTERM, then SIGKILL). When a test fails, the
`pytest_runtest_makereport` hook below adds every process's output to the report.
`BotReceiver` is the bot's webhook endpoint: a Starlette app under uvicorn in a thread
that verifies every Standard Webhooks signature.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PROCESSES = pytest.StashKey["Processes"]()
LOOPBACK = "127.0.0.1"


def livechat_hitl_command() -> list[str]:
    """The console script installed next to this interpreter (the venv's)."""
    script = Path(sys.executable).parent / "livechat-hitl"
    if script.exists():
        return [str(script)]
    found = shutil.which("livechat-hitl")
    if found:
        return [found]
    return [sys.executable, "-c", "from livechat_hitl.cli import main; main()"]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it for a bound socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """The test runner's environment without any HITL_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


@dataclass(frozen=True)
class Credentials:
    """Fresh LiveChat credentials and secrets for one world of real processes."""

    livechat: dict[str, str]  # HITL_LIVECHAT_ACCOUNT_ID / _PAT / _CLIENT_ID / _ORGANIZATION_ID
    api_key: str
    bot_secret: str
    livechat_secret: str

    @property
    def secrets(self) -> list[str]:
        """Every secret value, to look for in the processes' output."""
        pat = self.livechat["HITL_LIVECHAT_PAT"]
        return [
            pat,
            self.api_key,
            self.bot_secret,
            self.bot_secret.removeprefix("whsec_"),
            self.livechat_secret,
        ]


def fresh_credentials(prefix: str) -> Credentials:
    return Credentials(
        livechat={
            "HITL_LIVECHAT_ACCOUNT_ID": str(uuid.uuid4()),
            "HITL_LIVECHAT_PAT": f"dal:{prefix}-pat-{secrets.token_urlsafe(12)}",
            "HITL_LIVECHAT_CLIENT_ID": secrets.token_hex(16),
            "HITL_LIVECHAT_ORGANIZATION_ID": str(uuid.uuid4()),
        },
        api_key=f"{prefix}-key-{secrets.token_urlsafe(12)}",
        bot_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        livechat_secret=f"lc-hook-{secrets.token_urlsafe(12)}",
    )


def gateway_settings(
    creds: Credentials,
    *,
    port: int,
    simulator_url: str,
    database: Path,
    bot_url: str,
    **extra: str,
) -> dict[str, str]:
    """The `serve`/`setup` variables of a gateway wired to a simulator and a bot."""
    url = f"http://{LOOPBACK}:{port}"
    return {
        "HITL_HOST": LOOPBACK,
        "HITL_PORT": str(port),
        "HITL_PUBLIC_URL": url,
        "HITL_DATABASE_URL": f"sqlite:///{database}",
        "HITL_API_KEYS": creds.api_key,
        "HITL_BOT_WEBHOOK_URL": bot_url,
        "HITL_BOT_WEBHOOK_SECRET": creds.bot_secret,
        "HITL_LIVECHAT_API_URL": simulator_url,
        "HITL_LIVECHAT_ACCOUNTS_URL": simulator_url,
        "HITL_LIVECHAT_WEBHOOK_SECRET": creds.livechat_secret,
        **creds.livechat,
        **extra,
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with status {code}\n{self.output()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def wait_for_stdout(self, text: str, timeout: float = 20.0) -> str:
        """Wait until `text` shows in the process's stdout; returns the stdout so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.stdout
            if text in seen:
                return seen
            self.check_alive()
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print {text!r} in {timeout}s\n{self.output()}")


@dataclass
class Processes:
    """Every process one test started; `stop_all` ends them in reverse order."""

    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Process:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stdout_path, stderr_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(
                [*livechat_hitl_command(), *args],
                env=dict(env),
                cwd=cwd or self.workdir,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        process = Process(name, popen, stdout_path, stderr_path)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def report(self) -> list[tuple[str, str]]:
        return [(f"process {p.name}", p.output()) for p in self.started]


def run_command(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a `livechat-hitl` command to completion, capturing its output as text."""
    return subprocess.run(
        [*livechat_hitl_command(), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children now (`serve`'s outbound process)."""
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in path.read_text().split()]
    return found


def wait_until(
    check: Callable[[], Any],
    *,
    timeout: float = 15.0,
    what: str = "condition",
    alive: list[Process] | None = None,
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError) as exc:
            last_error, result = exc, None
        if result:
            return result
        for process in alive or []:
            process.check_alive()
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last_error!r})")


def wait_http(url: str, process: Process, timeout: float = 20.0) -> None:
    """Wait until `url` answers 200, failing early if the process dies."""
    wait_until(
        lambda: httpx.get(url, timeout=2.0).status_code == 200,
        timeout=timeout,
        what=f"{process.name} at {url}",
        alive=[process],
    )


def wait_port(port: int, process: Process, timeout: float = 20.0) -> None:
    def accepting() -> bool:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True

    wait_until(accepting, timeout=timeout, what=f"{process.name} on port {port}", alive=[process])


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Generator[Processes, None, None]:
    group = Processes(tmp_path)
    request.node.stash[PROCESSES] = group
    try:
        yield group
    finally:
        group.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, show what every process of the test printed."""
    outcome = yield
    report = outcome.get_result()
    group = item.stash.get(PROCESSES, None)
    if report.failed and group is not None:
        for title, text in group.report():
            report.sections.append((title, text))


@dataclass
class BotReceiver:
    """The bot's webhook endpoint on a loopback port; verifies every signature."""

    secret: str
    port: int = field(default_factory=free_port)
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hooks"

    def app(self) -> Starlette:
        verifier = Webhook(self.secret)

        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                verifier.verify(body, headers)
            except Exception:
                with self._lock:
                    self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=400)
            with self._lock:
                self.headers.append(headers)
                self.events.append(json.loads(body))
            return JSONResponse({})

        return Starlette(routes=[Route("/hooks", hook, methods=["POST"])])

    def start(self) -> None:
        config = uvicorn.Config(
            self.app(), host=LOOPBACK, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="bot-receiver", daemon=True)
        self._thread.start()
        wait_until(lambda: self._server is not None and self._server.started, what="bot receiver")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def of_type(self, event_type: str, handoff_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e for e in self.events if e["type"] == event_type and e["handoff_id"] == handoff_id
            ]

    def types(self, handoff_id: str) -> list[str]:
        with self._lock:
            return [e["type"] for e in self.events if e["handoff_id"] == handoff_id]
