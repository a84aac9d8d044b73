"""Routing: hand chats to the least busy accepting agent of a group, or queue them.

When the router assigns a queued chat, the simulator emits `chat_transferred` with
`reason: "assigned"` and `transferred_to.agent_ids: [agent]`, followed by
`user_added_to_chat` for that agent — LiveChat reports router assignments as transfers
(the `assigned` reason exists for that). `user_added_to_chat` requires `requester_id` in
the official SDK; for router actions we put the assigned agent there.
"""

from __future__ import annotations

from collections.abc import Iterable

from .world import Agent, Chat, ChatUser, Json, QueueEntry, Signal, Thread, World


class Router:
    def __init__(self, world: World) -> None:
        self.world = world

    def has_capacity(self, agent: Agent) -> bool:
        return self.world.active_chat_count(agent.id) < agent.max_chats

    def accepting_agents(self, group_ids: Iterable[int]) -> list[Agent]:
        ids = list(group_ids)
        return [
            agent
            for agent in self.world.agents.values()
            if agent.status == "accepting_chats"
            and any(gid == 0 or gid in agent.group_ids for gid in ids)
        ]

    def pick(self, group_ids: Iterable[int], exclude: Iterable[str] = ()) -> Agent | None:
        """Least busy accepting agent with room; ties go to the earliest added."""
        excluded = set(exclude)
        candidates = [
            a
            for a in self.accepting_agents(group_ids)
            if a.id not in excluded and self.has_capacity(a)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda a: self.world.active_chat_count(a.id))

    def join(self, chat: Chat, thread: Thread, agent_id: str, visibility: str = "all") -> ChatUser:
        """Make an agent a present user of the chat and of its active thread."""
        user = chat.users.get(agent_id)
        if user is None:
            user = ChatUser(agent_id, "agent", True, "all", self.world.now())
            chat.users[agent_id] = user
        user.present = True
        user.visibility = "agents" if visibility == "agents" else "all"
        if agent_id not in thread.user_ids:
            thread.user_ids.append(agent_id)
        return user

    def enqueue(self, thread: Thread, group_ids: list[int]) -> None:
        if thread.queue is not None:
            thread.queue.group_ids = list(group_ids)
            return
        self.world.queue_counter += 1
        thread.queue = QueueEntry(self.world.now(), list(group_ids), self.world.queue_counter)

    def dequeue(self, thread: Thread) -> None:
        if thread.queue is not None:
            waited = (self.world.now() - thread.queue.queued_at).total_seconds()
            thread.queues_duration = (thread.queues_duration or 0) + int(waited)
            thread.queue = None

    def assign_queued(self, chat: Chat, thread: Thread, agent: Agent) -> None:
        """Give a queued chat to an agent and report it like LiveChat's router."""
        group_ids = thread.queue.group_ids if thread.queue else list(chat.group_ids)
        self.dequeue(thread)
        user = self.join(chat, thread, agent.id)
        transferred: Json = {
            "chat_id": chat.id,
            "thread_id": thread.id,
            "reason": "assigned",
            "transferred_to": {"group_ids": list(group_ids), "agent_ids": [agent.id]},
        }
        self.world.emit(Signal("chat_transferred", transferred, chat_id=chat.id))
        added: Json = {
            "chat_id": chat.id,
            "thread_id": thread.id,
            "user": self.world.render_user(user),
            "user_type": "agent",
            "reason": "assigned",
            "requester_id": agent.id,
        }
        self.world.emit(Signal("user_added_to_chat", added, chat_id=chat.id))

    def queued_threads(self) -> list[tuple[Chat, Thread]]:
        queued = [
            (chat, thread)
            for chat in self.world.chats.values()
            if (thread := chat.active_thread) is not None and thread.queue is not None
        ]
        return sorted(queued, key=lambda pair: pair[1].queue.seq if pair[1].queue else 0)

    def drain(self) -> None:
        """Assign queued chats, oldest first, while agents have room (auto mode)."""
        if self.world.config.routing_mode != "auto":
            return
        for chat, thread in self.queued_threads():
            assert thread.queue is not None
            agent = self.pick(thread.queue.group_ids)
            if agent is not None:
                self.assign_queued(chat, thread, agent)

    def route_new(self, chat: Chat, thread: Thread, exclude: Iterable[str] = ()) -> Agent | None:
        """Route a freshly started thread: assign now or queue (auto mode)."""
        agent = (
            self.pick(chat.group_ids, exclude) if self.world.config.routing_mode == "auto" else None
        )
        if agent is None:
            self.enqueue(thread, chat.group_ids)
            return None
        self.join(chat, thread, agent.id)
        return agent
