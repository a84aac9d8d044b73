"""Customer Chat Web API v3.6 methods, as one customer (messaging--customer-chat-api.mdx).

Every call carries `?organization_id=` and `Authorization: Bearer <customer token>` (added by
the funnel from the `CustomerSession`). Obtain one with `LiveChatClient.customer(session)`;
renew an expiring session with `CustomerIdentities.ensure_fresh` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from livechat_hitl.livechat.agent import chat_body, compact
from livechat_hitl.livechat.client import Api
from livechat_hitl.livechat.results import (
    ResumedChat,
    SentEvent,
    StartedChat,
    UploadedFile,
    parse_answer,
)
from livechat_hitl.livechat.structures import Customer

if TYPE_CHECKING:
    from livechat_hitl.livechat.accounts import CustomerSession
    from livechat_hitl.livechat.client import LiveChatClient


class CustomerApi:
    """Customer Chat API calls authenticated by one `CustomerSession`."""

    def __init__(self, client: LiveChatClient, session: CustomerSession) -> None:
        self._client = client
        self.session = session

    async def _call(self, action: str, body: Mapping[str, Any] | None = None) -> Any:
        return await self._client.call(Api.CUSTOMER, action, body, credentials=self.session)

    async def start_chat(
        self,
        *,
        group_ids: Sequence[int] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        properties: Mapping[str, Any] | None = None,
        thread_properties: Mapping[str, Any] | None = None,
        active: bool | None = None,
        continuous: bool | None = None,
    ) -> StartedChat:
        """Start a chat as the customer; answers `chat_id` and `thread_id`."""
        body = chat_body(
            group_ids=group_ids,
            events=events,
            properties=properties,
            thread_properties=thread_properties,
            active=active,
            continuous=continuous,
        )
        return parse_answer(StartedChat, await self._call("start_chat", body))

    async def resume_chat(
        self,
        chat_id: str,
        *,
        group_ids: Sequence[int] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        properties: Mapping[str, Any] | None = None,
        thread_properties: Mapping[str, Any] | None = None,
        active: bool | None = None,
        continuous: bool | None = None,
    ) -> ResumedChat:
        """Open a new thread in the customer's inactive chat."""
        body = chat_body(
            chat_id=chat_id,
            group_ids=group_ids,
            events=events,
            properties=properties,
            thread_properties=thread_properties,
            active=active,
            continuous=continuous,
        )
        return parse_answer(ResumedChat, await self._call("resume_chat", body))

    async def deactivate_chat(self, chat_id: str) -> None:
        """Close the chat as the customer."""
        await self._call("deactivate_chat", {"id": chat_id})

    async def send_event(
        self,
        chat_id: str,
        event: Mapping[str, Any],
        *,
        attach_to_last_thread: bool | None = None,
    ) -> SentEvent:
        """Send an event as the customer; `attach_to_last_thread` appends to an inactive chat."""
        body = compact(
            chat_id=chat_id, event=dict(event), attach_to_last_thread=attach_to_last_thread
        )
        return parse_answer(SentEvent, await self._call("send_event", body))

    async def upload_file(self, name: str, content: bytes, content_type: str) -> UploadedFile:
        """Upload a file (multipart part `file`, ≤ 10 MB)."""
        answer = await self._client.call(
            Api.CUSTOMER,
            "upload_file",
            credentials=self.session,
            file=(name, content, content_type),
        )
        return parse_answer(UploadedFile, answer)

    async def get_customer(self) -> Customer:
        """The requesting customer."""
        return parse_answer(Customer, await self._call("get_customer", {}))

    async def update_customer(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        avatar: str | None = None,
        session_fields: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        """Update the requesting customer (at least one field)."""
        body = compact(
            name=name,
            email=email,
            avatar=avatar,
            session_fields=[dict(f) for f in session_fields] if session_fields else None,
        )
        if not body:
            raise ValueError("update_customer needs at least one field")
        await self._call("update_customer", body)

    async def send_sneak_peek(self, chat_id: str, text: str) -> None:
        """Show the agent what the customer is typing."""
        await self._call("send_sneak_peek", {"chat_id": chat_id, "sneak_peek_text": text})

    async def list_group_statuses(self, group_ids: Sequence[int] | None = None) -> dict[int, str]:
        """`online`, `offline` or `online_for_queue` per group (all groups by default)."""
        body: dict[str, Any] = (
            {"group_ids": list(group_ids)} if group_ids is not None else {"all": True}
        )
        answer = await self._call("list_group_statuses", body)
        statuses = answer.get("groups_status", {}) if isinstance(answer, dict) else {}
        return {int(group_id): str(status) for group_id, status in statuses.items()}
