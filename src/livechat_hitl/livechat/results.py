"""Answers of LiveChat Web API methods, as small tolerant models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError

from livechat_hitl.livechat.errors import LiveChatError
from livechat_hitl.livechat.structures import LiveChatModel, User

M = TypeVar("M", bound=BaseModel)


def parse_answer(model: type[M], answer: Any) -> M:
    """`answer` as `model`; a shape LiveChat does not document is an `unexpected_response`."""
    try:
        return model.model_validate(answer)
    except ValidationError as error:
        raise LiveChatError(
            "unexpected_response",
            f"LiveChat answered a shape that is not a {model.__name__}: "
            f"{error.error_count()} problem(s)",
        ) from error


class StartedChat(LiveChatModel):
    """`start_chat`: the new chat and its first thread."""

    chat_id: str
    thread_id: str
    event_ids: list[str] = Field(default_factory=list)


class ResumedChat(LiveChatModel):
    """`resume_chat`: the new thread."""

    thread_id: str
    event_ids: list[str] = Field(default_factory=list)


class SentEvent(LiveChatModel):
    """`send_event`: the id LiveChat gave the event."""

    event_id: str


class UploadedFile(LiveChatModel):
    """`upload_file`: a CDN URL to use in a `file` event within 24 h."""

    url: str


class ChatsPage(LiveChatModel):
    """`list_chats`: one page of chat summaries."""

    chats_summary: list[dict[str, Any]] = Field(default_factory=list)
    found_chats: int | None = None
    next_page_id: str | None = None
    previous_page_id: str | None = None


class RoutingStatus(LiveChatModel):
    """An agent's routing status; `status` is `accepting_chats`, `not_accepting_chats`, …"""

    agent_id: str
    status: str


class TransferCandidate(LiveChatModel):
    """`list_agents_for_transfer`: an agent and how busy they are."""

    agent_id: str
    total_active_chats: int | None = None


class Webhook(LiveChatModel):
    """A registered webhook (`list_webhooks`)."""

    id: str
    url: str | None = None
    action: str | None = None
    description: str | None = None
    type: str | None = None
    owner_client_id: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    additional_data: list[str] = Field(default_factory=list)


class Group(LiveChatModel):
    """A LiveChat group; `routing_status` only when requested via `fields`."""

    id: int
    name: str | None = None
    language_code: str | None = None
    routing_status: str | None = None
    agent_priorities: dict[str, str] = Field(default_factory=dict)


class CreatedBot(LiveChatModel):
    """`create_bot`: the bot's id and its secret (for `issue_bot_token`)."""

    id: str
    secret: SecretStr


class RegisteredWebhook(LiveChatModel):
    """`register_webhook`: the new webhook's id."""

    id: str


class WebhooksState(LiveChatModel):
    """`get_license_webhooks_state`."""

    license_webhooks_enabled: bool = False


class BotToken(LiveChatModel):
    """`issue_bot_token`: a 24 h bearer token (a JWT)."""

    token: SecretStr


class Bot(LiveChatModel):
    """A bot agent (`list_bots`)."""

    id: str
    name: str | None = None
    avatar_path: str | None = None


CustomerProfile = User
"""`get_customer` answers with a customer user structure."""
