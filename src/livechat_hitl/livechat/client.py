"""`LiveChatClient`: the one request funnel to LiveChat's Web APIs and accounts API.

Every LiveChat call goes through `LiveChatClient.call` (Agent, Customer, Configuration
APIs) or `LiveChatClient.send` (accounts API and anything else): they add authentication,
`X-Region`, the pinned API version, timeouts, debug logging without secrets, and turn every
failure into a `LiveChatError` (errors.py). Typed methods live in agent.py, customer.py,
configuration.py and accounts.py and only build bodies and read answers.

The `httpx.AsyncClient` (or a bare transport, which the gateway uses: requests are built
here, complete, so httpx's client layer is only cost) is injected and owned by the
caller, so tests and the sandbox pass `httpx.ASGITransport(simulator_app)` or
`httpx.MockTransport(handler)`. With the gateway's aiohttp transport (outbound.py),
`call` skips httpx's request and response objects too (`AiohttpTransport.exchange`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx

from livechat_hitl.livechat.auth import AgentCredentials
from livechat_hitl.livechat.errors import (
    CredentialsError,
    InternalError,
    LiveChatError,
    LiveChatTransportError,
    MisdirectedRequestError,
    error_from_response,
)
from livechat_hitl.livechat.wire import API_VERSION
from livechat_hitl.outbound import AiohttpTransport, Reply

if TYPE_CHECKING:
    from livechat_hitl.livechat.accounts import CustomerIdentities, CustomerSession
    from livechat_hitl.livechat.agent import AgentApi
    from livechat_hitl.livechat.configuration import ConfigurationApi
    from livechat_hitl.livechat.customer import CustomerApi

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.livechatinc.com"
DEFAULT_ACCOUNTS_URL = "https://accounts.livechat.com"
DEFAULT_TIMEOUT_SECONDS = 15.0

FileUpload = tuple[str, bytes, str]
"""A file for `upload_file`: (file name, content, content type)."""


class Api(StrEnum):
    """The three LiveChat Web APIs, as they appear in the URL."""

    AGENT = "agent"
    CUSTOMER = "customer"
    CONFIGURATION = "configuration"


class Credentials(Protocol):
    """Anything that can authenticate a call: agent credentials or a customer session."""

    @property
    def region(self) -> str | None: ...

    def authorization(self) -> str: ...


class LiveChatClient:
    """Async client of LiveChat's Agent, Customer, Configuration and accounts APIs.

    `agent_credentials` authenticate Agent and Configuration calls unless a call names its
    own; customer calls carry a `CustomerSession`. `timeout` bounds each request as a whole
    (an `httpx.Timeout` bounds its phases, and the whole by its longest phase). The region
    LiveChat names in a `misdirected_request` answer is remembered and sent as `X-Region`
    from then on.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | httpx.AsyncBaseTransport,
        *,
        api_url: str = DEFAULT_API_URL,
        accounts_url: str = DEFAULT_ACCOUNTS_URL,
        agent_credentials: AgentCredentials | None = None,
        client_id: str | None = None,
        organization_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        redirect_uri: str | None = None,
    ) -> None:
        self._http = http
        self.api_url = api_url.rstrip("/")
        self.accounts_url = accounts_url.rstrip("/")
        self.agent_credentials = agent_credentials
        self.client_id = client_id
        self.organization_id = organization_id
        self.redirect_uri = redirect_uri
        self._timeout = timeout
        self._deadline = _deadline_of(timeout)
        self._phases = httpx.Timeout(timeout).as_dict()
        self._learned_region: str | None = None

    # -- typed method groups -------------------------------------------------------------

    @property
    def agent(self) -> AgentApi:
        """Agent Chat API methods, as the configured agent."""
        from livechat_hitl.livechat.agent import AgentApi

        return AgentApi(self)

    def agent_as(self, credentials: AgentCredentials) -> AgentApi:
        """Agent Chat API methods with other credentials (e.g. a bot token)."""
        from livechat_hitl.livechat.agent import AgentApi

        return AgentApi(self, credentials)

    def customer(self, session: CustomerSession) -> CustomerApi:
        """Customer Chat API methods, as the customer `session` identifies."""
        from livechat_hitl.livechat.customer import CustomerApi

        return CustomerApi(self, session)

    @property
    def configuration(self) -> ConfigurationApi:
        """Configuration API methods (webhooks, groups, bots)."""
        from livechat_hitl.livechat.configuration import ConfigurationApi

        return ConfigurationApi(self)

    def customer_identities(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        renew_margin_seconds: float = 300.0,
    ) -> CustomerIdentities:
        """Customer token grants on the accounts API (cookie and agent_token grants)."""
        from livechat_hitl.livechat.accounts import CustomerIdentities

        return CustomerIdentities(self, clock=clock, renew_margin_seconds=renew_margin_seconds)

    # -- the funnel ----------------------------------------------------------------------

    @property
    def region(self) -> str | None:
        """The region sent as `X-Region` for agent calls (learned, else the token's)."""
        if self._learned_region:
            return self._learned_region
        return self.agent_credentials.region if self.agent_credentials else None

    def action_url(self, api: Api, action: str) -> str:
        """`{api_url}/v3.6/{api}/action/{action}`."""
        return f"{self.api_url}/v{API_VERSION}/{api.value}/action/{action}"

    async def call(
        self,
        api: Api,
        action: str,
        body: Mapping[str, Any] | None = None,
        *,
        credentials: Credentials | None = None,
        anonymous: bool = False,
        file: FileUpload | None = None,
    ) -> Any:
        """POST one Web API action and return its decoded JSON answer (`{}` when empty).

        `credentials` default to the agent credentials for Agent and Configuration calls;
        Customer calls must pass a customer session. `anonymous` sends no `Authorization`
        (e.g. `issue_bot_token`). `file` makes the call multipart with the part `file`.
        """
        auth = None if anonymous else self._credentials_for(api, credentials)
        params: dict[str, str] = {}
        if api is Api.CUSTOMER:
            params["organization_id"] = self._organization_for(credentials)
        for attempt in (1, 2):
            region = self._learned_region or (auth.region if auth else None)
            headers: dict[str, str] = {}
            if auth is not None:
                headers["Authorization"] = auth.authorization()
            if region:
                headers["X-Region"] = region
            url = self.action_url(api, action)
            label = f"{api.value}/{action}"
            try:
                if file is None and isinstance(self._http, AiohttpTransport):
                    reply: Reply | httpx.Response = await self._exchange(
                        self._http, url, headers, params, dict(body or {}), label
                    )
                else:
                    reply = await self.send(
                        "POST",
                        url,
                        headers=headers,
                        params=params,
                        json_body=None if file else dict(body or {}),
                        files={"file": file} if file else None,
                        label=label,
                    )
            except MisdirectedRequestError as error:
                right_region = error.region
                if attempt == 2 or right_region is None or right_region == region:
                    raise
                logger.info(
                    "LiveChat %s/%s answered misdirected_request; retrying in region %s",
                    api.value,
                    action,
                    right_region,
                )
                self._learned_region = right_region
                continue
            return _decode_json(reply)
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        files: Mapping[str, FileUpload] | None = None,
        label: str | None = None,
    ) -> httpx.Response:
        """Send one request; return the 2xx response or raise a `LiveChatError`.

        The request is built here, not through the client's cookie jar, so cookies of one
        customer never ride along on another customer's request.
        """
        request_headers = {"Accept": "application/json", **(headers or {})}
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            request_headers["Content-Type"] = "application/json"
        request = httpx.Request(
            method,
            url,
            params=params or None,
            headers=request_headers,
            content=content,
            files=dict(files) if files else None,
            extensions={"timeout": httpx.Timeout(self._timeout).as_dict()},
        )
        name = label or request.url.path
        started = time.perf_counter()
        with _transport_errors(name):
            # httpx's timeouts bound each phase (connect, each read, ...), not the call: a
            # server that trickles bytes, or a transport that ignores them (ASGITransport),
            # would hold the call forever. The deadline bounds the whole exchange.
            async with asyncio.timeout(self._deadline):
                if isinstance(self._http, httpx.AsyncClient):
                    response = await self._http.send(request)
                else:
                    # Straight through the transport: the request is complete, and the
                    # client layer (auth, redirects, cookies) is nothing but cost here.
                    response = await self._http.handle_async_request(request)
                await response.aread()
        return _checked(response, name, started)

    async def _exchange(
        self,
        transport: AiohttpTransport,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        json_body: Any,
        label: str,
    ) -> Reply:
        """What `send` does for a JSON POST, without httpx's request and response
        objects (outbound.py): the gateway's busiest LiveChat calls go this way."""
        request_headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            **headers,
        }
        content = json.dumps(json_body, separators=(",", ":")).encode()
        if params:
            url = f"{url}?{urlencode(params)}"
        started = time.perf_counter()
        with _transport_errors(label):
            async with asyncio.timeout(self._deadline):
                reply = await transport.exchange(
                    "POST", url, headers=request_headers, content=content, timeout=self._phases
                )
        return _checked(reply, label, started)

    def _credentials_for(self, api: Api, credentials: Credentials | None) -> Credentials:
        if credentials is not None:
            return credentials
        if api is Api.CUSTOMER:
            raise CredentialsError("Customer Chat API calls need a customer session")
        if self.agent_credentials is None:
            raise CredentialsError("no LiveChat agent credentials are configured")
        return self.agent_credentials

    def _organization_for(self, credentials: Credentials | None) -> str:
        organization_id = getattr(credentials, "organization_id", None) or self.organization_id
        if not organization_id:
            raise CredentialsError("Customer Chat API calls need an organization id")
        return str(organization_id)


def _deadline_of(timeout: float | httpx.Timeout) -> float | None:
    """Seconds one request may take in all: the timeout, or the longest of its phases."""
    if not isinstance(timeout, httpx.Timeout):
        return float(timeout)
    phases = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(phases) if phases else None


@contextlib.contextmanager
def _transport_errors(name: str) -> Iterator[None]:
    """Timeouts and transport failures as `LiveChatTransportError`."""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as error:
        logger.debug("LiveChat %s timed out", name)
        raise LiveChatTransportError(f"timeout calling {name}: {type(error).__name__}") from error
    except httpx.TransportError as error:
        logger.debug("LiveChat %s failed: %s", name, type(error).__name__)
        raise LiveChatTransportError(f"no answer calling {name}: {type(error).__name__}") from error


_Answer = TypeVar("_Answer", httpx.Response, Reply)


def _checked(response: _Answer, name: str, started: float) -> _Answer:
    """The 2xx answer, or the `LiveChatError` it stands for."""
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.debug("LiveChat %s -> %s in %.1f ms", name, response.status_code, elapsed_ms)
    if not response.is_success:
        raise error_from_response(
            response.status_code,
            response.content,
            response.headers,
            now=_http_date(response.headers),
        )
    return response


def _decode_json(response: httpx.Response | Reply) -> Any:
    if not response.content.strip():
        return {}
    try:
        return json.loads(response.content)
    except ValueError as error:
        raise InternalError(
            "internal", "LiveChat answered with a body that is not JSON", None, response.status_code
        ) from error


def _http_date(headers: Mapping[str, str]) -> datetime | None:
    """The server's `Date`, so an HTTP-date `Retry-After` is read against the server clock."""
    from email.utils import parsedate_to_datetime

    value = headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


__all__ = [
    "DEFAULT_ACCOUNTS_URL",
    "DEFAULT_API_URL",
    "Api",
    "Credentials",
    "FileUpload",
    "LiveChatClient",
    "LiveChatError",
]
