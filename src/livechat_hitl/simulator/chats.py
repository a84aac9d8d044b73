"""Chat operations shared by the Agent and Customer Chat APIs (and the control API).

Choices the docs leave open:
- "Requester must be a chat user" means a *present* user; refusing answers
  `authorization`. After a transfer the transferring agent is no longer present, so
  closing afterwards needs `ignore_requester_presence: true` (as on LiveChat).
- An inactive chat answers `chat_inactive` before presence is looked at (send_event,
  deactivate_chat, transfer_chat, add/remove user): see `send_event`.
- Agents (PAT accounts are normally owners) can see every chat of the organization.
"""

from __future__ import annotations

from typing import Any

from . import validate as v
from .errors import SimError, validation
from .files import FileStore
from .routing import Router
from .world import Chat, ChatUser, Json, Requester, Signal, Thread, UserType, World


class ChatService:
    def __init__(self, world: World, router: Router, files: FileStore) -> None:
        self.world = world
        self.router = router
        self.files = files

    # --- helpers ---------------------------------------------------------------------

    def require_present(self, requester: Requester, chat: Chat, ignore: bool = False) -> None:
        if ignore and requester.kind == "agent":
            return
        user = chat.users.get(requester.id)
        if user is None or not user.present:
            raise SimError("authorization", "Requester is not a user of this chat")

    def customer_chat(self, requester: Requester, chat_id: Any) -> Chat:
        chat = self.world.chat(chat_id)
        customer = chat.customer
        if customer is None or customer.id != requester.id:
            raise SimError("not_found", "Chat not found")
        return chat

    def _new_thread(self, chat: Chat, active: bool, thread_props: Json) -> Thread:
        previous = chat.last_thread
        thread = Thread(
            id=self.world.ids.chat_id(),
            created_at=self.world.now(),
            active=active,
            group_ids=list(chat.group_ids),
            properties=thread_props,
        )
        if previous is not None:
            previous.next_thread_id = thread.id
            thread.previous_thread_id = previous.id
        chat.threads.append(thread)
        thread.user_ids = [u.id for u in chat.users.values() if u.present]
        return thread

    def _group_ids(self, chat_obj: Json) -> list[int] | None:
        access = v.opt_dict(chat_obj, "access")
        if "group_ids" not in access:
            return None
        group_ids = v.int_list(v.opt_list(access, "group_ids"), "access.group_ids")
        for group_id in group_ids:
            self.world.group(group_id)
        return group_ids or None

    def _author_type(self, requester: Requester) -> UserType:
        return "customer" if requester.kind == "customer" else "agent"

    def _add_event(
        self, chat: Chat, thread: Thread, requester: Requester | None, body: Json
    ) -> Json:
        if body.get("type") == "file":
            stored = self.files.by_url(body["url"])
            if stored is None:
                raise validation("`event.url` must point at a file uploaded with upload_file")
            body = {**body, "url": stored.url, "name": stored.name}
            body["content_type"] = stored.content_type
            body["size"] = stored.size
        author = requester.id if requester is not None else None
        event = self.world.new_event(thread, author, body)
        now = self.world.now()
        if requester is not None and (user := chat.users.get(requester.id)) is not None:
            user.events_seen_up_to = now
        customer_user = chat.customer
        if customer_user is not None and requester is not None:
            customer = self.world.customers[customer_user.id]
            if requester.kind == "customer":
                customer.customer_last_event_at = now
            else:
                customer.agent_last_event_at = now
        return event

    def _emit_event(
        self, chat: Chat, thread: Thread, event: Json, requester: Requester | None
    ) -> None:
        payload: Json = {"chat_id": chat.id, "thread_id": thread.id, "event": dict(event)}
        author_type = self._author_type(requester) if requester is not None else None
        self.world.emit(
            Signal(
                "incoming_event",
                payload,
                chat_id=chat.id,
                author_type=author_type,
                source=requester,
            )
        )

    def _initial(
        self, chat: Chat, thread: Thread, requester: Requester, raw_events: list[Any]
    ) -> list[str]:
        customer = requester.kind == "customer"
        checked = [v.event(e, customer=customer) for e in raw_events]
        ids = []
        for body in checked:
            event = self._add_event(chat, thread, requester, body)
            ids.append(event["id"])
        return ids

    def _emit_incoming_chat(self, chat: Chat, thread: Thread, requester: Requester) -> None:
        payload = {"chat": self.world.render_chat(chat, thread)}
        self.world.emit(Signal("incoming_chat", payload, chat_id=chat.id, source=requester))
        if self.world.config.initial_events_fire_incoming_event:
            for event in thread.events:
                self._emit_event(chat, thread, event, requester)

    # --- start / resume ------------------------------------------------------------------

    def start(self, requester: Requester, body: Json) -> Json:
        chat_obj = v.opt_dict(body, "chat")
        active = v.opt_bool(body, "active", True)
        continuous = v.opt_bool(body, "continuous", False)
        chat_props = v.properties(chat_obj.get("properties"), "chat.properties")
        thread_obj = v.opt_dict(chat_obj, "thread")
        thread_props = v.properties(thread_obj.get("properties"), "chat.thread.properties")
        raw_events = v.opt_list(thread_obj, "events")
        group_ids = self._group_ids(chat_obj) or [0]
        extra_users = self._extra_users(requester, chat_obj)
        customer_side = requester.kind == "customer"
        routed = customer_side or self.world.config.route_agent_started_chats
        if (
            customer_side
            and active
            and self.world.config.customer_start_requires_online_group
            and not self.router.accepting_agents(group_ids)
        ):
            raise SimError("groups_offline", "Groups offline")
        chat = Chat(id=self.world.ids.chat_id(), group_ids=group_ids)
        chat.properties = {ns: dict(vals) for ns, vals in chat_props.items()}
        chat.properties.setdefault("routing", {})["continuous"] = continuous
        if requester.client_id:
            chat.properties.setdefault("source", {})["client_id"] = requester.client_id
        now = self.world.now()
        chat.users[requester.id] = ChatUser(
            requester.id,
            self._author_type(requester),
            True,
            "all",
            now,
        )
        for user_id, user_type in extra_users:
            chat.users[user_id] = ChatUser(user_id, user_type, True, "all", now)
        thread = self._new_thread(
            chat, active, {ns: dict(vals) for ns, vals in thread_props.items()}
        )
        event_ids = self._initial(chat, thread, requester, raw_events)
        self.world.chats[chat.id] = chat
        if active and routed:
            self.router.route_new(chat, thread, exclude=[requester.id])
        self._emit_incoming_chat(chat, thread, requester)
        result: Json = {"chat_id": chat.id, "thread_id": thread.id}
        if event_ids:
            result["event_ids"] = event_ids
        return result

    def _extra_users(self, requester: Requester, chat_obj: Json) -> list[tuple[str, UserType]]:
        users = v.opt_list(chat_obj, "users")
        if users and requester.kind == "customer":
            raise validation("`chat.users` is not allowed for customers")
        out: list[tuple[str, UserType]] = []
        for item in users:
            if not isinstance(item, dict) or item.get("type") not in ("agent", "customer"):
                raise validation("`chat.users` items need `id` and `type` agent|customer")
            user_id = v.req_str(item, "id")
            if item["type"] == "agent":
                self.world.agent(user_id)
            else:
                self.world.customer(user_id)
            user_type: UserType = "agent" if item["type"] == "agent" else "customer"
            if user_id != requester.id:
                out.append((user_id, user_type))
        if sum(1 for _, t in out if t == "customer") > 1:
            raise SimError("users_limit_reached", "A chat can have only one customer")
        if sum(1 for _, t in out if t == "agent") > 4:
            raise SimError("users_limit_reached", "A chat can have at most 4 additional agents")
        return out

    def resume(self, requester: Requester, body: Json) -> Json:
        chat_obj = body.get("chat")
        if not isinstance(chat_obj, dict):
            raise validation("`chat` is required")
        chat = (
            self.customer_chat(requester, chat_obj.get("id"))
            if requester.kind == "customer"
            else self.world.chat(chat_obj.get("id"))
        )
        if chat.active_thread is not None:
            raise SimError("validation", "Chat is already active")
        active = v.opt_bool(body, "active", True)
        continuous = v.opt_bool(body, "continuous", False)
        group_ids = self._group_ids(chat_obj)
        if group_ids is not None:
            chat.group_ids = group_ids
        props = v.properties(chat_obj.get("properties"), "chat.properties")
        for ns, vals in props.items():
            chat.properties.setdefault(ns, {}).update(vals)
        chat.properties.setdefault("routing", {})["continuous"] = continuous
        thread_obj = v.opt_dict(chat_obj, "thread")
        thread_props = v.properties(thread_obj.get("properties"), "chat.thread.properties")
        customer_side = requester.kind == "customer"
        if (
            customer_side
            and active
            and self.world.config.customer_start_requires_online_group
            and not self.router.accepting_agents(chat.group_ids)
        ):
            raise SimError("groups_offline", "Groups offline")
        for user in chat.users.values():
            user.present = user.type == "customer"
        requester_user = chat.users.get(requester.id)
        if requester_user is None:
            requester_user = ChatUser(
                requester.id,
                self._author_type(requester),
                True,
                "all",
                self.world.now(),
            )
            chat.users[requester.id] = requester_user
        requester_user.present = True
        thread = self._new_thread(chat, active, {ns: dict(x) for ns, x in thread_props.items()})
        event_ids = self._initial(chat, thread, requester, v.opt_list(thread_obj, "events"))
        if active and (customer_side or self.world.config.route_agent_started_chats):
            self.router.route_new(chat, thread, exclude=[requester.id])
        self._emit_incoming_chat(chat, thread, requester)
        result: Json = {"thread_id": thread.id}
        if event_ids:
            result["event_ids"] = event_ids
        return result

    # --- events ------------------------------------------------------------------------

    def send_event(self, requester: Requester, body: Json, *, attach_to_last: bool = False) -> Json:
        customer_side = requester.kind == "customer"
        chat = (
            self.customer_chat(requester, body.get("chat_id"))
            if customer_side
            else self.world.chat(body.get("chat_id"))
        )
        checked = v.event(body.get("event"), customer=customer_side)
        thread = chat.active_thread
        if thread is None:
            if customer_side and attach_to_last and chat.last_thread is not None:
                thread = chat.last_thread
            else:
                # The chat's state is checked before the requester's presence. Deactivating
                # "closes the currently open thread. Sending messages to this thread will no
                # longer be possible" (agent-chat-api, Deactivate Chat), and `chat_inactive`
                # is in send_event's documented errors; presence ("must be added to the
                # chat") is about the open thread, which an inactive chat does not have. So
                # anyone who may see the chat (every agent here: chats--all) gets
                # `chat_inactive`, whether or not a transfer took them out before the close;
                # the docs list "the chat must be active" before "the requester must be
                # present" for transfer_chat and add_user_to_chat too, which check the same
                # way. Customers get it unless they pass `attach_to_last_thread`.
                raise SimError("chat_inactive")
        self.require_present(requester, chat)
        user = chat.users[requester.id]
        if checked["visibility"] == "all" and user.visibility == "agents":
            raise SimError("validation", "This user can only send events visible to agents")
        event = self._add_event(chat, thread, requester, checked)
        self._emit_event(chat, thread, event, requester)
        return {"event_id": event["id"]}

    def system_event(self, chat: Chat, thread: Thread, kind: str, text: str) -> Json:
        event = self.world.new_event(
            thread, None, {"type": "system_message", "system_message_type": kind, "text": text}
        )
        self._emit_event(chat, thread, event, None)
        return event

    # --- deactivate ----------------------------------------------------------------------

    def deactivate(
        self, requester: Requester | None, chat: Chat, *, ignore_presence: bool = False
    ) -> None:
        thread = chat.active_thread
        if thread is None:
            raise SimError("chat_inactive")
        if requester is not None:
            self.require_present(requester, chat, ignore_presence)
        if requester is not None and requester.kind == "customer":
            self.system_event(
                chat, thread, "manual_archived_customer", "Chat closed by the customer"
            )
        thread.active = False
        self.router.dequeue(thread)
        payload: Json = {"chat_id": chat.id, "thread_id": thread.id}
        if requester is not None:
            payload["user_id"] = requester.id
        self.world.emit(Signal("chat_deactivated", payload, chat_id=chat.id, source=requester))
        self.router.drain()
