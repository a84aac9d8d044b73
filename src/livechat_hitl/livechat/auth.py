"""Credentials for LiveChat calls, with secrets that never show in `repr()` or logs.

An agent acts either with a Personal Access Token (HTTP Basic: base64 of
`account_id:PAT`, exactly the string the Developer Console shows) or with a Bearer token
(an OAuth agent token `dal:…`, or a bot's JWT from `issue_bot_token`). The region that goes
into `X-Region` is the prefix of the raw token (`fra:…` → `fra`); for Basic auth that is the
PAT inside the base64 string (LIVECHAT-API §1.5).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr

from livechat_hitl.livechat.errors import CredentialsError
from livechat_hitl.livechat.wire import region_of


class AuthScheme(StrEnum):
    """The `Authorization` scheme a token is sent with."""

    BASIC = "Basic"
    BEARER = "Bearer"


@dataclass(frozen=True)
class AgentCredentials:
    """How the gateway authenticates as an agent (or bot) on the Agent and Configuration APIs.

    Build it with one of the constructors; `token` is what follows the scheme in the
    `Authorization` header.
    """

    scheme: AuthScheme
    token: SecretStr
    region: str | None = None
    account_id: str | None = field(default=None)

    @classmethod
    def from_agent_token(cls, agent_token: str) -> AgentCredentials:
        """The console's base64 `account_id:PAT` string, sent as `Basic <agent_token>`."""
        compact = "".join(agent_token.split())
        try:
            decoded = base64.b64decode(compact, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise CredentialsError(
                "the LiveChat agent token is not base64 of 'account_id:PAT'"
            ) from None
        account_id, sep, pat = decoded.partition(":")
        if not sep or not account_id or not pat:
            raise CredentialsError("the LiveChat agent token does not decode to 'account_id:PAT'")
        return cls(AuthScheme.BASIC, SecretStr(compact), region_of(pat), account_id)

    @classmethod
    def from_pat(cls, account_id: str, pat: str) -> AgentCredentials:
        """An account id and its Personal Access Token, encoded for Basic auth here."""
        if not account_id or ":" in account_id:
            raise CredentialsError("the LiveChat account id must be non-empty and hold no ':'")
        if not pat:
            raise CredentialsError("the LiveChat PAT is empty")
        encoded = base64.b64encode(f"{account_id}:{pat}".encode()).decode("ascii")
        return cls(AuthScheme.BASIC, SecretStr(encoded), region_of(pat), account_id)

    @classmethod
    def from_bearer(cls, access_token: str) -> AgentCredentials:
        """An OAuth agent access token (`dal:…`) or a bot token, sent as `Bearer`."""
        token = access_token.strip()
        if token.lower().startswith("bearer "):
            token = token[len("bearer ") :].strip()
        if not token:
            raise CredentialsError("the LiveChat bearer token is empty")
        return cls(AuthScheme.BEARER, SecretStr(token), region_of(token))

    @property
    def is_personal_access_token(self) -> bool:
        """PAT (Basic) credentials; some flows (the `agent_token` grant) refuse them."""
        return self.scheme is AuthScheme.BASIC

    def authorization(self) -> str:
        """The `Authorization` header value. Keep it out of logs."""
        return f"{self.scheme.value} {self.token.get_secret_value()}"


def bearer_authorization(token: SecretStr | str) -> str:
    """`Bearer <token>` for a customer access token."""
    raw = token.get_secret_value() if isinstance(token, SecretStr) else token
    return f"Bearer {raw}"
