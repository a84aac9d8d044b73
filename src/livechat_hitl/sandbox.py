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
import sys
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr

from livechat_hitl.config import Settings, load_settings
from livechat_hitl.errors import ConfigurationError
from livechat_hitl.http.app import create_app
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
    if "HITL_DATABASE_URL" not in base.model_fields_set and "database_url" not in (
        base.model_fields_set
    ):
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
        f"curl -s -X POST {settings.public_url}/v1/handoffs "
        f"-H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))}"
    )


async def serve_sandbox(settings: Settings, simulator_config: SimulatorConfig) -> None:
    simulator = create_simulator(simulator_config)
    sim_port = int(simulator_config.base_url.rsplit(":", 1)[1])
    sim_server = uvicorn.Server(
        uvicorn.Config(
            simulator.app,
            host=settings.host,
            port=sim_port,
            log_config=None,
            lifespan="on",
            access_log=False,
        )
    )
    gateway = Gateway(settings)
    app = create_app(gateway)
    app.mount(
        "/console", create_console_app(simulator_config.base_url, list(simulator_config.agents))
    )
    gw_server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
    )
    sim_task = asyncio.create_task(sim_server.serve(), name="simulator")
    while not sim_server.started:
        if sim_task.done():
            await sim_task
            raise SystemExit(1)
        await asyncio.sleep(0.05)
    gw_task = asyncio.create_task(gw_server.serve(), name="gateway")
    while not gw_server.started:
        if gw_task.done():
            sim_server.should_exit = True
            await asyncio.gather(gw_task, sim_task, return_exceptions=True)
            raise SystemExit(1)
        await asyncio.sleep(0.05)
    secret = settings.livechat_webhook_secret
    assert secret is not None
    async with httpx.AsyncClient(timeout=10.0) as http:
        from livechat_hitl.livechat.auth import AgentCredentials
        from livechat_hitl.livechat.client import LiveChatClient

        client = LiveChatClient(
            http,
            api_url=simulator_config.base_url,
            accounts_url=simulator_config.base_url,
            agent_credentials=AgentCredentials.from_agent_token(simulator_config.agent_token),
            client_id=simulator_config.client_id,
            organization_id=simulator_config.organization_id,
        )
        report = await setup_livechat(
            client,
            webhook_url=f"{settings.public_url}/livechat/webhooks",
            secret=secret.get_secret_value(),
            group_id=simulator_config.group_id,
        )
    api_key = settings.api_key_list[0]
    print(_banner(settings, simulator_config, api_key, report.problems), flush=True)
    try:
        await asyncio.gather(gw_task, sim_task)
    finally:
        gw_server.should_exit = True
        sim_server.should_exit = True


def _banner(settings: Settings, sim: SimulatorConfig, api_key: str, problems: list[str]) -> str:
    lines = [
        "",
        "livechat-hitl sandbox is running (Ctrl+C stops it)",
        f"  gateway        {settings.public_url}   (API docs: {settings.public_url}/docs)",
        f"  agent console  {settings.public_url}/console/   (play the LiveChat agent here)",
        f"  simulator      {sim.base_url}   (LiveChat stand-in)",
        f"  database       {settings.database_url}",
        f"  API key        {api_key}",
        "",
        "Start a handoff:",
        f"  {start_curl(settings, api_key)}",
        "",
        "Watch the bot's events:",
        f"  curl -N {settings.public_url}/v1/events -H 'Authorization: Bearer {api_key}'",
        "",
        "Then accept, reply and close the chat in the agent console.",
    ]
    lines += [f"  setup problem: {p}" for p in problems]
    return "\n".join(lines)


def run_sandbox() -> int:
    try:
        base = load_settings(require_serve=False)
        simulator_config = SimulatorConfig.from_env()
    except ConfigurationError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    simulator_config.routing_mode = "manual"
    settings = sandbox_settings(base, simulator_config, secrets.token_urlsafe(24))
    if settings.database_url == f"sqlite:///{SANDBOX_DATABASE}":
        # The simulator forgets its chats when it stops: start the sandbox store afresh.
        for suffix in ("", "-wal", "-shm"):
            Path(SANDBOX_DATABASE + suffix).unlink(missing_ok=True)
    register_secrets(settings.secret_values())
    configure_logging(settings.log_level.value, settings.log_format.value)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_sandbox(settings, simulator_config))
    return 0
