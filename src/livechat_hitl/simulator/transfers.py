"""transfer_chat, add_user_to_chat, remove_user_from_chat.

A transfer removes the agents who had the chat (they get `user_removed_from_chat`),
gives it to the chosen agent (`chat_transferred` + `user_added_to_chat`) or queues it
(`chat_transferred` with `queue` and empty `agent_ids`) when
`ignore_agents_availability` is true; otherwise it fails with `validation` "Cannot
assign any agent from requested groups", the message integrations observe.
"""

from __future__ import annotations

from . import validate as v
from .chats import ChatService
from .errors import SimError, validation
from .world import Agent, Chat, ChatUser, Json, Requester, Signal, Thread


class TransferService:
    def __init__(self, chats: ChatService) -> None:
        self.chats = chats
        self.world = chats.world
        self.router = chats.router

    def _remove_agents(
        self, chat: Chat, thread: Thread, keep: str | None, requester: Requester | None
    ) -> None:
        for user in chat.users.values():
            if user.type == "agent" and user.present and user.id != keep:
                user.present = False
                payload: Json = {
                    "chat_id": chat.id,
                    "thread_id": thread.id,
                    "user_id": user.id,
                    "user_type": "agent",
                    "reason": "manual",
                    "requester_id": requester.id if requester else user.id,
                }
                self.world.emit(
                    Signal("user_removed_from_chat", payload, chat_id=chat.id, source=requester)
                )

    def _set_access(
        self, chat: Chat, thread: Thread, group_ids: list[int], requester: Requester | None
    ) -> None:
        if sorted(group_ids) == sorted(chat.group_ids):
            return
        chat.group_ids = list(group_ids)
        thread.group_ids = list(group_ids)
        if self.world.config.emit_access_updated_on_transfer:
            payload: Json = {"id": chat.id, "access": {"group_ids": list(group_ids)}}
            self.world.emit(
                Signal("chat_access_updated", payload, chat_id=chat.id, source=requester)
            )

    def transfer(
        self,
        requester: Requester | None,
        chat: Chat,
        target_type: str | None,
        target_ids: list[object],
        *,
        ignore_availability: bool = False,
        ignore_presence: bool = False,
    ) -> None:
        thread = chat.active_thread
        if thread is None:
            raise SimError("chat_inactive")
        if requester is not None:
            self.chats.require_present(requester, chat, ignore_presence)
        exclude = [requester.id] if requester is not None else []
        agent: Agent | None
        if target_type == "agent":
            if len(target_ids) != 1 or not isinstance(target_ids[0], str):
                raise validation("`target.ids` must hold one agent id")
            agent = self.world.agent(target_ids[0])
            if not ignore_availability and (
                agent.status != "accepting_chats" or not self.router.has_capacity(agent)
            ):
                raise validation("Cannot assign any agent from requested agents")
            group_ids = list(chat.group_ids)
        else:
            if target_type is None:
                group_ids = list(chat.group_ids)
            else:
                group_ids = v.int_list(list(target_ids), "target.ids")
                if not group_ids:
                    raise validation("`target.ids` is required")
                for group_id in group_ids:
                    self.world.group(group_id)
            mode_auto = self.world.config.routing_mode == "auto"
            agent = self.router.pick(group_ids, exclude) if mode_auto else None
            if agent is None and not ignore_availability:
                raise validation("Cannot assign any agent from requested groups")
        self._remove_agents(chat, thread, agent.id if agent else None, requester)
        self._set_access(chat, thread, group_ids, requester)
        payload: Json = {"chat_id": chat.id, "thread_id": thread.id}
        if requester is not None:
            payload["requester_id"] = requester.id
        payload["reason"] = "manual"
        payload["transferred_to"] = {
            "group_ids": list(group_ids),
            "agent_ids": [agent.id] if agent else [],
        }
        if agent is None:
            self.router.enqueue(thread, group_ids)
            payload["queue"] = self.world.render_queue(thread)
            self.world.emit(Signal("chat_transferred", payload, chat_id=chat.id, source=requester))
            return
        self.router.dequeue(thread)
        user = self.router.join(chat, thread, agent.id)
        self.world.emit(Signal("chat_transferred", payload, chat_id=chat.id, source=requester))
        added: Json = {
            "chat_id": chat.id,
            "thread_id": thread.id,
            "user": self.world.render_user(user),
            "user_type": "agent",
            "reason": "manual",
            "requester_id": requester.id if requester else agent.id,
        }
        self.world.emit(Signal("user_added_to_chat", added, chat_id=chat.id, source=requester))
        self.router.drain()

    def add_user(self, requester: Requester, body: Json) -> None:
        chat = self.world.chat(body.get("chat_id"))
        user_id = v.req_str(body, "user_id")
        user_type = body.get("user_type")
        if user_type not in ("agent", "customer"):
            raise validation("`user_type` must be `agent` or `customer`")
        visibility = body.get("visibility", "all")
        if visibility not in ("all", "agents"):
            raise validation("`visibility` must be `all` or `agents`")
        ignore = v.opt_bool(body, "ignore_requester_presence")
        thread = chat.active_thread
        if thread is None:
            raise SimError("chat_inactive")
        self.chats.require_present(requester, chat, ignore)
        if user_type == "customer":
            self.world.customer(user_id)
            if visibility != "all":
                raise validation("A customer must be added with visibility `all`")
            current = chat.customer
            if current is not None and current.id != user_id:
                raise SimError("users_limit_reached", "A chat can have only one customer")
            user = chat.users.get(user_id) or ChatUser(
                user_id, "customer", True, "all", self.world.now()
            )
            user.present = True
            chat.users[user_id] = user
            if user_id not in thread.user_ids:
                thread.user_ids.append(user_id)
        else:
            self.world.agent(user_id)
            user = self.router.join(chat, thread, user_id, visibility)
        payload: Json = {
            "chat_id": chat.id,
            "thread_id": thread.id,
            "user": self.world.render_user(user),
            "user_type": user_type,
            "reason": "manual",
            "requester_id": requester.id,
        }
        self.world.emit(Signal("user_added_to_chat", payload, chat_id=chat.id, source=requester))

    def remove_user(self, requester: Requester, body: Json) -> None:
        chat = self.world.chat(body.get("chat_id"))
        user_id = v.req_str(body, "user_id")
        user_type = body.get("user_type", "agent")
        if user_type == "customer":
            raise validation("The customer cannot be removed from a chat")
        if user_type != "agent":
            raise validation("`user_type` must be `agent`")
        ignore = v.opt_bool(body, "ignore_requester_presence")
        thread = chat.active_thread
        if thread is None:
            raise SimError("chat_inactive")
        self.chats.require_present(requester, chat, ignore)
        user = chat.users.get(user_id)
        if user is None or not user.present or user.type != "agent":
            raise SimError("not_found", "User is not a member of this chat")
        user.present = False
        payload: Json = {
            "chat_id": chat.id,
            "thread_id": thread.id,
            "user_id": user_id,
            "user_type": "agent",
            "reason": "manual",
            "requester_id": requester.id,
        }
        self.world.emit(
            Signal("user_removed_from_chat", payload, chat_id=chat.id, source=requester)
        )
        self.router.drain()
