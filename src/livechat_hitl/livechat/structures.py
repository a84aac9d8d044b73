"""LiveChat data structures (v3.6): chats, threads, events, users.

Tolerant by design: every model keeps unknown fields (`extra="allow"`), almost every field
is optional, and an event or user of a type we do not model parses into `UnknownEvent` /
`UnknownUser` instead of failing. Only the ids the gateway keys on are required.
Source: livechat-docs/pages/messaging--agent-chat-api--data-structures.mdx and the
payloads/messaging samples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class LiveChatModel(BaseModel):
    """Base of every LiveChat shape: unknown fields are kept, never fatal."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


Properties = dict[str, dict[str, Any]]
"""`{<namespace>: {<name>: value}}`."""


class Access(LiveChatModel):
    group_ids: list[int] = Field(default_factory=list)


class Queue(LiveChatModel):
    position: int | None = None
    wait_time: int | None = None
    queued_at: datetime | None = None


# -- users ------------------------------------------------------------------------------


class _UserBase(LiveChatModel):
    id: str
    name: str | None = None
    email: str | None = None
    avatar: str | None = None
    present: bool | None = None
    events_seen_up_to: datetime | None = None


class Agent(_UserBase):
    """A chat user of type `agent` (a human agent or a bot); `id` is the email."""

    type: Literal["agent"] = "agent"
    visibility: str | None = None


class Customer(_UserBase):
    """A chat user of type `customer`; `id` is a UUID."""

    type: Literal["customer"] = "customer"
    phone_number: str | None = None
    created_at: datetime | None = None
    session_fields: list[dict[str, Any]] = Field(default_factory=list)


class UnknownUser(LiveChatModel):
    """A user whose `type` we do not model; everything is kept as extra fields."""

    id: str | None = None
    type: str | None = None


def _user_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("agent", "customer") else "unknown"


User = Annotated[
    Annotated[Agent, Tag("agent")]
    | Annotated[Customer, Tag("customer")]
    | Annotated[UnknownUser, Tag("unknown")],
    Discriminator(_user_tag),
]


# -- events -----------------------------------------------------------------------------


class _EventBase(LiveChatModel):
    id: str
    custom_id: str | None = None
    author_id: str | None = None
    created_at: datetime | None = None
    visibility: str | None = None
    properties: Properties = Field(default_factory=dict)
    deleted: bool | None = None


class MessagePostback(LiveChatModel):
    id: str | None = None
    thread_id: str | None = None
    event_id: str | None = None
    type: str | None = None
    value: str | None = None


class MessageEvent(_EventBase):
    type: Literal["message"] = "message"
    text: str | None = None
    postback: MessagePostback | None = None


class FileEvent(_EventBase):
    type: Literal["file"] = "file"
    url: str | None = None
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None
    thumbnail2x_url: str | None = None
    alternative_text: str | None = None


class RichMessageButton(LiveChatModel):
    text: str | None = None
    type: str | None = None
    value: str | None = None
    postback_id: str | None = None
    user_ids: list[str] = Field(default_factory=list)


class RichMessageElement(LiveChatModel):
    title: str | None = None
    subtitle: str | None = None
    image: dict[str, Any] | None = None
    buttons: list[RichMessageButton] = Field(default_factory=list)


class RichMessageEvent(_EventBase):
    type: Literal["rich_message"] = "rich_message"
    template_id: str | None = None
    elements: list[RichMessageElement] = Field(default_factory=list)


class SystemMessageEvent(_EventBase):
    type: Literal["system_message"] = "system_message"
    system_message_type: str | None = None
    text: str | None = None
    text_vars: dict[str, Any] = Field(default_factory=dict)


class CustomEvent(_EventBase):
    type: Literal["custom"] = "custom"
    content: Any = None


class FormEvent(_EventBase):
    type: Literal["form"] = "form"
    form_id: str | None = None
    form_type: str | None = None
    fields: list[dict[str, Any]] = Field(default_factory=list)


class FilledFormEvent(_EventBase):
    type: Literal["filled_form"] = "filled_form"
    form_id: str | None = None
    form_type: str | None = None
    fields: list[dict[str, Any]] = Field(default_factory=list)


class SystemEvent(_EventBase):
    """The read-only `system` event (v3.6): `details` is a JSON string."""

    type: Literal["system"] = "system"
    source: str | None = None
    subtype: str | None = None
    version: int | None = None
    details: str | None = None


class UnknownEvent(LiveChatModel):
    """An event whose `type` we do not model; everything is kept as extra fields."""

    id: str | None = None
    type: str | None = None
    author_id: str | None = None
    custom_id: str | None = None


_EVENT_TYPES = frozenset(
    {"message", "file", "rich_message", "system_message", "custom", "form", "filled_form", "system"}
)


def _event_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _EVENT_TYPES else "unknown"


Event = Annotated[
    Annotated[MessageEvent, Tag("message")]
    | Annotated[FileEvent, Tag("file")]
    | Annotated[RichMessageEvent, Tag("rich_message")]
    | Annotated[SystemMessageEvent, Tag("system_message")]
    | Annotated[CustomEvent, Tag("custom")]
    | Annotated[FormEvent, Tag("form")]
    | Annotated[FilledFormEvent, Tag("filled_form")]
    | Annotated[SystemEvent, Tag("system")]
    | Annotated[UnknownEvent, Tag("unknown")],
    Discriminator(_event_tag),
]


# -- threads and chats ------------------------------------------------------------------


class Thread(LiveChatModel):
    id: str
    active: bool | None = None
    created_at: datetime | None = None
    user_ids: list[str] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    properties: Properties = Field(default_factory=dict)
    access: Access | None = None
    tags: list[str] = Field(default_factory=list)
    queue: Queue | None = None
    previous_thread_id: str | None = None
    next_thread_id: str | None = None


class Chat(LiveChatModel):
    """A chat as `get_chat` and `incoming_chat` carry it (one `thread`, or `threads`)."""

    id: str
    users: list[User] = Field(default_factory=list)
    properties: Properties = Field(default_factory=dict)
    access: Access | None = None
    thread: Thread | None = None
    threads: list[Thread] = Field(default_factory=list)
    is_followed: bool | None = None

    def agents(self) -> list[Agent]:
        """The chat's agents (never the customer)."""
        return [user for user in self.users if isinstance(user, Agent)]

    def customer(self) -> Customer | None:
        """The chat's customer, if it has one."""
        return next((user for user in self.users if isinstance(user, Customer)), None)

    def user(self, user_id: str) -> Agent | Customer | UnknownUser | None:
        """The chat user with this id."""
        return next((user for user in self.users if user.id == user_id), None)
