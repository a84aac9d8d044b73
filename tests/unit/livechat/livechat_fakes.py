"""A recording fake LiveChat on httpx.MockTransport, and the test credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

ACCOUNT_ID = "b7eff798-f8df-4364-8059-649c35c9ed0c"
PAT = "fra:Zq3x-PAT-SECRET-0123456789ab"
CLIENT_ID = "9cbf3a968289727cb3cdfe83ab1d9836"
ORGANIZATION_ID = "390e44e6-f1e6-0368-a6dd-74a14508c2e1"

Responder = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeLiveChat:
    """Answers by path (`responders`, default `{}`) and records every request."""

    responders: dict[str, Responder | list[Responder]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, path: str, *answers: Responder | httpx.Response | Any) -> None:
        """Queue answers for `path`; the last one repeats. Plain data is a 200 JSON answer."""
        self.responders[path] = [_responder(answer) for answer in answers]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.responders.get(request.url.path)
        if queue is None:
            return httpx.Response(200, json={})
        if isinstance(queue, list):
            responder = queue.pop(0) if len(queue) > 1 else queue[0]
        else:
            responder = queue
        return responder(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def _responder(answer: Responder | httpx.Response | Any) -> Responder:
    if isinstance(answer, httpx.Response):
        return lambda request: answer
    if callable(answer):
        return answer
    return lambda request: httpx.Response(200, json=answer)


def error_response(
    status: int, error_type: str, message: str = "", data: Any = None, **headers: str
) -> httpx.Response:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if data is not None:
        error["data"] = data
    return httpx.Response(status, json={"error": error}, headers=headers)
