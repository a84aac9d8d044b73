"""`livechat-hitl sandbox`: gateway + LiveChat simulator + agent console, no account.

One process serves two ports: the gateway (HITL_PORT, default 8080, with the agent
console under /console) and the LiveChat simulator (HITL_SIMULATOR_PORT, default 8090).
The simulator routes manually, so chats wait in the queue until a person accepts them
in the console. The gateway registers its webhooks on the simulator exactly as
`livechat-hitl setup` does on real LiveChat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from pydantic import SecretStr

from livechat_hitl.config import Settings, load_settings
from livechat_hitl.errors import ConfigurationError
from livechat_hitl.http.app import create_app
from livechat_hitl.listen import PortUnavailable, listening_socket
from livechat_hitl.livechat.setup import setup_livechat
from livechat_hitl.logs import configure_logging, register_secrets
from livechat_hitl.runtime import Gateway
from livechat_hitl.simulator.app import create_simulator
from livechat_hitl.simulator.config import ConfigError, SimulatorConfig
from livechat_hitl.web.console import create_console_app

SANDBOX_API_KEY = "sandbox-key"
SANDBOX_DATABASE = "./livechat-hitl-sandbox.db"


def sandbox_settings(base: Settings, simulator: SimulatorConfig, webhook_secret: str) -> Settings:
    """The gateway's settings, pointed at the simulator (explicit values win over env)."""
    database = base.database_url
    if "database_url" not in base.model_fields_set:
        database = f"sqlite:///{SANDBOX_DATABASE}"
    return base.model_copy(
        update={
            "database_url": database,
            "api_keys": base.api_keys or SecretStr(SANDBOX_API_KEY),
            "livechat_api_url": simulator.base_url,
            "livechat_accounts_url": simulator.base_url,
            "livechat_agent_token": SecretStr(simulator.agent_token),
            "livechat_account_id": None,
            "livechat_pat": None,
            "livechat_client_id": simulator.client_id,
            "livechat_organization_id": simulator.organization_id,
            "livechat_webhook_secret": SecretStr(webhook_secret),
            "livechat_group_id": simulator.group_id,
        }
    )


def start_curl(settings: Settings, api_key: str) -> str:
    """A ready-to-paste curl that starts a handoff (`api_key` may be a shell expansion)."""
    body = {
        "conversation_id": "demo-1",
        "user": {"id": "user-1", "name": "Ada Lovelace", "email": "ada@example.com"},
        "title": "Refund for order 1234",
        "description": "The bot could not process the refund.",
        "transcript": [
            {"role": "user", "text": "I want a refund for order 1234."},
            {"role": "bot", "text": "I cannot do refunds; let me get you a human."},
        ],
    }
    return (
        f"curl -sS -w '\\n' -X POST {settings.public_url}/v1/handoffs "
        f'-H "Authorization: Bearer {api_key}" -H "Content-Type: application/json" '
        f"-d {shlex.quote(json.dumps(body))}"
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve_sandbox`, which stops both servers
    (uvicorn's own handling would stop one, then re-raise the signal and kill the process
    before the other has shut down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _start(server: uvicorn.Server, sock: socket.socket, name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    while not server.started:
        if task.done():
            break
        await asyncio.sleep(0.02)
    return task


async def serve_sandbox(
    settings: Settings,
    simulator_config: SimulatorConfig,
    gateway_socket: socket.socket,
    simulator_socket: socket.socket,
) -> int:
    """Run simulator and gateway until a signal or until either stops; the exit status."""
    simulator = create_simulator(simulator_config)
    sim_server = _Server(
        uvicorn.Config(simulator.app, log_config=None, lifespan="on", access_log=False)
    )
    app = create_app(Gateway(settings))
    app.mount(
        "/console", create_console_app(simulator_config.base_url, list(simulator_config.agents))
    )
    # No access log: the console polls every few seconds and would drown the rest.
    gw_server = _Server(uvicorn.Config(app, log_config=None, access_log=False))
    servers = (gw_server, sim_server)

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(await _start(sim_server, simulator_socket, "simulator"))
        if sim_server.started:
            tasks.append(await _start(gw_server, gateway_socket, "gateway"))
        if not all(server.started for server in servers):
            print("livechat-hitl sandbox: start-up failed (see the log above)", file=sys.stderr)
            return 1
        report = await _register_webhooks(settings, simulator_config)
        print(_banner(settings, simulator_config, report.problems), flush=True)
        # Either server stopping (a signal, or a crash) stops the other.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return 0
    finally:
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _register_webhooks(settings: Settings, simulator_config: SimulatorConfig) -> Any:
    """What `livechat-hitl setup` does on real LiveChat, done on the simulator."""
    from livechat_hitl.livechat.auth import AgentCredentials
    from livechat_hitl.livechat.client import LiveChatClient

    secret = settings.livechat_webhook_secret
    assert secret is not None
    async with httpx.AsyncClient(timeout=10.0) as http:
        client = LiveChatClient(
            http,
            api_url=simulator_config.base_url,
            accounts_url=simulator_config.base_url,
            agent_credentials=AgentCredentials.from_agent_token(simulator_config.agent_token),
            client_id=simulator_config.client_id,
            organization_id=simulator_config.organization_id,
        )
        return await setup_livechat(
            client,
            webhook_url=f"{settings.public_url}/livechat/webhooks",
            secret=secret.get_secret_value(),
            group_id=simulator_config.group_id,
        )


def _api_key(settings: Settings) -> tuple[str, str]:
    """(what the banner shows, what the printed curls send) for the bot API key.

    The sandbox's own key is printed as is. A key from HITL_API_KEYS is a secret and is
    never printed: the curls read it from the shell's environment instead.
    """
    if settings.api_key_list == (SANDBOX_API_KEY,):
        return SANDBOX_API_KEY, SANDBOX_API_KEY
    return "the first of HITL_API_KEYS (not shown)", "${HITL_API_KEYS%%,*}"


def _banner(settings: Settings, sim: SimulatorConfig, problems: list[str]) -> str:
    shown, sent = _api_key(settings)
    events_curl = f'curl -N {settings.public_url}/v1/events -H "Authorization: Bearer {sent}"'
    lines = [
        "",
        "livechat-hitl sandbox is running (Ctrl+C stops it)",
        f"  gateway        {settings.public_url}   (API docs: {settings.public_url}/docs)",
        f"  agent console  {settings.public_url}/console/   (play the LiveChat agent here)",
        f"  simulator      {sim.base_url}   (LiveChat stand-in)",
        f"  database       {_shown_database(settings.database_url)}",
        f"  API key        {shown}",
        *(f"  setup problem: {p}" for p in problems),
        "",
        "Start a handoff:",
        f"  {start_curl(settings, sent)}",
        "",
        "Watch the bot's events:",
        f"  {events_curl}",
        "",
        "Then accept, reply and close the chat in the agent console.",
    ]
    return "\n".join(lines)


def _shown_database(url: str) -> str:
    """The database URL without its password, if it has one."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _load_configuration() -> tuple[Settings, SimulatorConfig]:
    """Both halves' configuration; every problem of both is reported at once."""
    problems: list[str] = []
    settings: Settings | None = None
    simulator_config: SimulatorConfig | None = None
    try:
        settings = load_settings(require_serve=False)
    except ConfigurationError as exc:
        problems += exc.problems
    try:
        simulator_config = SimulatorConfig.from_env()
    except ConfigError as exc:
        named = {line.split(":", 1)[0] for line in problems}
        problems += [p for p in exc.problems if p.split(":", 1)[0] not in named]
    if problems or settings is None or simulator_config is None:
        raise ConfigurationError(problems)
    return settings, simulator_config


def run_sandbox() -> int:
    """`livechat-hitl sandbox`: the exit status (2: bad configuration, 1: cannot start)."""
    try:
        base, simulator_config = _load_configuration()
    except ConfigurationError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    simulator_config.routing_mode = "manual"
    settings = sandbox_settings(base, simulator_config, secrets.token_urlsafe(24))
    sim_port = int(simulator_config.base_url.rsplit(":", 1)[1])
    try:
        gateway_socket = listening_socket(settings.host, settings.port, "HITL_PORT")
    except PortUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        simulator_socket = listening_socket(settings.host, sim_port, "HITL_SIMULATOR_PORT")
    except PortUnavailable as exc:
        gateway_socket.close()
        print(exc, file=sys.stderr)
        return 1
    if settings.database_url == f"sqlite:///{SANDBOX_DATABASE}":
        # The simulator forgets its chats when it stops: start the sandbox store afresh.
        for suffix in ("", "-wal", "-shm"):
            Path(SANDBOX_DATABASE + suffix).unlink(missing_ok=True)
    register_secrets(settings.secret_values())
    configure_logging(settings.log_level.value, settings.log_format.value)
    with gateway_socket, simulator_socket:
        return asyncio.run(
            serve_sandbox(settings, simulator_config, gateway_socket, simulator_socket)
        )
