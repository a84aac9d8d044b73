"""The webhook door's chat → handoff cache: hits skip the store, misses are never kept,
and the cache stays within its bound (least recently used out first)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from livechat_hitl.domain.models import Change, EndUser, Handoff
from livechat_hitl.domain.states import HandoffState
from livechat_hitl.http.livechat_webhooks import WebhookDoor

SECRET = "lc-secret"
ORG = "org-1"


class FakeStore:
    def __init__(self) -> None:
        self.chats: dict[str, Handoff] = {}
        self.lookups: list[str] = []

    def add(self, chat_id: str) -> Handoff:
        now = datetime.now(UTC)
        handoff = Handoff(
            id=f"h-{chat_id}",
            conversation_id=f"conv-{chat_id}",
            state=HandoffState.ASSIGNED,
            user=EndUser(id="u"),
            group_id=0,
            created_at=now,
            updated_at=now,
            chat_id=chat_id,
        )
        self.chats[chat_id] = handoff
        return handoff

    async def find_handoff_by_chat(self, chat_id: str) -> Handoff | None:
        self.lookups.append(chat_id)
        return self.chats.get(chat_id)


class FakeCommitter:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    async def commit(self, change: Change) -> bool:
        self.changes.append(change)
        return True


def make_door(store: FakeStore, committer: FakeCommitter, known_chats: int = 100) -> WebhookDoor:
    return WebhookDoor(
        store,  # type: ignore[arg-type]  # the door only looks chats up
        committer,
        secret=SECRET,
        organization_id=ORG,
        known_chats=known_chats,
    )


def client(door: WebhookDoor) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://gw.test")


async def deliver(http: httpx.AsyncClient, chat_id: str, event_id: str) -> httpx.Response:
    body: dict[str, Any] = {
        "webhook_id": "wh",
        "secret_key": SECRET,
        "action": "incoming_event",
        "organization_id": ORG,
        "payload": {
            "chat_id": chat_id,
            "thread_id": "T1",
            "event": {"id": event_id, "type": "message", "text": "hi", "author_id": "a@x"},
        },
        "additional_data": {},
    }
    response = await http.post("/livechat/webhooks", content=json.dumps(body))
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    return response


def recorded_handoffs(committer: FakeCommitter) -> list[str]:
    return [change.outbox[0].handoff_id for change in committer.changes]


async def test_a_known_chat_is_looked_up_once() -> None:
    store, committer = FakeStore(), FakeCommitter()
    store.add("C1")
    async with client(make_door(store, committer)) as http:
        for n in range(5):
            await deliver(http, "C1", f"E{n}")
    assert store.lookups == ["C1"]
    assert recorded_handoffs(committer) == ["h-C1"] * 5


async def test_a_chat_not_known_yet_is_asked_again() -> None:
    store, committer = FakeStore(), FakeCommitter()
    async with client(make_door(store, committer)) as http:
        await deliver(http, "C1", "E1")  # before the gateway recorded the chat: ignored
        assert committer.changes == []
        store.add("C1")
        await deliver(http, "C1", "E2")
        await deliver(http, "C1", "E3")
    assert store.lookups == ["C1", "C1"]
    assert recorded_handoffs(committer) == ["h-C1", "h-C1"]


async def test_the_cache_keeps_the_most_recently_used_chats() -> None:
    store, committer = FakeStore(), FakeCommitter()
    for chat in ("A", "B", "C"):
        store.add(chat)
    async with client(make_door(store, committer, known_chats=2)) as http:
        for n, chat in enumerate(["A", "B", "A", "C"]):  # C pushes out B, not A
            await deliver(http, chat, f"E{n}")
        assert store.lookups == ["A", "B", "C"]
        await deliver(http, "A", "E4")
        await deliver(http, "B", "E5")
    assert store.lookups == ["A", "B", "C", "B"]
    assert recorded_handoffs(committer) == ["h-A", "h-B", "h-A", "h-C", "h-A", "h-B"]
