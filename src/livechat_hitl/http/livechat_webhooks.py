"""`POST /livechat/webhooks`: LiveChat deliveries, recorded durably before the 200.

The answer table is CONTRACT §2. A valid delivery for one of our chats becomes an INBOUND
outbox row (de-duplicated by a key derived from the payload), written by the group
committer together with the other deliveries arriving at the same time; the relay
applies it afterwards, in order per handoff. Nothing is parsed beyond the envelope
before the secret and the organization are checked.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from livechat_hitl import ids, metrics
from livechat_hitl.domain.models import Change, OutboxItem, OutboxTarget
from livechat_hitl.http.problems import problem
from livechat_hitl.livechat.actions import chat_id_of, dedup_key, to_action
from livechat_hitl.livechat.webhooks import secret_matches
from livechat_hitl.ports import Committer, Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
KNOWN_CHATS = 100_000
router = APIRouter(tags=["livechat"])


class WebhookDoor:
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

    async def receive(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return problem(413, "the body is larger than 1 MiB")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return problem(413, "the body is larger than 1 MiB")
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
    return Response(content=b'{"ok":true}', media_type="application/json")


@router.post(
    "/livechat/webhooks",
    responses={
        200: {"description": "recorded (or deliberately ignored)"},
        400: {"description": "not a JSON object / malformed payload"},
        401: {"description": "wrong secret_key or organization"},
        413: {"description": "body over 1 MiB"},
    },
)
async def livechat_webhook(request: Request) -> Response:
    door: WebhookDoor = request.app.state.webhook_door
    started = time.perf_counter()
    response = await door.receive(request)
    metrics.WEBHOOK_INGEST_SECONDS.labels(status=str(response.status_code)).observe(
        time.perf_counter() - started
    )
    return response
