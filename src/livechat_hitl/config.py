"""Settings from `HITL_*` environment variables (and an optional `.env` file).

Read and validated once, at start-up, by `load_settings`; the result is frozen. A bad
value never reaches the rest of the gateway: `load_settings` raises
`ConfigurationError` with one line per problem, each naming the variable and never
echoing its value (some of them are secrets).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from livechat_hitl.errors import ConfigurationError

ENV_PREFIX = "HITL_"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)(\*\.)?{_LABEL}(\.{_LABEL})*$")
_EMAIL = re.compile(r"^[^@\s:,]+@[^@\s:,]+$")


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def env_name(field_name: str) -> str:
    """The environment variable behind a settings field (`port` → `HITL_PORT`)."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def _b64decode(text: str) -> bytes:
    """Strict base64, tolerant of missing padding (as consoles often copy it)."""
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, validate=True)


def _split_csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def decode_agent_token(token: str) -> tuple[str, str]:
    """`base64(account_id:PAT)` (optionally prefixed `Basic `) → (account_id, PAT)."""
    raw = token.strip()
    if raw.lower().startswith("basic "):
        raw = raw[6:].strip()
    try:
        text = _b64decode(raw).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValueError("must be the base64 of `account_id:PAT`") from None
    account_id, sep, pat = text.partition(":")
    if not sep or not account_id or not pat:
        raise ValueError("must be the base64 of `account_id:PAT`")
    return account_id, pat


class Settings(BaseSettings):
    """Everything the gateway reads from its environment. Frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="ignore",
        env_ignore_empty=True,  # `HITL_X=` means unset, not an empty value
        validate_default=True,
    )

    # -- process ------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///./livechat-hitl.db",
        description="`sqlite:///path.db` or `postgresql://…`.",
    )
    host: str = Field(default="127.0.0.1", description="Listen address.")
    port: int = Field(default=8080, description="Listen port.")
    public_url: str = Field(
        default="",
        description="URL where LiveChat and bots reach this gateway. Default `http://HOST:PORT`.",
    )
    log_level: LogLevel = Field(
        default=LogLevel.INFO, description="`debug`, `info`, `warning` or `error`."
    )
    log_format: LogFormat = Field(
        default=LogFormat.TEXT, description="`text`, or `json` (one object per line)."
    )

    # -- bots ---------------------------------------------------------------------
    api_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated bot API keys (`Authorization: Bearer …`); `serve` needs one.",
    )
    bot_webhook_url: str | None = Field(
        default=None,
        description="Where events for the bot are POSTed (optional: SSE works without it).",
    )
    bot_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks secret, `whsec_<base64>`. Required with the URL.",
    )
    bot_webhook_timeout: float = Field(
        default=15.0,
        description="Seconds the bot's webhook endpoint has to answer before a retry.",
    )
    fetch_allowlist: str = Field(
        default="",
        description=(
            "Comma-separated hosts (`files.internal`, `*.corp.example`) and IPs/CIDRs "
            "(`10.0.0.0/8`) the gateway may fetch file URLs from even though they are "
            "private or loopback. Default: none."
        ),
    )
    fetch_only_allowlist: bool = Field(
        default=False,
        description=(
            "Fetch file URLs only from HITL_FETCH_ALLOWLIST (nothing else is even "
            "resolved). Default: any public address, plus the allow-list."
        ),
    )

    # -- LiveChat -----------------------------------------------------------------
    livechat_api_url: str = Field(
        default="https://api.livechatinc.com", description="LiveChat API base."
    )
    livechat_accounts_url: str = Field(
        default="https://accounts.livechat.com", description="LiveChat accounts base."
    )
    livechat_agent_token: SecretStr | None = Field(
        default=None,
        description="Base64 of `account_id:PAT`, as the LiveChat console shows it.",
    )
    livechat_account_id: str | None = Field(
        default=None, description="LiveChat account id (with the PAT: alternative to the token)."
    )
    livechat_pat: SecretStr | None = Field(
        default=None, description="LiveChat personal access token (with the account id)."
    )
    livechat_client_id: str | None = Field(
        default=None, description="Client ID of the LiveChat app (customer tokens)."
    )
    livechat_organization_id: str | None = Field(
        default=None, description="LiveChat organization id."
    )
    livechat_redirect_uri: str | None = Field(
        default=None,
        description="Redirect URI sent with the customer cookie grant; it must be on the "
        "LiveChat app's Redirect-URI whitelist. Default: HITL_PUBLIC_URL.",
    )
    livechat_webhook_secret: SecretStr | None = Field(
        default=None, description="The `secret_key` LiveChat puts in every webhook."
    )
    livechat_group_id: int = Field(default=0, description="Default LiveChat group for handoffs.")
    livechat_timeout_seconds: float = Field(
        default=15.0,
        description="Seconds one LiveChat API call may take before it counts as failed "
        "(and is retried).",
    )

    # -- outbox relay -------------------------------------------------------------
    relay_lease_seconds: float = Field(
        default=30.0,
        description="Seconds a relay worker owns a claimed outbox row before another may retry it.",
    )
    relay_max_age_hours: float = Field(
        default=24.0,
        description="Hours an outbox row is retried (exponential backoff) before it is dead.",
    )
    relay_batch_size: int = Field(
        default=50, description="Outbox rows a relay worker claims at once."
    )
    relay_concurrency: int = Field(
        default=64,
        description="Deliveries a gateway process has in flight at once (one per handoff "
        "and target; each may carry that handoff's backlog).",
    )
    relay_backoff_base_seconds: float = Field(
        default=1.0,
        description="First retry delay of a failed delivery; it doubles per attempt (jittered).",
    )
    relay_backoff_cap_seconds: float = Field(
        default=300.0,
        description="Longest delay between two retries of one delivery (a Retry-After wins).",
    )
    outbound_process: bool = Field(
        default=True,
        description="Make the busy outbound HTTP calls (bot webhooks, LiveChat actions) "
        "from a child process, on another core than the gateway's event loop. `false`: "
        "from the gateway's own process (one process, one core).",
    )

    # -- simulator ----------------------------------------------------------------
    simulator_port: int = Field(
        default=8090, description="Port of `livechat-hitl simulator` (both LiveChat hosts)."
    )
    simulator_agents: str | None = Field(
        default=None,
        description="`email:Name,email:Name`: agents the simulator adds. Default: two.",
    )

    # -- field checks (messages never include the value) ----------------------------
    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        for scheme in ("sqlite:///", "postgresql://"):
            if value.startswith(scheme) and len(value) > len(scheme):
                return value
        raise ValueError("must be `sqlite:///path.db` or `postgresql://…`")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("port", "simulator_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = -1
        if not 1 <= number <= 65535:
            raise ValueError("must be an integer between 1 and 65535")
        return number

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str, info: ValidationInfo) -> str:
        if value.strip():
            return _check_http_url(value.strip())
        host = info.data.get("host")
        port = info.data.get("port")
        if host is None or port is None:
            return ""  # the host or port problem is reported on its own
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @field_validator("livechat_api_url", "livechat_accounts_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value.strip())

    @field_validator("bot_webhook_url", "livechat_redirect_uri")
    @classmethod
    def _optional_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _check_http_url(value.strip())

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _split_csv(value.get_secret_value()):
            raise ValueError("must list at least one non-empty key (comma-separated)")
        return value

    @field_validator("bot_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        problem = "must be `whsec_` followed by base64 (a Standard Webhooks secret)"
        if not text.startswith(WEBHOOK_SECRET_PREFIX):
            raise ValueError(problem)
        try:
            key = _b64decode(text[len(WEBHOOK_SECRET_PREFIX) :])
        except (binascii.Error, ValueError):
            raise ValueError(problem) from None
        if not key:
            raise ValueError(problem)
        return SecretStr(text)

    @field_validator("livechat_agent_token")
    @classmethod
    def _agent_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        decode_agent_token(value.get_secret_value())
        return value

    @field_validator(
        "livechat_account_id",
        "livechat_client_id",
        "livechat_organization_id",
        "simulator_agents",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @field_validator("livechat_pat", "livechat_webhook_secret")
    @classmethod
    def _blank_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("livechat_group_id")
    @classmethod
    def _group_id(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a non-negative integer")
        return value

    @field_validator(
        "bot_webhook_timeout",
        "relay_lease_seconds",
        "relay_max_age_hours",
        "relay_backoff_base_seconds",
        "relay_backoff_cap_seconds",
        "livechat_timeout_seconds",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number")
        return value

    @field_validator("relay_batch_size", "relay_concurrency")
    @classmethod
    def _batch(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("must be an integer between 1 and 10000")
        return value

    @field_validator("fetch_allowlist")
    @classmethod
    def _allowlist(cls, value: str) -> str:
        for entry in _split_csv(value):
            if not _is_network(entry) and not _HOSTNAME.match(entry):
                raise ValueError("each entry must be a host name, an IP address or a CIDR")
        return value

    @field_validator("simulator_agents")
    @classmethod
    def _agents(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for entry in _split_csv(value):
            email, sep, name = entry.partition(":")
            if not sep or not _EMAIL.match(email.strip()) or not name.strip():
                raise ValueError("must be `email:Name` pairs separated by commas")
        return value

    def __repr_args__(self) -> Any:
        # The database URL may carry a password; everything else secret is a SecretStr.
        for name, value in super().__repr_args__():
            yield name, (_mask_password(value) if name == "database_url" else value)

    # -- derived values -----------------------------------------------------------
    @property
    def api_key_list(self) -> tuple[str, ...]:
        """The bot API keys, in the order configured (empty when unset)."""
        if self.api_keys is None:
            return ()
        return tuple(_split_csv(self.api_keys.get_secret_value()))

    @property
    def livechat_credentials(self) -> tuple[str, SecretStr] | None:
        """(account id, PAT) from the agent token or from the pair, whichever is set."""
        if self.livechat_agent_token is not None:
            account_id, pat = decode_agent_token(self.livechat_agent_token.get_secret_value())
            return account_id, SecretStr(pat)
        if self.livechat_account_id and self.livechat_pat is not None:
            return self.livechat_account_id, self.livechat_pat
        return None

    @property
    def livechat_basic_token(self) -> SecretStr | None:
        """`base64(account_id:PAT)`, for `Authorization: Basic …` (None when unset)."""
        creds = self.livechat_credentials
        if creds is None:
            return None
        raw = f"{creds[0]}:{creds[1].get_secret_value()}".encode()
        return SecretStr(base64.b64encode(raw).decode("ascii"))

    @property
    def fetch_allowlist_hosts(self) -> tuple[str, ...]:
        """Host names (lower case; `*.example.com` allows subdomains) of the allowlist."""
        return tuple(e.lower() for e in _split_csv(self.fetch_allowlist) if not _is_network(e))

    @property
    def fetch_allowlist_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """IP networks (a bare address is a /32 or /128) of the allowlist."""
        return tuple(
            ipaddress.ip_network(e, strict=False)
            for e in _split_csv(self.fetch_allowlist)
            if _is_network(e)
        )

    @property
    def simulator_agent_list(self) -> tuple[tuple[str, str], ...]:
        """(email, name) pairs of `HITL_SIMULATOR_AGENTS` (empty when unset)."""
        if self.simulator_agents is None:
            return ()
        pairs = (entry.partition(":") for entry in _split_csv(self.simulator_agents))
        return tuple((email.strip(), name.strip()) for email, _, name in pairs)

    def secret_values(self) -> list[str]:
        """Every secret string in these settings, for log redaction."""
        values: list[str] = list(self.api_key_list)
        for secret in (
            self.bot_webhook_secret,
            self.livechat_agent_token,
            self.livechat_pat,
            self.livechat_webhook_secret,
            self.livechat_basic_token,
        ):
            if secret is not None:
                values.append(secret.get_secret_value())
        if self.bot_webhook_secret is not None:
            values.append(self.bot_webhook_secret.get_secret_value()[len(WEBHOOK_SECRET_PREFIX) :])
        creds = self.livechat_credentials
        if creds is not None:
            values.append(creds[1].get_secret_value())
        password = urlsplit(self.database_url).password
        if password:
            values.append(password)
        return [v for v in dict.fromkeys(values) if v]


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _problem_lines(error: ValidationError) -> tuple[list[str], set[str]]:
    """One line per field error, built from `loc` + `msg` only (never the input)."""
    lines: list[str] = []
    fields: set[str] = set()
    for item in error.errors(include_input=False, include_url=False):
        loc = item.get("loc") or ()
        field = str(loc[0]) if loc else ""
        message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
        if item.get("type") == "enum":
            expected = item.get("ctx", {}).get("expected", "")
            message = f"must be one of {expected}" if expected else message
        elif item.get("type") in ("float_parsing", "float_type"):
            message = "must be a number"
        elif item.get("type") in ("int_parsing", "int_type", "int_from_float"):
            message = "must be an integer"
        if field:
            fields.add(field)
            lines.append(f"{env_name(field)}: {message}")
        else:
            lines.append(message)
    return lines, fields


def _consistency_problems(
    settings: Settings, *, require_serve: bool, invalid: set[str]
) -> list[str]:
    """Checks across variables. Fields that already failed are not reported twice."""
    problems: list[str] = []

    def unset(field: str) -> bool:
        return field not in invalid and getattr(settings, field) is None

    pair_given = [f for f in ("livechat_account_id", "livechat_pat") if not unset(f)]
    if len(pair_given) == 1:
        missing = (
            "livechat_pat" if pair_given[0] == "livechat_account_id" else ("livechat_account_id")
        )
        problems.append(f"{env_name(missing)}: required with {env_name(pair_given[0])}")
    if (
        not unset("livechat_agent_token")
        and "livechat_agent_token" not in invalid
        and settings.livechat_account_id
        and settings.livechat_pat is not None
        and settings.livechat_agent_token is not None
    ):
        token_account, token_pat = decode_agent_token(
            settings.livechat_agent_token.get_secret_value()
        )
        if (token_account, token_pat) != (
            settings.livechat_account_id,
            settings.livechat_pat.get_secret_value(),
        ):
            problems.append(
                f"{env_name('livechat_agent_token')}: names other credentials than "
                f"{env_name('livechat_account_id')} + {env_name('livechat_pat')}; "
                "set one or the other"
            )
    if not unset("bot_webhook_url") and unset("bot_webhook_secret"):
        problems.append(
            f"{env_name('bot_webhook_secret')}: required when {env_name('bot_webhook_url')} is set"
        )

    if require_serve:
        for field in (
            "api_keys",
            "livechat_client_id",
            "livechat_organization_id",
            "livechat_webhook_secret",
        ):
            if unset(field):
                problems.append(f"{env_name(field)}: required by `serve`")
        if unset("livechat_agent_token") and unset("livechat_account_id") and unset("livechat_pat"):
            problems.append(
                f"{env_name('livechat_agent_token')}: required by `serve` "
                f"(or {env_name('livechat_account_id')} + {env_name('livechat_pat')})"
            )
    return problems


def load_settings(*, require_serve: bool, env_file: str | Path | None = ".env") -> Settings:
    """Read and check the configuration, reporting every problem at once.

    `require_serve` adds what `serve` cannot run without: API keys and the LiveChat
    credentials, client id, organization id and webhook secret.
    Raises `ConfigurationError` whose `problems` are `HITL_NAME: what is wrong` lines.
    """
    problems: list[str] = []
    invalid: set[str] = set()
    try:
        settings = Settings(_env_file=env_file)
    except ValidationError as exc:
        problems, invalid = _problem_lines(exc)
        # Retry with the failed fields at their defaults, so cross-variable checks still
        # see every other value and the operator gets all problems in one run.
        defaults = {name: Settings.model_fields[name].default for name in invalid}
        try:
            settings = Settings(_env_file=env_file, **defaults)
        except ValidationError:
            raise ConfigurationError(problems) from None
    problems += _consistency_problems(settings, require_serve=require_serve, invalid=invalid)
    if problems:
        raise ConfigurationError(problems)
    return settings


def exit_on_bad_config(exc: ConfigurationError) -> NoReturn:
    """Print one line per problem to stderr and exit with status 2."""
    for line in exc.problems:
        print(line, file=sys.stderr)
    raise SystemExit(2)
