"""`POST /livechat/webhooks`: LiveChat deliveries, recorded durably before the 200.

The answer table is CONTRACT §2. A valid delivery for one of our chats becomes an INBOUND
outbox row (de-duplicated by a key derived from the payload), written by the group
committer together with the other deliveries arriving at the same time; the relay
applies it afterwards, in order per handoff. Nothing is parsed beyond the envelope
before the secret and the organization are checked.

It is the gateway's busiest request, so `WebhookDoor` is a plain ASGI app that the
gateway app (`http/app.py`) hands the request to before its middlewares and router;
the FastAPI route below documents it in the OpenAPI schema and serves it the same way
when the request reaches the router anyway (e.g. under a `root_path`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from livechat_hitl import ids, metrics
from livechat_hitl.domain.models import Change, OutboxItem, OutboxTarget
from livechat_hitl.http.problems import problem
from livechat_hitl.livechat.actions import chat_id_of, dedup_key, to_action
from livechat_hitl.livechat.webhooks import secret_matches
from livechat_hitl.ports import Committer, Store

log = logging.getLogger(__name__)

PATH = "/livechat/webhooks"
MAX_BODY_BYTES = 1024 * 1024
KNOWN_CHATS = 100_000
router = APIRouter(tags=["livechat"])


class WebhookDoor:
    """The ASGI app of `POST /livechat/webhooks` (the caller routes; this answers)."""

    def __init__(
        self,
        store: Store,
        committer: Committer,
        *,
        secret: str,
        organization_id: str | None,
        known_chats: int = KNOWN_CHATS,
    ) -> None:
        self._store = store
        self._committer = committer
        self._secret = secret
        self._organization = organization_id
        # chat id -> handoff id of our chats. A handoff's chat never changes once
        # recorded, so a hit stays true; a miss is not kept (a delivery can arrive
        # before the chat id is recorded). Least recently used entries go first.
        self._handoff_of_chat: OrderedDict[str, str] = OrderedDict()
        self._known_chats = known_chats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.answer(scope, receive)
        except Exception as exc:
            # What the app's error handling does for its routes: a problem+json 500,
            # and the exception on to the server, which logs it (redacted).
            log.error("unhandled error on POST %s: %s", PATH, type(exc).__name__)
            await problem(500, "internal error; the operator's log has the details")(
                scope, receive, send
            )
            raise
        await response(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive) -> Response:
        """Read the delivery, record it (or not) and say what to answer."""
        started = time.perf_counter()
        response = await self._answer(scope, receive)
        metrics.WEBHOOK_INGEST_SECONDS.labels(status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        body = await _read_body(scope, receive)
        if isinstance(body, Response):
            return body
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return problem(400, "the body is not JSON")
        if not isinstance(envelope, dict):
            return problem(400, "the body is not a JSON object")
        secret = envelope.get("secret_key")
        if not secret_matches(secret if isinstance(secret, str) else None, self._secret):
            return problem(401, "wrong or missing secret_key")
        org = envelope.get("organization_id")
        if self._organization and org != self._organization:
            return problem(401, "the delivery is for another organization")
        return await self._record(envelope)

    async def _record(self, envelope: dict[str, Any]) -> Response:
        action = envelope.get("action")
        payload = envelope.get("payload")
        if not isinstance(action, str) or not isinstance(payload, dict):
            return problem(400, "the envelope needs a string action and an object payload")
        try:
            parsed = to_action(action, payload)
        except (ValidationError, ValueError):
            return problem(400, f"the {action} payload is malformed")
        if parsed is None:
            log.debug("ignoring LiveChat %s: not used by the gateway", action)
            return _ok()
        chat_id = chat_id_of(action, payload)
        handoff_id = await self._handoff_id(chat_id) if chat_id else None
        if handoff_id is None:
            log.debug("ignoring LiveChat %s for a chat the gateway did not create", action)
            return _ok()
        row = OutboxItem(
            id=ids.outbox_id(),
            handoff_id=handoff_id,
            target=OutboxTarget.INBOUND,
            kind=action,
            payload={"action": action, "payload": payload},
        )
        written = await self._committer.commit(
            Change(outbox=(row,), dedup_key=dedup_key(action, payload))
        )
        if not written:
            log.debug("LiveChat redelivered %s for chat %s: already recorded", action, chat_id)
        return _ok()

    async def _handoff_id(self, chat_id: str) -> str | None:
        known = self._handoff_of_chat.get(chat_id)
        if known is not None:
            self._handoff_of_chat.move_to_end(chat_id)
            return known
        handoff = await self._store.find_handoff_by_chat(chat_id)
        if handoff is None:
            return None
        self._handoff_of_chat[chat_id] = handoff.id
        if len(self._handoff_of_chat) > self._known_chats:
            self._handoff_of_chat.popitem(last=False)
        return handoff.id


def _ok() -> Response:
    # A new one each time: a middleware on the router path may edit its header list.
    return Response(content=b'{"ok":true}', media_type="application/json")


async def _read_body(scope: Scope, receive: Receive) -> bytes | Response:
    """The request body, or the answer when there is none to use: 413 past
    `MAX_BODY_BYTES` (declared, or as it arrives), 400 when the client left mid-body."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            return problem(413, "the body is larger than 1 MiB")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return problem(400, "the client disconnected before the body was complete")
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return problem(413, "the body is larger than 1 MiB")
        if not message.get("more_body", False):
            return body


@router.post(
    PATH,
    responses={
        200: {"description": "recorded (or deliberately ignored)"},
        400: {"description": "not a JSON object / malformed payload"},
        401: {"description": "wrong secret_key or organization"},
        413: {"description": "body over 1 MiB"},
    },
)
async def livechat_webhook(request: Request) -> Response:
    # Only reached when the app did not hand the request to the door before routing.
    door: WebhookDoor | None = getattr(request.app, "webhook_door", None)
    if door is None:
        return problem(503, "the gateway is not started")
    return await door.answer(request.scope, request.receive)
