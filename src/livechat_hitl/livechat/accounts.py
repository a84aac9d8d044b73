"""Customer identities from LiveChat's accounts API (`POST {accounts_url}/v2/customer/token`).

One end user ↔ one LiveChat customer. The cookie grant identifies a customer by the
`__lc_cid` / `__lc_cst` cookies it sets: a server that drops them creates a new customer on
every call, so a `CustomerSession` keeps them, serialises them with the token, and sends them
back on the next grant. A token within `renew_margin` of its 8 h expiry is renewed by a new
grant for the same identity (cookies for the cookie grant, `entity_id` for `agent_token`).
Source: livechat-docs/pages/authorization--customer-authorization.mdx, LIVECHAT-API §3.1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import SecretStr

from livechat_hitl.livechat.auth import AgentCredentials, bearer_authorization
from livechat_hitl.livechat.errors import CredentialsError, LiveChatError
from livechat_hitl.livechat.wire import CUSTOMER_TOKEN_TTL_SECONDS, region_of

if TYPE_CHECKING:
    from livechat_hitl.livechat.client import LiveChatClient

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
GrantType = Literal["cookie", "agent_token"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CustomerSession:
    """A customer's access token plus what identifies the customer on the next grant.

    `to_dict()` holds the token and cookies in clear text for the caller to persist; treat
    it as a secret. `repr()` shows neither.
    """

    customer_id: str
    access_token: SecretStr
    expires_at: datetime
    cookies: dict[str, str] = field(default_factory=dict, repr=False)
    organization_id: str | None = None
    grant: GrantType = "cookie"

    @property
    def region(self) -> str | None:
        """The token's region prefix, sent as `X-Region`."""
        return region_of(self.access_token.get_secret_value())

    def authorization(self) -> str:
        """`Bearer <customer access token>`."""
        return bearer_authorization(self.access_token)

    def expires_within(self, now: datetime, margin: timedelta = timedelta(0)) -> bool:
        """Whether the token is expired at `now + margin`."""
        return now + margin >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict (contains the secrets)."""
        return {
            "customer_id": self.customer_id,
            "access_token": self.access_token.get_secret_value(),
            "expires_at": self.expires_at.astimezone(UTC).isoformat(),
            "cookies": dict(self.cookies),
            "organization_id": self.organization_id,
            "grant": self.grant,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CustomerSession:
        """The inverse of `to_dict()`."""
        expires_at = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        grant = data.get("grant", "cookie")
        return cls(
            customer_id=str(data["customer_id"]),
            access_token=SecretStr(str(data["access_token"])),
            expires_at=expires_at,
            cookies={str(k): str(v) for k, v in (data.get("cookies") or {}).items()},
            organization_id=data.get("organization_id"),
            grant="agent_token" if grant == "agent_token" else "cookie",
        )


class CustomerIdentities:
    """Customer token grants, through the client's funnel."""

    def __init__(
        self,
        client: LiveChatClient,
        *,
        clock: Clock | None = None,
        renew_margin_seconds: float = 300.0,
    ) -> None:
        self._client = client
        self._clock = clock or _utc_now
        self.renew_margin = timedelta(seconds=renew_margin_seconds)

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _client_id(self) -> str:
        if not self._client.client_id:
            raise CredentialsError("customer token grants need the LiveChat client id")
        return self._client.client_id

    async def cookie_grant(
        self,
        previous: CustomerSession | None = None,
        *,
        redirect_uri: str | None = None,
        group_id: int | None = None,
    ) -> CustomerSession:
        """A token for the customer `previous` identifies (by its cookies), or a new customer."""
        organization_id = (previous.organization_id if previous else None) or (
            self._client.organization_id
        )
        if not organization_id:
            raise CredentialsError("the cookie grant needs the LiveChat organization id")
        body: dict[str, Any] = {
            "grant_type": "cookie",
            "client_id": self._client_id(),
            "response_type": "token",
            "organization_id": organization_id,
        }
        redirect = redirect_uri or self._client.redirect_uri
        if redirect:
            body["redirect_uri"] = redirect
        kept = dict(previous.cookies) if previous else {}
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in kept.items())} if kept else {}
        path = "/v2/customer/token"
        if group_id is not None:
            path = f"/v2/customer/{organization_id}/{group_id}/token"
        response = await self._client.send(
            "POST",
            f"{self._client.accounts_url}{path}",
            headers=headers,
            json_body=body,
            label="accounts/customer_token(cookie)",
        )
        cookies = {**kept, **_set_cookies(response)}
        session = self._session_from(response, "cookie", cookies, organization_id)
        if previous is not None and session.customer_id != previous.customer_id:
            logger.warning("LiveChat issued a new customer identity on a cookie grant renewal")
        return session

    async def agent_token_grant(
        self,
        *,
        customer_id: str | None = None,
        credentials: AgentCredentials | None = None,
    ) -> CustomerSession:
        """A token for `customer_id` (or a new customer) via an OAuth agent token.

        LiveChat does not accept Personal Access Tokens for this grant.
        """
        agent = credentials or self._client.agent_credentials
        if agent is None:
            raise CredentialsError("the agent_token grant needs an OAuth agent token")
        if agent.is_personal_access_token:
            raise CredentialsError(
                "the agent_token grant needs an OAuth agent token (Bearer) with customers:own; "
                "LiveChat refuses Personal Access Tokens here - use the cookie grant instead"
            )
        body: dict[str, Any] = {
            "grant_type": "agent_token",
            "client_id": self._client_id(),
            "response_type": "token",
        }
        if customer_id:
            body["entity_id"] = customer_id
        response = await self._client.send(
            "POST",
            f"{self._client.accounts_url}/v2/customer/token",
            headers={"Authorization": agent.authorization()},
            json_body=body,
            label="accounts/customer_token(agent_token)",
        )
        return self._session_from(response, "agent_token", {}, self._client.organization_id)

    async def ensure_fresh(self, session: CustomerSession | None = None) -> CustomerSession:
        """`session` while its token is good beyond the margin; else a renewed one.

        With no session, a new customer identity (cookie grant).
        """
        if session is None:
            return await self.cookie_grant()
        if not session.expires_within(self._now(), self.renew_margin):
            return session
        if session.grant == "agent_token":
            return await self.agent_token_grant(customer_id=session.customer_id)
        return await self.cookie_grant(session)

    def _session_from(
        self,
        response: httpx.Response,
        grant: GrantType,
        cookies: dict[str, str],
        organization_id: str | None,
    ) -> CustomerSession:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or not document.get("access_token"):
            raise LiveChatError("unexpected_response", "the token answer has no access_token")
        if not document.get("entity_id"):
            raise LiveChatError("unexpected_response", "the token answer has no entity_id")
        expires_in = document.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else float(CUSTOMER_TOKEN_TTL_SECONDS)
        )
        return CustomerSession(
            customer_id=str(document["entity_id"]),
            access_token=SecretStr(str(document["access_token"])),
            expires_at=self._now() + timedelta(seconds=lifetime),
            cookies=cookies,
            organization_id=document.get("organization_id") or organization_id,
            grant=grant,
        )


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    """Name → value of every `Set-Cookie`, whatever its Domain (the jar would drop some)."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        for name, morsel in jar.items():
            found[name] = morsel.value
    return found
