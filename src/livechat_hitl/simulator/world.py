"""The simulated LiveChat organization: groups, agents, customers, chats, threads, events.

Shapes follow reference/livechat-docs (agent-chat-api data structures, v3.6). Rendering
lives here too, so every route and webhook shows the same structures.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from livechat_hitl.livechat.wire import format_timestamp

from .config import Clock, IdFactory, SimulatorConfig
from .errors import SimError, not_found

RoutingStatus = Literal["accepting_chats", "not_accepting_chats", "offline"]
UserType = Literal["agent", "customer"]
Json = dict[str, Any]


@dataclass
class Requester:
    """Who is calling: an agent (PAT or OAuth), a bot (bot token) or a customer."""

    kind: Literal["agent", "customer"]
    id: str
    client_id: str | None = None
    is_bot: bool = False
    via_pat: bool = False


@dataclass
class Signal:
    """Something happened that webhooks may report; `source` None means the system."""

    action: str
    payload: Json
    chat_id: str | None = None
    author_type: str | None = None
    source: Requester | None = None
    agent_id: str | None = None


@dataclass
class Group:
    id: int
    name: str
    language_code: str = "en"


@dataclass
class Agent:
    id: str
    name: str
    avatar: str
    status: RoutingStatus = "accepting_chats"
    group_ids: set[int] = field(default_factory=set)
    max_chats: int = 6
    is_bot: bool = False
    owner_client_id: str | None = None
    secret: str | None = None
    job_title: str | None = None


@dataclass
class Customer:
    id: str
    created_at: datetime
    name: str | None = None
    email: str | None = None
    avatar: str | None = None
    phone_number: str | None = None
    session_fields: list[Json] = field(default_factory=list)
    cookie_secret: str = ""
    agent_last_event_at: datetime | None = None
    customer_last_event_at: datetime | None = None


@dataclass
class ChatUser:
    id: str
    type: UserType
    present: bool
    visibility: Literal["all", "agents"]
    events_seen_up_to: datetime


@dataclass
class QueueEntry:
    queued_at: datetime
    group_ids: list[int]
    seq: int = 0  # arrival order (a frozen clock gives equal `queued_at`)


@dataclass
class Thread:
    id: str
    created_at: datetime
    active: bool
    group_ids: list[int]
    user_ids: list[str] = field(default_factory=list)
    events: list[Json] = field(default_factory=list)
    properties: Json = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    queue: QueueEntry | None = None
    queues_duration: int | None = None
    previous_thread_id: str | None = None
    next_thread_id: str | None = None
    event_counter: int = 0


@dataclass
class Chat:
    id: str
    group_ids: list[int]
    users: dict[str, ChatUser] = field(default_factory=dict)
    threads: list[Thread] = field(default_factory=list)
    properties: Json = field(default_factory=dict)

    @property
    def last_thread(self) -> Thread | None:
        return self.threads[-1] if self.threads else None

    @property
    def active_thread(self) -> Thread | None:
        last = self.last_thread
        return last if last is not None and last.active else None

    @property
    def customer(self) -> ChatUser | None:
        return next((u for u in self.users.values() if u.type == "customer"), None)

    def present_agents(self) -> list[str]:
        return [u.id for u in self.users.values() if u.type == "agent" and u.present]


class World:
    def __init__(self, config: SimulatorConfig, clock: Clock, ids: IdFactory) -> None:
        self.config = config
        self.clock = clock
        self.ids = ids
        self.groups: dict[int, Group] = {0: Group(0, "General")}
        self.agents: dict[str, Agent] = {}
        self.customers: dict[str, Customer] = {}
        self.chats: dict[str, Chat] = {}
        self.queue_counter = 0
        self.on_signal: Callable[[Signal], None] = lambda _signal: None
        self.groups[config.group_id] = Group(config.group_id, config.group_name)
        for group_id, name in config.other_groups.items():
            self.groups[group_id] = Group(group_id, name)
        api_status: RoutingStatus = (
            "accepting_chats" if config.api_agent_accepts_chats else "not_accepting_chats"
        )
        self.add_agent(config.api_agent_id, config.api_agent_name, status=api_status)
        for email, name in config.agents:
            self.add_agent(email, name)

    # --- lookups -------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def emit(self, signal: Signal) -> None:
        self.on_signal(signal)

    def chat(self, chat_id: object) -> Chat:
        if not isinstance(chat_id, str) or not chat_id:
            raise SimError("validation", "`chat_id` is required")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise not_found("Chat not found")
        return chat

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise not_found(f"Agent {agent_id} not found")
        return agent

    def customer(self, customer_id: object) -> Customer:
        customer = self.customers.get(customer_id) if isinstance(customer_id, str) else None
        if customer is None:
            raise not_found("Customer not found")
        return customer

    def group(self, group_id: object) -> Group:
        if isinstance(group_id, bool) or not isinstance(group_id, int):
            raise SimError("validation", "group id must be an integer")
        group = self.groups.get(group_id)
        if group is None:
            raise SimError("group_not_found", f"Group {group_id} not found")
        return group

    def group_members(self, group_id: int) -> list[Agent]:
        # Group 0 is the default group and means all agents.
        return [a for a in self.agents.values() if group_id == 0 or group_id in a.group_ids]

    def active_chat_count(self, agent_id: str) -> int:
        return sum(
            1
            for chat in self.chats.values()
            if chat.active_thread is not None
            and (user := chat.users.get(agent_id)) is not None
            and user.present
        )

    # --- mutations -------------------------------------------------------------------

    def add_agent(
        self,
        email: str,
        name: str,
        *,
        group_ids: set[int] | None = None,
        status: RoutingStatus = "accepting_chats",
        max_chats: int | None = None,
    ) -> Agent:
        groups = {0, self.config.group_id} if group_ids is None else {0, *group_ids}
        agent = Agent(
            id=email,
            name=name,
            avatar=f"https://cdn.livechat-files.com/api/file/lc/avatars/{email}.png",
            status=status,
            group_ids=groups,
            max_chats=max_chats or self.config.agent_max_chats,
        )
        self.agents[email] = agent
        return agent

    def new_customer(self) -> Customer:
        customer = Customer(
            id=self.ids.uuid4(), created_at=self.now(), cookie_secret=self.ids.hex32()
        )
        self.customers[customer.id] = customer
        return customer

    def new_event(self, thread: Thread, author_id: str | None, body: Json) -> Json:
        thread.event_counter += 1
        event: Json = {"id": f"{thread.id}_{thread.event_counter}"}
        if body.get("custom_id") is not None:
            event["custom_id"] = body["custom_id"]
        event["type"] = body["type"]
        if author_id is not None:
            event["author_id"] = author_id
        event["created_at"] = format_timestamp(self.now())
        event["visibility"] = body.get("visibility", "all")
        for key, value in body.items():
            if key not in event and key not in {"custom_id", "visibility"}:
                event[key] = copy.deepcopy(value)
        thread.events.append(event)
        return event

    # --- rendering -------------------------------------------------------------------

    def render_user(self, user: ChatUser) -> Json:
        seen = format_timestamp(user.events_seen_up_to)
        if user.type == "agent":
            agent = self.agents.get(user.id)
            return {
                "id": user.id,
                "type": "agent",
                "name": agent.name if agent else user.id,
                "email": user.id,
                "present": user.present,
                "events_seen_up_to": seen,
                "avatar": agent.avatar if agent else "",
                "visibility": user.visibility,
            }
        rendered = self.render_customer(self.customers[user.id])
        rendered["present"] = user.present
        rendered["events_seen_up_to"] = seen
        return rendered

    def render_customer(self, customer: Customer) -> Json:
        out: Json = {"id": customer.id, "type": "customer"}
        for key in ("name", "email", "avatar", "phone_number"):
            value = getattr(customer, key)
            if value is not None:
                out[key] = value
        out["created_at"] = format_timestamp(customer.created_at)
        if customer.session_fields:
            out["session_fields"] = copy.deepcopy(customer.session_fields)
        chats = [c for c in self.chats.values() if c.customer and c.customer.id == customer.id]
        out["statistics"] = {
            "chats_count": len(chats),
            "threads_count": sum(len(c.threads) for c in chats),
            "visits_count": 1,
        }
        if customer.agent_last_event_at is not None:
            out["agent_last_event_created_at"] = format_timestamp(customer.agent_last_event_at)
        if customer.customer_last_event_at is not None:
            out["customer_last_event_created_at"] = format_timestamp(
                customer.customer_last_event_at
            )
        return out

    def render_thread(self, thread: Thread, *, for_customer: bool = False) -> Json:
        events = [
            copy.deepcopy(e) for e in thread.events if not for_customer or e["visibility"] == "all"
        ]
        out: Json = {
            "id": thread.id,
            "created_at": format_timestamp(thread.created_at),
            "active": thread.active,
            "user_ids": list(thread.user_ids),
            "events": events,
            "properties": copy.deepcopy(thread.properties),
            "access": {"group_ids": list(thread.group_ids)},
            "tags": list(thread.tags),
        }
        if thread.queue is not None:
            out["queue"] = self.render_queue(thread)
        if thread.queues_duration is not None:
            out["queues_duration"] = thread.queues_duration
        if thread.previous_thread_id:
            out["previous_thread_id"] = thread.previous_thread_id
        if thread.next_thread_id:
            out["next_thread_id"] = thread.next_thread_id
        return out

    def queue_position(self, thread: Thread) -> int:
        if thread.queue is None:
            return 0
        ahead = 0
        for chat in self.chats.values():
            other = chat.active_thread
            if (
                other is not None
                and other.queue is not None
                and set(other.queue.group_ids) & set(thread.queue.group_ids)
                and other.queue.seq < thread.queue.seq
            ):
                ahead += 1
        return ahead + 1

    def render_queue(self, thread: Thread) -> Json:
        assert thread.queue is not None
        position = self.queue_position(thread)
        return {
            "position": position,
            "wait_time": position * self.config.queue_wait_seconds_per_position,
            "queued_at": format_timestamp(thread.queue.queued_at),
        }

    def render_chat(
        self, chat: Chat, thread: Thread | None = None, *, for_customer: bool = False
    ) -> Json:
        thread = thread or chat.last_thread
        out: Json = {"id": chat.id}
        if thread is not None:
            out["thread"] = self.render_thread(thread, for_customer=for_customer)
        out["users"] = [self.render_user(u) for u in chat.users.values()]
        out["properties"] = copy.deepcopy(chat.properties)
        out["access"] = {"group_ids": list(chat.group_ids)}
        if not for_customer:
            out["is_followed"] = False
        return out

    def render_summary(self, chat: Chat) -> Json:
        last_per_type: Json = {}
        for thread in chat.threads:
            for event in thread.events:
                last_per_type[event["type"]] = {
                    "thread_id": thread.id,
                    "thread_created_at": format_timestamp(thread.created_at),
                    "event": copy.deepcopy(event),
                }
        out: Json = {"id": chat.id, "last_event_per_type": last_per_type}
        out["users"] = [self.render_user(u) for u in chat.users.values()]
        last = chat.last_thread
        if last is not None:
            summary: Json = {
                "id": last.id,
                "created_at": format_timestamp(last.created_at),
                "user_ids": list(last.user_ids),
                "properties": copy.deepcopy(last.properties),
                "active": last.active,
                "access": {"group_ids": list(last.group_ids)},
            }
            if last.queue is not None:
                summary["queue"] = self.render_queue(last)
            out["last_thread_summary"] = summary
        out["properties"] = copy.deepcopy(chat.properties)
        out["access"] = {"group_ids": list(chat.group_ids)}
        out["is_followed"] = False
        return out
