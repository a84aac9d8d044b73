"""Bad or missing configuration: exit status 2, one line per problem naming the variable,
and never a secret value given in the environment (CONTRACT §1)."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import pytest

from livechat_hitl.simulator.config import SimulatorConfig

from .procs import LOOPBACK, clean_env, run_command

pytestmark = pytest.mark.slow

# Values only a leak could print. Each is bad or goes with a bad neighbour.
SECRETS = {
    "HITL_API_KEYS": "key-S3CR3T-api-value",
    "HITL_BOT_WEBHOOK_SECRET": "notwhsec-S3CR3T-bot-value",
    "HITL_LIVECHAT_AGENT_TOKEN": "S3CR3T-token-not-base64!",
    "HITL_LIVECHAT_PAT": "dal:S3CR3T-pat-value",
    "HITL_LIVECHAT_WEBHOOK_SECRET": "lc-S3CR3T-webhook-value",
}
LINE = re.compile(r"^HITL_[A-Z0-9_]+: \S")


def problem_lines(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    for line in lines:
        assert LINE.match(line), f"not `HITL_NAME: problem`: {line!r}"
    assert len(lines) == len(set(lines)), f"a problem reported twice:\n{stderr}"
    return lines


def named(lines: list[str]) -> set[str]:
    return {line.split(":", 1)[0] for line in lines}


def test_serve_without_configuration_names_every_missing_variable(tmp_path: Path) -> None:
    result = run_command(["serve"], clean_env(), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = problem_lines(result.stderr)
    assert named(lines) == {
        "HITL_API_KEYS",
        "HITL_LIVECHAT_AGENT_TOKEN",
        "HITL_LIVECHAT_CLIENT_ID",
        "HITL_LIVECHAT_ORGANIZATION_ID",
        "HITL_LIVECHAT_WEBHOOK_SECRET",
    }
    assert result.stdout == ""
    assert not list(tmp_path.iterdir()), "a refused start left files behind"


def test_serve_with_bad_values_exits_2_without_echoing_secrets(tmp_path: Path) -> None:
    env = clean_env(
        HITL_PORT="99999",
        HITL_LOG_LEVEL="loud",
        HITL_DATABASE_URL="mysql://nobody",
        HITL_BOT_WEBHOOK_URL="ftp://bot.example/hooks",
        HITL_LIVECHAT_CLIENT_ID="client",
        HITL_LIVECHAT_ORGANIZATION_ID="org",
        **SECRETS,
    )
    result = run_command(["serve"], env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = problem_lines(result.stderr)
    assert {
        "HITL_PORT",
        "HITL_LOG_LEVEL",
        "HITL_DATABASE_URL",
        "HITL_BOT_WEBHOOK_URL",
        "HITL_BOT_WEBHOOK_SECRET",
        "HITL_LIVECHAT_AGENT_TOKEN",
        "HITL_LIVECHAT_ACCOUNT_ID",  # the PAT was given without it
    } <= named(lines)
    output = result.stdout + result.stderr
    for value in SECRETS.values():
        assert value not in output
        assert value[4:-4] not in output  # not even a fragment


def test_bad_secret_in_dotenv_file_is_reported_not_echoed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "HITL_API_KEYS=key-from-dotenv\n"
        "HITL_BOT_WEBHOOK_URL=http://127.0.0.1:9/hooks\n"
        "HITL_BOT_WEBHOOK_SECRET=whsec_S3CR3T!!not-base64\n"
    )
    result = run_command(["serve"], clean_env(), cwd=tmp_path)
    assert result.returncode == 2
    lines = problem_lines(result.stderr)
    assert "HITL_BOT_WEBHOOK_SECRET" in named(lines)
    assert "HITL_API_KEYS" not in named(lines)  # the .env file supplied it
    assert "S3CR3T" not in result.stdout + result.stderr
    assert "key-from-dotenv" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("sandbox", "HITL_SIMULATOR_PORT", "0"),
        ("sandbox", "HITL_PORT", "http"),
        ("setup", "HITL_LIVECHAT_WEBHOOK_SECRET", ""),
        ("simulator", "HITL_LIVECHAT_ORGANIZATION_ID", "not-a-uuid"),
    ],
)
def test_other_commands_refuse_bad_configuration(
    tmp_path: Path, command: str, variable: str, value: str
) -> None:
    result = run_command([command], clean_env(**{variable: value}), cwd=tmp_path, timeout=20)
    assert result.returncode == 2, result.stdout + result.stderr
    assert variable in named(problem_lines(result.stderr))


def test_serve_refuses_a_busy_port_before_starting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = clean_env(
            HITL_PORT=str(port),
            HITL_DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.db'}",
            HITL_API_KEYS="key",
            HITL_LIVECHAT_AGENT_TOKEN=SimulatorConfig().agent_token,
            HITL_LIVECHAT_CLIENT_ID="client",
            HITL_LIVECHAT_ORGANIZATION_ID=str(uuid.uuid4()),
            HITL_LIVECHAT_WEBHOOK_SECRET="secret",
        )
        result = run_command(["serve"], env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"HITL_PORT: cannot listen on {LOOPBACK}:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gateway.db").exists(), "it migrated before finding the port busy"
