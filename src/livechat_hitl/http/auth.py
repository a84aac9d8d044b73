"""Bearer API keys for the bot API, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


class ApiKeys:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    def valid(self, presented: str) -> bool:
        given = presented.encode()
        # Compare against every key so the time does not tell which one matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        return matched


async def require_api_key(request: Request) -> None:
    keys: ApiKeys = request.app.state.api_keys
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or not keys.valid(token.strip()):
        raise HTTPException(401, "a valid API key is required: Authorization: Bearer <key>")
