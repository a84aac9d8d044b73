"""Accounts API: `POST /v2/customer/token` (cookie and agent_token grants).

Cookie grant: the `__lc_cid` / `__lc_cst` cookies identify the customer; the same
cookies give the same customer id, no cookies create a new customer. The simulator
drops the `Secure` flag (it serves plain HTTP on loopback, where a Secure cookie
would never come back) and the Domain (it answers on whatever host it is reached).
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from .core import Core
from .errors import OAuthError, SimError

COOKIE_MAX_AGE = 63072000  # two years, as documented


async def read_body(request: Request) -> dict[str, object]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        # curl -d without a content type sends the JSON as form data; accept real forms too.
        parsed = dict(parse_qsl(raw.decode(errors="replace")))
    if not isinstance(parsed, dict):
        raise OAuthError(400, "invalid_request", "The request body must be an object")
    return parsed


async def customer_token(core: Core, request: Request) -> JSONResponse:
    body = await read_body(request)
    grant = body.get("grant_type")
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise OAuthError(400, "invalid_request", "client_id is required")
    if client_id not in core.config.client_ids:
        raise OAuthError(400, "invalid_client", "Unknown client_id")
    response_type = body.get("response_type", "token")
    if response_type != "token":
        raise OAuthError(400, "unsupported_response_type", "response_type must be token")
    if grant == "cookie":
        return _cookie_grant(core, request, body, client_id)
    if grant == "agent_token":
        return _agent_grant(core, request, body, client_id)
    raise OAuthError(400, "unsupported_grant_type", "grant_type must be cookie or agent_token")


def _token_body(core: Core, token: str, customer_id: str) -> dict[str, object]:
    return {
        "access_token": token,
        "entity_id": customer_id,
        "expires_in": core.config.customer_token_ttl_seconds,
        "token_type": "Bearer",
        "organization_id": core.config.organization_id,
    }


def _cookie_grant(
    core: Core, request: Request, body: dict[str, object], client_id: str
) -> JSONResponse:
    organization_id = body.get("organization_id") or request.path_params.get("organization_id")
    if organization_id != core.config.organization_id:
        raise OAuthError(400, "invalid_request", "organization_id is missing or unknown")
    redirect_uri = body.get("redirect_uri") or request.headers.get("origin")
    if not isinstance(redirect_uri, str) or not redirect_uri:
        raise OAuthError(400, "invalid_request", "redirect_uri is required for the cookie grant")
    whitelist = core.config.redirect_uris
    if whitelist and not any(redirect_uri.startswith(allowed) for allowed in whitelist):
        raise OAuthError(400, "invalid_request", "redirect_uri is not whitelisted")
    cid = request.cookies.get("__lc_cid")
    cst = request.cookies.get("__lc_cst", "")
    customer = core.world.customers.get(cid) if cid else None
    if customer is None or not hmac.compare_digest(customer.cookie_secret, cst):
        customer = core.world.new_customer()
    token = core.credentials.issue_customer_token(customer.id, client_id)
    response = JSONResponse(_token_body(core, token, customer.id))
    for name, value in (("__lc_cid", customer.id), ("__lc_cst", customer.cookie_secret)):
        response.set_cookie(
            name, value, max_age=COOKIE_MAX_AGE, path="/v2/customer", httponly=True, samesite="lax"
        )
    return response


def _agent_grant(
    core: Core, request: Request, body: dict[str, object], client_id: str
) -> JSONResponse:
    try:
        requester = core.credentials.agent_requester(request.headers.get("authorization"))
    except SimError:
        raise OAuthError(401, "invalid_client", "A valid agent access token is required") from None
    if requester.via_pat or requester.is_bot:
        raise OAuthError(
            401, "access_denied", "Personal access tokens are not allowed for this grant"
        )
    entity_id = body.get("entity_id")
    if entity_id is not None:
        customer = core.world.customers.get(entity_id) if isinstance(entity_id, str) else None
        if customer is None:
            raise OAuthError(400, "invalid_request", "Unknown entity_id")
    else:
        customer = core.world.new_customer()
    token = core.credentials.issue_customer_token(customer.id, client_id)
    out = _token_body(core, token, customer.id)
    out["client_id"] = client_id
    return JSONResponse(out)
