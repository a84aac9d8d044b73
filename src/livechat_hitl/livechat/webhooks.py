"""LiveChat webhook deliveries (v3.6): the envelope, per-action payloads, the secret check.

Every model keeps unknown fields; an action we do not model parses to `None` (the caller
acks and ignores it). Shapes: livechat-docs/pages/management--webhooks.mdx.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from livechat_hitl.livechat.structures import (
    Access,
    Chat,
    Event,
    LiveChatModel,
    Properties,
    Queue,
    User,
)
from livechat_hitl.livechat.wire import WebhookAction


class WebhookEnvelope(LiveChatModel):
    """`{webhook_id, secret_key, action, organization_id, payload, additional_data}`.

    `webhook_id` names the registration, not the delivery: de-duplicate on the payload.
    """

    webhook_id: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    action: str
    organization_id: str | None = None
    payload: dict[str, Any] | list[Any] = Field(default_factory=dict)
    """An object for chat actions; some configuration actions send an array."""
    additional_data: dict[str, Any] | None = Field(default_factory=dict)

    def parsed_payload(self) -> LiveChatModel | None:
        """The payload as its action's model, or `None` for an action we do not model."""
        return parse_payload(self.action, self.payload)


class IncomingChat(LiveChatModel):
    chat: Chat
    transferred_from: dict[str, Any] | None = None


class IncomingEvent(LiveChatModel):
    chat_id: str
    thread_id: str | None = None
    event: Event


class ChatDeactivated(LiveChatModel):
    chat_id: str
    thread_id: str | None = None
    user_id: str | None = None
    """Absent when the router closed the thread."""


class TransferredTo(LiveChatModel):
    group_ids: list[int] = Field(default_factory=list)
    agent_ids: list[str] = Field(default_factory=list)


class ChatTransferred(LiveChatModel):
    """A transfer: `reason` ∈ manual, inactive, assigned, unassigned, other.

    `thread_id` is present if the chat is active; `queue` if it was queued after the transfer.
    """

    chat_id: str
    thread_id: str | None = None
    requester_id: str | None = None
    reason: str | None = None
    transferred_to: TransferredTo = Field(default_factory=TransferredTo)
    queue: Queue | None = None


class ChatAccessUpdated(LiveChatModel):
    id: str
    access: Access = Field(default_factory=Access)


class UserAddedToChat(LiveChatModel):
    chat_id: str
    thread_id: str | None = None
    user: User
    user_type: str | None = None
    reason: str | None = None
    requester_id: str | None = None


class UserRemovedFromChat(LiveChatModel):
    chat_id: str
    thread_id: str | None = None
    user_id: str
    user_type: str | None = None
    reason: str | None = None
    requester_id: str | None = None


class Postback(LiveChatModel):
    id: str | None = None
    toggled: bool | None = None
    button_type: str | None = None
    button_value: str | None = None
    ecommerce: dict[str, Any] | None = None


class IncomingRichMessagePostback(LiveChatModel):
    user_id: str | None = None
    chat_id: str
    thread_id: str | None = None
    event_id: str | None = None
    postback: Postback = Field(default_factory=Postback)


class EventsMarkedAsSeen(LiveChatModel):
    user_id: str
    chat_id: str
    seen_up_to: datetime | None = None


class RoutingStatusSet(LiveChatModel):
    """An agent's or bot's routing status; `status` is normalised to the underscore form
    (`accepting_chats`, `not_accepting_chats`, `offline`) whichever spelling arrives."""

    agent_id: str
    status: str

    @field_validator("status", mode="before")
    @classmethod
    def _normalise_status(cls, value: Any) -> Any:
        if isinstance(value, str):
            return "_".join(value.strip().lower().replace("-", " ").split())
        return value


class ThreadTagged(LiveChatModel):
    chat_id: str
    thread_id: str
    tag: str


class ChatPropertiesUpdated(LiveChatModel):
    chat_id: str
    properties: Properties = Field(default_factory=dict)


PAYLOAD_MODELS: dict[str, type[LiveChatModel]] = {
    WebhookAction.INCOMING_CHAT: IncomingChat,
    WebhookAction.INCOMING_EVENT: IncomingEvent,
    WebhookAction.CHAT_DEACTIVATED: ChatDeactivated,
    WebhookAction.CHAT_TRANSFERRED: ChatTransferred,
    WebhookAction.CHAT_ACCESS_UPDATED: ChatAccessUpdated,
    WebhookAction.USER_ADDED_TO_CHAT: UserAddedToChat,
    WebhookAction.USER_REMOVED_FROM_CHAT: UserRemovedFromChat,
    WebhookAction.INCOMING_RICH_MESSAGE_POSTBACK: IncomingRichMessagePostback,
    WebhookAction.EVENTS_MARKED_AS_SEEN: EventsMarkedAsSeen,
    WebhookAction.ROUTING_STATUS_SET: RoutingStatusSet,
    WebhookAction.THREAD_TAGGED: ThreadTagged,
    WebhookAction.THREAD_UNTAGGED: ThreadTagged,
    WebhookAction.CHAT_PROPERTIES_UPDATED: ChatPropertiesUpdated,
}


def parse_payload(action: str, payload: Any) -> LiveChatModel | None:
    """The payload of `action` as its model; `None` for actions we do not model.

    Raises `pydantic.ValidationError` (a `ValueError`) when a modelled payload lacks the
    fields the gateway keys on (e.g. an `incoming_event` without `chat_id`).
    """
    model = PAYLOAD_MODELS.get(action)
    if model is None:
        return None
    return model.model_validate(payload)


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time check of a delivery's `secret_key`; an empty expected secret never matches."""
    given_bytes = (given or "").encode("utf-8")
    expected_bytes = expected.encode("utf-8")
    same = hmac.compare_digest(given_bytes, expected_bytes)
    return same and given is not None and bool(expected)
