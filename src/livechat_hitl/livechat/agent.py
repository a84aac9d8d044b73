"""Agent Chat Web API v3.6 methods (livechat-docs/pages/messaging--agent-chat-api.mdx).

Thin wrappers over the funnel: each builds the documented body (optional arguments left out
when `None`) and reads the documented answer. Obtain one with `LiveChatClient.agent` or
`LiveChatClient.agent_as(credentials)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from livechat_hitl.livechat.client import Api
from livechat_hitl.livechat.errors import LiveChatError
from livechat_hitl.livechat.results import (
    ChatsPage,
    ResumedChat,
    RoutingStatus,
    SentEvent,
    StartedChat,
    TransferCandidate,
    UploadedFile,
    parse_answer,
)
from livechat_hitl.livechat.structures import Chat, Customer

if TYPE_CHECKING:
    from livechat_hitl.livechat.auth import AgentCredentials
    from livechat_hitl.livechat.client import LiveChatClient

UserType = Literal["agent", "customer"]
Visibility = Literal["all", "agents"]


def compact(**fields: Any) -> dict[str, Any]:
    """The fields that are not `None` (LiveChat treats absent and default alike)."""
    return {name: value for name, value in fields.items() if value is not None}


def chat_body(
    *,
    chat_id: str | None = None,
    group_ids: Sequence[int] | None = None,
    users: Sequence[Mapping[str, str]] | None = None,
    events: Sequence[Mapping[str, Any]] | None = None,
    properties: Mapping[str, Any] | None = None,
    thread_properties: Mapping[str, Any] | None = None,
    active: bool | None = None,
    continuous: bool | None = None,
) -> dict[str, Any]:
    """The `{chat: {...}, active, continuous}` body of `start_chat` / `resume_chat`."""
    thread = compact(
        events=[dict(event) for event in events] if events is not None else None,
        properties=dict(thread_properties) if thread_properties is not None else None,
    )
    chat = compact(
        id=chat_id,
        access={"group_ids": list(group_ids)} if group_ids is not None else None,
        users=[dict(user) for user in users] if users is not None else None,
        properties=dict(properties) if properties is not None else None,
        thread=thread or None,
    )
    return compact(chat=chat or None, active=active, continuous=continuous)


class AgentApi:
    """Agent Chat API calls as one agent (the client's, or the credentials given)."""

    def __init__(self, client: LiveChatClient, credentials: AgentCredentials | None = None):
        self._client = client
        self._credentials = credentials

    async def _call(self, action: str, body: Mapping[str, Any] | None = None) -> Any:
        return await self._client.call(Api.AGENT, action, body, credentials=self._credentials)

    # -- chats ---------------------------------------------------------------------------

    async def start_chat(
        self,
        *,
        group_ids: Sequence[int] | None = None,
        users: Sequence[Mapping[str, str]] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        properties: Mapping[str, Any] | None = None,
        thread_properties: Mapping[str, Any] | None = None,
        active: bool | None = None,
        continuous: bool | None = None,
    ) -> StartedChat:
        """Start a chat (webhook `incoming_chat`); `users` are `{id, type}` to add."""
        body = chat_body(
            group_ids=group_ids,
            users=users,
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
        users: Sequence[Mapping[str, str]] | None = None,
        events: Sequence[Mapping[str, Any]] | None = None,
        properties: Mapping[str, Any] | None = None,
        thread_properties: Mapping[str, Any] | None = None,
        active: bool | None = None,
        continuous: bool | None = None,
    ) -> ResumedChat:
        """Open a new thread in an inactive chat."""
        body = chat_body(
            chat_id=chat_id,
            group_ids=group_ids,
            users=users,
            events=events,
            properties=properties,
            thread_properties=thread_properties,
            active=active,
            continuous=continuous,
        )
        return parse_answer(ResumedChat, await self._call("resume_chat", body))

    async def get_chat(self, chat_id: str, thread_id: str | None = None) -> Chat:
        """The chat with one thread (the latest unless `thread_id`) and its users."""
        answer = await self._call("get_chat", compact(chat_id=chat_id, thread_id=thread_id))
        return parse_answer(Chat, answer)

    async def list_chats(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        sort_order: Literal["asc", "desc"] | None = None,
        limit: int | None = None,
        page_id: str | None = None,
    ) -> ChatsPage:
        """One page of chat summaries; later pages send only `page_id`."""
        if page_id is not None:
            body: dict[str, Any] = {"page_id": page_id}
        else:
            body = compact(
                filters=dict(filters) if filters is not None else None,
                sort_order=sort_order,
                limit=limit,
            )
        return parse_answer(ChatsPage, await self._call("list_chats", body))

    async def deactivate_chat(
        self, chat_id: str, *, ignore_requester_presence: bool | None = None
    ) -> None:
        """Close the chat's active thread (webhook `chat_deactivated`)."""
        body = compact(id=chat_id, ignore_requester_presence=ignore_requester_presence)
        await self._call("deactivate_chat", body)

    async def transfer_chat(
        self,
        chat_id: str,
        *,
        target_type: Literal["group", "agent"] | None = None,
        target_ids: Sequence[int | str] | None = None,
        ignore_agents_availability: bool | None = None,
        ignore_requester_presence: bool | None = None,
    ) -> None:
        """Transfer to groups or agents (without a target: within the current group)."""
        target = None
        if target_type is not None:
            target = {"type": target_type, "ids": list(target_ids or [])}
        body = compact(
            id=chat_id,
            target=target,
            ignore_agents_availability=ignore_agents_availability,
            ignore_requester_presence=ignore_requester_presence,
        )
        await self._call("transfer_chat", body)

    # -- chat users ----------------------------------------------------------------------

    async def add_user_to_chat(
        self,
        chat_id: str,
        user_id: str,
        user_type: UserType,
        *,
        visibility: Visibility = "all",
        ignore_requester_presence: bool | None = None,
    ) -> None:
        """Add an agent or the (single) customer to an active chat."""
        body = compact(
            chat_id=chat_id,
            user_id=user_id,
            user_type=user_type,
            visibility=visibility,
            ignore_requester_presence=ignore_requester_presence,
        )
        await self._call("add_user_to_chat", body)

    async def remove_user_from_chat(
        self,
        chat_id: str,
        user_id: str,
        user_type: UserType = "agent",
        *,
        ignore_requester_presence: bool | None = None,
    ) -> None:
        """Remove an agent from the chat (the customer cannot be removed)."""
        body = compact(
            chat_id=chat_id,
            user_id=user_id,
            user_type=user_type,
            ignore_requester_presence=ignore_requester_presence,
        )
        await self._call("remove_user_from_chat", body)

    # -- events --------------------------------------------------------------------------

    async def send_event(self, chat_id: str, event: Mapping[str, Any]) -> SentEvent:
        """Send an event (see events.py builders; put `custom_id` on it)."""
        answer = await self._call("send_event", {"chat_id": chat_id, "event": dict(event)})
        return parse_answer(SentEvent, answer)

    async def upload_file(self, name: str, content: bytes, content_type: str) -> UploadedFile:
        """Upload a file (multipart part `file`, ≤ 10 MB); use the URL in a `file` event."""
        answer = await self._client.call(
            Api.AGENT,
            "upload_file",
            credentials=self._credentials,
            file=(name, content, content_type),
        )
        return parse_answer(UploadedFile, answer)

    async def send_typing_indicator(
        self, chat_id: str, is_typing: bool, *, visibility: Visibility | None = None
    ) -> None:
        """Show or hide the typing indicator (RTM push only; no webhook)."""
        body = compact(chat_id=chat_id, is_typing=is_typing, visibility=visibility)
        await self._call("send_typing_indicator", body)

    # -- properties and tags -------------------------------------------------------------

    async def update_chat_properties(
        self, chat_id: str, properties: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Set chat properties `{namespace: {name: value}}`."""
        body = {"id": chat_id, "properties": {ns: dict(v) for ns, v in properties.items()}}
        await self._call("update_chat_properties", body)

    async def tag_thread(self, chat_id: str, thread_id: str, tag: str) -> None:
        """Tag a thread (tags are case-sensitive)."""
        await self._call("tag_thread", {"chat_id": chat_id, "thread_id": thread_id, "tag": tag})

    # -- customers -----------------------------------------------------------------------

    async def get_customer(self, customer_id: str) -> Customer:
        """The customer with this id."""
        return parse_answer(Customer, await self._call("get_customer", {"id": customer_id}))

    async def update_customer(
        self,
        customer_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        avatar: str | None = None,
        phone_number: str | None = None,
        session_fields: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        """Update a customer's name, email, avatar, phone or session fields."""
        body = compact(
            id=customer_id,
            name=name,
            email=email,
            avatar=avatar,
            phone_number=phone_number,
            session_fields=[dict(f) for f in session_fields] if session_fields else None,
        )
        await self._call("update_customer", body)

    # -- status --------------------------------------------------------------------------

    async def list_routing_statuses(
        self, group_ids: Sequence[int] | None = None
    ) -> list[RoutingStatus]:
        """Routing statuses of agents (in `group_ids`, or all); LiveChat answers an array."""
        body = {"filters": {"group_ids": list(group_ids)}} if group_ids is not None else {}
        answer = await self._call("list_routing_statuses", body)
        return [parse_answer(RoutingStatus, item) for item in json_array(answer)]

    async def list_agents_for_transfer(self, chat_id: str) -> list[TransferCandidate]:
        """Agents the chat can go to, least busy first."""
        answer = await self._call("list_agents_for_transfer", {"chat_id": chat_id})
        return [parse_answer(TransferCandidate, item) for item in json_array(answer)]


def json_array(answer: Any) -> list[Any]:
    if isinstance(answer, list):
        return answer
    if answer == {}:
        return []
    raise LiveChatError(
        "unexpected_response", f"expected a JSON array, got {type(answer).__name__}"
    )
