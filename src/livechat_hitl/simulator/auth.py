"""Credentials: the PAT (Basic only), OAuth agent tokens, bot tokens, customer tokens."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import SimError
from .world import Requester, World


@dataclass
class IssuedToken:
    subject: str
    client_id: str | None
    expires_at: datetime | None


def _auth_error(message: str = "Invalid access token") -> SimError:
    return SimError("authentication", message)


class Credentials:
    def __init__(self, world: World) -> None:
        self.world = world
        self.config = world.config
        self.customer_tokens: dict[str, IssuedToken] = {}
        self.bot_tokens: dict[str, IssuedToken] = {}
        self.agent_tokens: dict[str, IssuedToken] = {}

    # --- issuing ---------------------------------------------------------------------

    def issue_customer_token(self, customer_id: str, client_id: str) -> str:
        token = self.world.ids.token(self.config.region)
        ttl = timedelta(seconds=self.config.customer_token_ttl_seconds)
        self.customer_tokens[token] = IssuedToken(customer_id, client_id, self.world.now() + ttl)
        return token

    def issue_bot_token(self, bot_id: str, client_id: str) -> str:
        # A JWT-looking opaque string; the simulator does not sign anything.
        raw = f'{{"sub":"{bot_id}","cid":"{client_id}","n":"{self.world.ids.hex32()}"}}'
        body = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        token = f"eyJhbGciOiJub25lIn0.{body}.sim"
        ttl = timedelta(seconds=self.config.bot_token_ttl_seconds)
        self.bot_tokens[token] = IssuedToken(bot_id, client_id, self.world.now() + ttl)
        return token

    def issue_agent_token(self, agent_id: str) -> str:
        """An OAuth-style agent access token (what `/v2/token` would return)."""
        self.world.agent(agent_id)
        token = self.world.ids.token(self.config.region)
        ttl = timedelta(seconds=28800)
        self.agent_tokens[token] = IssuedToken(
            agent_id, self.config.client_id, self.world.now() + ttl
        )
        return token

    # --- checking --------------------------------------------------------------------

    def _live(self, table: dict[str, IssuedToken], token: str) -> IssuedToken | None:
        issued = table.get(token)
        if issued is None:
            return None
        if issued.expires_at is not None and issued.expires_at <= self.world.now():
            return None
        return issued

    def is_pat(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.config.pat.encode())

    def agent_requester(self, authorization: str | None) -> Requester:
        """Agent Chat and Configuration APIs: Basic PAT, agent OAuth or bot Bearer."""
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        credentials = credentials.strip()
        if not credentials:
            raise _auth_error("Missing access token")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _auth_error() from None
            account_id, _, pat = decoded.partition(":")
            if hmac.compare_digest(
                account_id.encode(), self.config.account_id.encode()
            ) and self.is_pat(pat):
                return Requester("agent", self.config.api_agent_id, via_pat=True)
            raise _auth_error()
        if scheme.lower() != "bearer":
            raise _auth_error()
        if self.is_pat(credentials):
            # Troubleshooting page: a PAT sent as Bearer fails; PATs use Basic.
            raise _auth_error("Personal access tokens must be sent with the Basic scheme")
        if (issued := self._live(self.agent_tokens, credentials)) is not None:
            return Requester("agent", issued.subject, client_id=issued.client_id)
        if (issued := self._live(self.bot_tokens, credentials)) is not None:
            return Requester("agent", issued.subject, client_id=issued.client_id, is_bot=True)
        raise _auth_error()

    def customer_requester(self, authorization: str | None) -> Requester:
        """Customer Chat API: only customer Bearer tokens."""
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise _auth_error()
        issued = self._live(self.customer_tokens, credentials)
        if issued is None:
            raise _auth_error()
        return Requester("customer", issued.subject, client_id=issued.client_id)
