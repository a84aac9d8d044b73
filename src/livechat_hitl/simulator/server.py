"""`livechat-hitl simulator`: run the simulator under uvicorn from HITL_* variables."""

from __future__ import annotations

import os
import sys

import uvicorn

from .app import create_simulator
from .config import ConfigError, SimulatorConfig


def describe(config: SimulatorConfig) -> list[str]:
    """What the simulator accepts. Sandbox defaults are printed; secrets from the
    environment never are (only their origin)."""
    lines = [f"LiveChat simulator on {config.base_url}"]
    lines.append(f"  HITL_LIVECHAT_API_URL={config.base_url}")
    lines.append(f"  HITL_LIVECHAT_ACCOUNTS_URL={config.base_url}")
    lines.append(f"  organization_id: {config.organization_id}")
    lines.append(f"  client_id: {config.client_id}")
    lines.append(f"  account_id: {config.account_id}")
    if "pat" in config.defaulted:
        lines.append(f"  PAT (sandbox default): {config.pat}")
        lines.append(f"  agent token (sandbox default): {config.agent_token}")
    else:
        lines.append("  PAT: as given in the environment (not shown)")
    lines.append(f"  group: {config.group_id} ({config.group_name})")
    lines.append(f"  API account agent: {config.api_agent_id} (not accepting chats)")
    for email, name in config.agents:
        lines.append(f"  agent: {email} ({name}), accepting chats")
    return lines


def run_from_env() -> int:
    try:
        config = SimulatorConfig.from_env()
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    host = os.environ.get("HITL_HOST", "").strip() or "127.0.0.1"
    port = int(config.base_url.rsplit(":", 1)[1])
    simulator = create_simulator(config)
    for line in describe(config):
        print(line, flush=True)
    uvicorn.run(simulator.app, host=host, port=port, log_level="warning")
    return 0
