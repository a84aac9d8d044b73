"""Simulator configuration, clock and id factory.

Every place where the LiveChat docs leave a choice open is a field here, with the
default we believe closest to the real service and a comment saying why.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from livechat_hitl.livechat.wire import region_of

SANDBOX_ORGANIZATION_ID = "7a3c9f1e-2b4d-4e6f-8a1b-3c5d7e9f0a2b"
SANDBOX_ACCOUNT_ID = "5f0d2a8e-1c3b-4d5e-9f7a-6b8c0d2e4f61"
SANDBOX_PAT = "dal:sandbox-pat-not-a-secret-0000"
SANDBOX_CLIENT_ID = "0123456789abcdef0123456789abcdef"
SANDBOX_AGENTS: tuple[tuple[str, str], ...] = (
    ("alice@sandbox.example", "Alice Agent"),
    ("bob@sandbox.example", "Bob Agent"),
)

# Default HTTP status per LiveChat error type. The v3.x docs do not document statuses
# (LIVECHAT-API.md §2.2 UNCONFIRMED): clients must branch on `error.type`, so this table
# is configurable and tests can scramble it to prove a client does not depend on it.
DEFAULT_ERROR_STATUS: dict[str, int] = {
    "validation": 400,
    "users_limit_reached": 400,
    "groups_offline": 400,
    "group_offline": 400,
    "unsupported_version": 400,
    "authentication": 401,
    "authorization": 403,
    "missing_access": 403,
    "not_allowed": 403,
    "customer_banned": 403,
    "not_found": 404,
    "group_not_found": 404,
    "license_not_found": 404,
    "chat_inactive": 409,
    "already_exists": 409,
    "entity_too_large": 413,
    "misdirected_request": 421,
    "limit_reached": 429,
    "too_many_requests": 429,
    "internal": 500,
    "service_unavailable": 503,
    "request_timeout": 504,
}


class Clock:
    """The wall clock, or a frozen clock tests move by hand."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen = frozen_at.astimezone(UTC) if frozen_at is not None else None

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def now(self) -> datetime:
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        self._frozen = moment.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        """Move a frozen clock forward (freezes a wall clock at now + seconds)."""
        self._frozen = self.now() + timedelta(seconds=seconds)


class IdFactory:
    """Ids shaped like LiveChat's; reproducible when seeded."""

    _ALNUM = string.ascii_uppercase + string.digits

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random = (
            random.Random(seed) if seed is not None else random.SystemRandom()
        )

    def chat_id(self) -> str:
        """10 uppercase alphanumerics, like `PJ0MRSHTDG` (chat and thread ids)."""
        return "".join(self._rng.choice(self._ALNUM) for _ in range(10))

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def token(self, prefix: str = "dal") -> str:
        body = "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(27))
        return f"{prefix}:{body}"


RoutingStatusSpelling = Literal["space", "underscore"]


@dataclass
class SimulatorConfig:
    organization_id: str = SANDBOX_ORGANIZATION_ID
    account_id: str = SANDBOX_ACCOUNT_ID
    pat: str = SANDBOX_PAT
    client_id: str = SANDBOX_CLIENT_ID
    group_id: int = 0
    group_name: str = "General"
    # Extra groups: {id: name}. Group 0 always exists and holds every agent.
    other_groups: dict[int, str] = field(default_factory=dict)
    agents: list[tuple[str, str]] = field(default_factory=lambda: list(SANDBOX_AGENTS))
    # The PAT's account is an agent of the group. It is an API identity, not a person:
    # it does not accept chats, so routing always hands chats to a human agent.
    api_agent_id: str = "api@sandbox.example"
    api_agent_name: str = "HITL API"
    api_agent_accepts_chats: bool = False
    agent_max_chats: int = 6
    # Other client ids owned by the organization (register_webhook owner_client_id).
    extra_client_ids: list[str] = field(default_factory=list)
    # Webhook delivery: LiveChat retries up to 3 times within about a minute.
    webhook_retry_schedule: list[float] = field(default_factory=lambda: [5.0, 15.0, 40.0])
    webhook_timeout: float = 10.0
    # Deterministic ids (seed) and a frozen clock for tests; None → random ids / wall clock.
    seed: int | None = None
    frozen_time: datetime | None = None
    # Routing: "auto" assigns the least busy accepting agent of the group; "manual" only
    # queues (agents take chats through the control API).
    routing_mode: Literal["auto", "manual"] = "auto"
    # Estimated wait per queue position (seconds) reported in `queue.wait_time`.
    queue_wait_seconds_per_position: int = 60
    # Customer start_chat into a group where nobody accepts chats: real LiveChat refuses
    # with `groups_offline` (the widget then shows the ticket form). Set False to queue.
    customer_start_requires_online_group: bool = True
    # Agent-started chats belong to the requesting agent; LiveChat does not route them
    # (that is why integrations call transfer_chat). True routes them like customer chats.
    route_agent_started_chats: bool = False
    # Whether initial events of start_chat/resume_chat also fire `incoming_event`
    # (the docs only promise `incoming_chat`, whose thread carries them).
    initial_events_fire_incoming_event: bool = False
    # routing_status_set webhook spelling: docs say "accepting chats" (space); the RTM
    # push and set_routing_status use underscores. UNCONFIRMED upstream.
    routing_status_webhook_spelling: RoutingStatusSpelling = "space"
    # transfer_chat to other groups also emits chat_access_updated (UNCONFIRMED upstream).
    emit_access_updated_on_transfer: bool = True
    error_status: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ERROR_STATUS))
    # Redirect-URI whitelist for the cookie grant; empty accepts any.
    redirect_uris: list[str] = field(default_factory=list)
    customer_token_ttl_seconds: int = 28800
    bot_token_ttl_seconds: int = 86400
    region: str = "dal"
    # Public base URL of this simulator (used for CDN file URLs); set by the server.
    base_url: str = "http://127.0.0.1:8090"
    # Which values were defaulted (so the server only prints sandbox secrets).
    defaulted: frozenset[str] = frozenset()

    @property
    def agent_token(self) -> str:
        """base64 of `account_id:pat`, as the LiveChat console shows it."""
        return base64.b64encode(f"{self.account_id}:{self.pat}".encode()).decode()

    @property
    def client_ids(self) -> set[str]:
        return {self.client_id, *self.extra_client_ids}

    def make_clock(self) -> Clock:
        return Clock(self.frozen_time)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Read CONTRACT §1's variables; raise ConfigError listing every bad one."""
        source = os.environ if env is None else env
        problems: list[str] = []
        defaulted: set[str] = set()

        def get(name: str) -> str | None:
            value = source.get(name)
            return value.strip() if value is not None and value.strip() else None

        account_id, pat = get("HITL_LIVECHAT_ACCOUNT_ID"), get("HITL_LIVECHAT_PAT")
        token = get("HITL_LIVECHAT_AGENT_TOKEN")
        if token is not None:
            try:
                account_id, sep, pat = (
                    base64.b64decode(token, validate=True).decode().partition(":")
                )
                if not sep or not account_id or not pat:
                    raise ValueError
            except (binascii.Error, UnicodeDecodeError, ValueError):
                problems.append("HITL_LIVECHAT_AGENT_TOKEN: not base64 of account_id:PAT")
        elif (account_id is None) != (pat is None):
            missing = "HITL_LIVECHAT_PAT" if pat is None else "HITL_LIVECHAT_ACCOUNT_ID"
            problems.append(f"{missing}: required together with its pair")
        if not account_id or not pat:
            account_id, pat = SANDBOX_ACCOUNT_ID, SANDBOX_PAT
            defaulted.update({"account_id", "pat"})

        client_id = get("HITL_LIVECHAT_CLIENT_ID")
        if client_id is None:
            client_id = SANDBOX_CLIENT_ID
            defaulted.add("client_id")
        organization_id = get("HITL_LIVECHAT_ORGANIZATION_ID")
        if organization_id is None:
            organization_id = SANDBOX_ORGANIZATION_ID
            defaulted.add("organization_id")
        else:
            try:
                uuid.UUID(organization_id)
            except ValueError:
                problems.append("HITL_LIVECHAT_ORGANIZATION_ID: not a UUID")

        group_id = 0
        raw_group = get("HITL_LIVECHAT_GROUP_ID")
        if raw_group is not None:
            if raw_group.isdigit():
                group_id = int(raw_group)
            else:
                problems.append("HITL_LIVECHAT_GROUP_ID: not a non-negative integer")

        agents = list(SANDBOX_AGENTS)
        raw_agents = get("HITL_SIMULATOR_AGENTS")
        if raw_agents is not None:
            agents = []
            for item in raw_agents.split(","):
                email, sep, name = item.strip().partition(":")
                if not sep or "@" not in email or not name.strip():
                    problems.append(f"HITL_SIMULATOR_AGENTS: {item.strip()!r} is not email:Name")
                else:
                    agents.append((email.strip(), name.strip()))
        else:
            defaulted.add("agents")

        port = 8090
        raw_port = get("HITL_SIMULATOR_PORT")
        if raw_port is not None:
            if raw_port.isdigit() and 0 < int(raw_port) < 65536:
                port = int(raw_port)
            else:
                problems.append("HITL_SIMULATOR_PORT: not a TCP port")
        host = get("HITL_HOST") or "127.0.0.1"
        if problems:
            raise ConfigError(problems)
        return cls(
            region=region_of(pat) or "dal",
            organization_id=organization_id,
            account_id=account_id,
            pat=pat,
            client_id=client_id,
            group_id=group_id,
            agents=agents,
            base_url=f"http://{host}:{port}",
            defaulted=frozenset(defaulted),
        )


class ConfigError(ValueError):
    """Bad simulator configuration: one line per problem, naming the variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
