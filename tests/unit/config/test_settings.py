"""Settings: defaults, validation, one line per problem, no secret ever echoed."""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path

import pytest

from livechat_hitl.config import (
    LogFormat,
    LogLevel,
    Settings,
    exit_on_bad_config,
    load_settings,
)
from livechat_hitl.errors import ConfigurationError

ACCOUNT = "8f4b5d3e-aaaa-bbbb-cccc-0123456789ab"
PAT = "fra:S3cr3tPatValue-abcdefghij"
TOKEN = base64.b64encode(f"{ACCOUNT}:{PAT}".encode()).decode()
BOT_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SERVE_ENV = {
    "HITL_API_KEYS": "key-one-AAAA, key-two-BBBB",
    "HITL_LIVECHAT_AGENT_TOKEN": TOKEN,
    "HITL_LIVECHAT_CLIENT_ID": "client-123",
    "HITL_LIVECHAT_ORGANIZATION_ID": "org-456",
    "HITL_LIVECHAT_WEBHOOK_SECRET": "lc-webhook-secret-XYZ",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HITL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout


def setenv(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def problems_of(require_serve: bool = False) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        load_settings(require_serve=require_serve)
    return info.value.problems


def test_defaults_follow_the_contract_table() -> None:
    s = load_settings(require_serve=False)
    assert s.database_url == "sqlite:///./livechat-hitl.db"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.api_keys is None
    assert s.api_key_list == ()
    assert s.bot_webhook_url is None
    assert s.bot_webhook_secret is None
    assert s.livechat_api_url == "https://api.livechatinc.com"
    assert s.livechat_accounts_url == "https://accounts.livechat.com"
    assert s.livechat_group_id == 0
    assert s.log_level is LogLevel.INFO
    assert s.log_format is LogFormat.TEXT
    assert s.simulator_port == 8090
    assert s.fetch_allowlist_hosts == ()
    assert s.fetch_allowlist_networks == ()
    assert s.relay_max_age_hours == 24
    assert s.relay_lease_seconds > 0
    assert s.bot_webhook_timeout == 15
    assert s.livechat_credentials is None


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name


def test_settings_are_frozen() -> None:
    s = load_settings(require_serve=False)
    with pytest.raises(ValueError):
        s.port = 1  # type: ignore[misc]


def test_public_url_follows_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {"HITL_HOST": "0.0.0.0", "HITL_PORT": "9000"})
    assert load_settings(require_serve=False).public_url == "http://0.0.0.0:9000"
    monkeypatch.setenv("HITL_HOST", "::1")
    assert load_settings(require_serve=False).public_url == "http://[::1]:9000"
    monkeypatch.setenv("HITL_PUBLIC_URL", "https://hitl.example.com/")
    assert load_settings(require_serve=False).public_url == "https://hitl.example.com"


def test_serve_settings_load_and_derive(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, SERVE_ENV)
    s = load_settings(require_serve=True)
    assert s.api_key_list == ("key-one-AAAA", "key-two-BBBB")
    creds = s.livechat_credentials
    assert creds is not None
    assert creds[0] == ACCOUNT
    assert creds[1].get_secret_value() == PAT
    assert s.livechat_basic_token is not None
    assert s.livechat_basic_token.get_secret_value() == TOKEN


def test_account_id_and_pat_are_an_alternative_to_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = dict(SERVE_ENV)
    del env["HITL_LIVECHAT_AGENT_TOKEN"]
    env |= {"HITL_LIVECHAT_ACCOUNT_ID": ACCOUNT, "HITL_LIVECHAT_PAT": PAT}
    setenv(monkeypatch, env)
    s = load_settings(require_serve=True)
    assert s.livechat_basic_token is not None
    assert s.livechat_basic_token.get_secret_value() == TOKEN


def test_agent_token_may_carry_basic_prefix_and_no_padding(monkeypatch: pytest.MonkeyPatch) -> None:
    unpadded = base64.b64encode(b"acc:pat1").decode().rstrip("=")
    monkeypatch.setenv("HITL_LIVECHAT_AGENT_TOKEN", f"Basic {unpadded}")
    creds = load_settings(require_serve=False).livechat_credentials
    assert creds is not None
    assert (creds[0], creds[1].get_secret_value()) == ("acc", "pat1")


def test_serve_requires_its_variables_one_line_each() -> None:
    problems = problems_of(require_serve=True)
    assert problems == [
        "HITL_API_KEYS: required by `serve`",
        "HITL_LIVECHAT_CLIENT_ID: required by `serve`",
        "HITL_LIVECHAT_ORGANIZATION_ID: required by `serve`",
        "HITL_LIVECHAT_WEBHOOK_SECRET: required by `serve`",
        "HITL_LIVECHAT_AGENT_TOKEN: required by `serve` "
        "(or HITL_LIVECHAT_ACCOUNT_ID + HITL_LIVECHAT_PAT)",
    ]
    # the sandbox and the simulator need none of them
    assert load_settings(require_serve=False).api_key_list == ()


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("HITL_PORT", "abc", "HITL_PORT: must be an integer between 1 and 65535"),
        ("HITL_PORT", "0", "HITL_PORT: must be an integer between 1 and 65535"),
        ("HITL_PORT", "65536", "HITL_PORT: must be an integer between 1 and 65535"),
        (
            "HITL_SIMULATOR_PORT",
            "-1",
            "HITL_SIMULATOR_PORT: must be an integer between 1 and 65535",
        ),
        ("HITL_DATABASE_URL", "mysql://x/y", "HITL_DATABASE_URL: must be"),
        ("HITL_DATABASE_URL", "sqlite:///", "HITL_DATABASE_URL: must be"),
        ("HITL_LOG_LEVEL", "loud", "HITL_LOG_LEVEL: must be one of"),
        ("HITL_LOG_FORMAT", "xml", "HITL_LOG_FORMAT: must be one of"),
        ("HITL_PUBLIC_URL", "ftp://x", "HITL_PUBLIC_URL: must be an http"),
        ("HITL_BOT_WEBHOOK_URL", "bot.example.com/hook", "HITL_BOT_WEBHOOK_URL: must be an http"),
        ("HITL_LIVECHAT_API_URL", "file:///etc", "HITL_LIVECHAT_API_URL: must be an http"),
        ("HITL_LIVECHAT_ACCOUNTS_URL", "https://", "HITL_LIVECHAT_ACCOUNTS_URL: must be an http"),
        ("HITL_LIVECHAT_GROUP_ID", "-3", "HITL_LIVECHAT_GROUP_ID: must be a non-negative"),
        ("HITL_LIVECHAT_GROUP_ID", "x", "HITL_LIVECHAT_GROUP_ID: must be an integer"),
        ("HITL_BOT_WEBHOOK_TIMEOUT", "0", "HITL_BOT_WEBHOOK_TIMEOUT: must be a positive"),
        ("HITL_BOT_WEBHOOK_TIMEOUT", "soon", "HITL_BOT_WEBHOOK_TIMEOUT: must be a number"),
        ("HITL_RELAY_MAX_AGE_HOURS", "-1", "HITL_RELAY_MAX_AGE_HOURS: must be a positive"),
        ("HITL_FETCH_ALLOWLIST", "ok.example, not a host", "HITL_FETCH_ALLOWLIST: each entry"),
        ("HITL_SIMULATOR_AGENTS", "ada@example.com", "HITL_SIMULATOR_AGENTS: must be"),
        ("HITL_API_KEYS", " , ,", "HITL_API_KEYS: must list at least one"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(variable, value)
    problems = problems_of()
    assert problems[0].startswith(line), problems
    # one line per problem, each naming its variable
    assert all(p.startswith("HITL_") and "\n" not in p for p in problems)


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {"HITL_LOG_LEVEL": "DEBUG", "HITL_LOG_FORMAT": "JSON"})
    s = load_settings(require_serve=False)
    assert (s.log_level, s.log_format) == (LogLevel.DEBUG, LogFormat.JSON)


def test_postgres_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_DATABASE_URL", "postgresql://hitl:pw@db:5432/hitl")
    assert load_settings(require_serve=False).database_url.startswith("postgresql://")


@pytest.mark.parametrize(
    "secret",
    ["sekrit-no-prefix-1234", "whsec_", "whsec_!!!notbase64!!!", "WHSEC_c2VjcmV0"],
)
def test_bot_webhook_secret_must_be_whsec_base64(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("HITL_BOT_WEBHOOK_SECRET", secret)
    problems = problems_of()
    assert [p.split(":")[0] for p in problems] == ["HITL_BOT_WEBHOOK_SECRET"]
    if len(secret) > len("whsec_"):
        assert all(secret not in p for p in problems)


def test_bot_webhook_url_needs_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_BOT_WEBHOOK_URL", "https://bot.example.com/hook")
    assert problems_of() == ["HITL_BOT_WEBHOOK_SECRET: required when HITL_BOT_WEBHOOK_URL is set"]
    monkeypatch.setenv("HITL_BOT_WEBHOOK_SECRET", BOT_SECRET)
    s = load_settings(require_serve=False)
    assert s.bot_webhook_secret is not None
    assert s.bot_webhook_secret.get_secret_value() == BOT_SECRET


def test_half_a_credential_pair_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_LIVECHAT_PAT", PAT)
    assert problems_of() == ["HITL_LIVECHAT_ACCOUNT_ID: required with HITL_LIVECHAT_PAT"]


def test_token_and_pair_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(
        monkeypatch,
        {
            "HITL_LIVECHAT_AGENT_TOKEN": TOKEN,
            "HITL_LIVECHAT_ACCOUNT_ID": ACCOUNT,
            "HITL_LIVECHAT_PAT": "other-pat-value",
        },
    )
    (line,) = problems_of()
    assert line.startswith("HITL_LIVECHAT_AGENT_TOKEN: names other credentials")
    monkeypatch.setenv("HITL_LIVECHAT_PAT", PAT)
    assert load_settings(require_serve=False).livechat_credentials is not None


def test_every_problem_is_reported_at_once_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad_token = "NotBase64:SuperSecretToken!!"
    bad_secret = "plain-SuperSecretWebhook"
    setenv(
        monkeypatch,
        {
            "HITL_PORT": "99999",
            "HITL_LIVECHAT_AGENT_TOKEN": bad_token,
            "HITL_BOT_WEBHOOK_SECRET": bad_secret,
            "HITL_API_KEYS": "k1",
            "HITL_LIVECHAT_CLIENT_ID": "c",
        },
    )
    problems = problems_of(require_serve=True)
    names = [p.split(":")[0] for p in problems]
    assert names == [
        "HITL_PORT",
        "HITL_BOT_WEBHOOK_SECRET",
        "HITL_LIVECHAT_AGENT_TOKEN",
        "HITL_LIVECHAT_ORGANIZATION_ID",
        "HITL_LIVECHAT_WEBHOOK_SECRET",
    ]
    text = "\n".join(problems)
    for secret in (bad_token, bad_secret, "SuperSecret", "99999"):
        assert secret not in text
    assert "input" not in text.lower()


def test_agent_token_that_does_not_decode_to_a_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_LIVECHAT_AGENT_TOKEN", base64.b64encode(b"no-colon-here").decode())
    assert problems_of() == ["HITL_LIVECHAT_AGENT_TOKEN: must be the base64 of `account_id:PAT`"]


def test_dotenv_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HITL_PORT=9100\nHITL_HOST=10.1.2.3\nOTHER=1\n")
    monkeypatch.setenv("HITL_HOST", "10.9.9.9")
    s = load_settings(require_serve=False)
    assert (s.host, s.port) == ("10.9.9.9", 9100)
    assert load_settings(require_serve=False, env_file=None).port == 8080


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {"HITL_PORT": "", "HITL_BOT_WEBHOOK_URL": ""})
    s = load_settings(require_serve=False)
    assert s.port == 8080
    assert s.bot_webhook_url is None


def test_fetch_allowlist_splits_hosts_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_FETCH_ALLOWLIST", "files.internal, *.corp.example,10.0.0.0/8, ::1")
    s = load_settings(require_serve=False)
    assert s.fetch_allowlist_hosts == ("files.internal", "*.corp.example")
    assert s.fetch_allowlist_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_simulator_agents_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_SIMULATOR_AGENTS", "ada@example.com:Ada Lovelace, bob@x.io:Bob")
    assert load_settings(require_serve=False).simulator_agent_list == (
        ("ada@example.com", "Ada Lovelace"),
        ("bob@x.io", "Bob"),
    )


def test_secret_values_cover_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(
        monkeypatch,
        SERVE_ENV
        | {
            "HITL_BOT_WEBHOOK_URL": "https://bot.example.com/hook",
            "HITL_BOT_WEBHOOK_SECRET": BOT_SECRET,
            "HITL_DATABASE_URL": "postgresql://hitl:db-Pa55word@db/hitl",
        },
    )
    s = load_settings(require_serve=True)
    values = s.secret_values()
    for expected in (
        "key-one-AAAA",
        "key-two-BBBB",
        TOKEN,
        PAT,
        BOT_SECRET,
        BOT_SECRET.removeprefix("whsec_"),
        "lc-webhook-secret-XYZ",
        "db-Pa55word",
    ):
        assert expected in values
    shown = repr(s) + str(s)
    for value in values:
        assert value not in shown


def test_exit_on_bad_config_prints_lines_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exc = ConfigurationError(["HITL_PORT: must be an integer between 1 and 65535", "HITL_X: y"])
    with pytest.raises(SystemExit) as info:
        exit_on_bad_config(exc)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == exc.problems
