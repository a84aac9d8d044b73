"""Agent Chat Web API v3.6 methods (`POST /v3.6/agent/action/<name>`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from . import validate as v
from .core import Core
from .errors import SimError, validation
from .world import Json, Requester, Signal

Handler = Callable[[Core, Requester, Json], Any]


def start_chat(core: Core, req: Requester, body: Json) -> Any:
    return core.chats.start(req, body)


def resume_chat(core: Core, req: Requester, body: Json) -> Any:
    return core.chats.resume(req, body)


def get_chat(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("chat_id"))
    thread_id = v.opt_str(body, "thread_id")
    thread = chat.last_thread
    if thread_id is not None:
        thread = next((t for t in chat.threads if t.id == thread_id), None)
        if thread is None:
            raise SimError("not_found", "Thread not found")
    return core.world.render_chat(chat, thread)


def list_chats(core: Core, req: Requester, body: Json) -> Any:
    page_id = v.opt_str(body, "page_id")
    if page_id is not None:
        if {"filters", "limit", "sort_order"} & set(body):
            raise validation("`page_id` cannot be combined with filters, limit or sort_order")
        try:
            state = json.loads(base64.urlsafe_b64decode(page_id.encode()).decode())
            body = state["request"]
            offset = int(state["offset"])
        except (ValueError, KeyError, TypeError):
            raise validation("`page_id` is invalid") from None
    else:
        offset = 0
    filters = v.opt_dict(body, "filters")
    limit = v.opt_int(body, "limit", 10)
    if not 1 <= limit <= 100:
        raise validation("`limit` must be between 1 and 100")
    order = body.get("sort_order", "desc")
    if order not in ("asc", "desc"):
        raise validation("`sort_order` must be `asc` or `desc`")
    chats = list(core.world.chats.values())
    active = filters.get("active")
    if active is not None:
        chats = [c for c in chats if (c.active_thread is not None) == bool(active)]
    if "group_ids" in filters:
        wanted = set(v.int_list(v.opt_list(filters, "group_ids"), "filters.group_ids"))
        chats = [c for c in chats if wanted & set(c.group_ids)]
    if not filters.get("include_chats_without_threads", True):
        chats = [c for c in chats if c.threads]

    def key(chat: Any) -> Any:
        return chat.last_thread.created_at if chat.last_thread else core.world.now()

    chats.sort(key=key, reverse=order == "desc")
    page = chats[offset : offset + limit]
    out: Json = {
        "chats_summary": [core.world.render_summary(c) for c in page],
        "found_chats": len(chats),
    }
    request = {"filters": filters, "limit": limit, "sort_order": order}

    def token(at: int) -> str:
        raw = json.dumps({"request": request, "offset": at}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    if offset + limit < len(chats):
        out["next_page_id"] = token(offset + limit)
    if offset > 0:
        out["previous_page_id"] = token(max(0, offset - limit))
    return out


def deactivate_chat(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("id"))
    core.chats.deactivate(req, chat, ignore_presence=v.opt_bool(body, "ignore_requester_presence"))
    return {}


def transfer_chat(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("id"))
    target = body.get("target")
    target_type: str | None = None
    target_ids: list[Any] = []
    if target is not None:
        if not isinstance(target, dict) or target.get("type") not in ("group", "agent"):
            raise validation("`target.type` must be `group` or `agent`")
        target_type = target["type"]
        target_ids = v.opt_list(target, "ids")
    core.transfers.transfer(
        req,
        chat,
        target_type,
        target_ids,
        ignore_availability=v.opt_bool(body, "ignore_agents_availability")
        or v.opt_bool(body, "force"),
        ignore_presence=v.opt_bool(body, "ignore_requester_presence"),
    )
    return {}


def add_user_to_chat(core: Core, req: Requester, body: Json) -> Any:
    core.transfers.add_user(req, body)
    return {}


def remove_user_from_chat(core: Core, req: Requester, body: Json) -> Any:
    core.transfers.remove_user(req, body)
    return {}


def send_event(core: Core, req: Requester, body: Json) -> Any:
    # v3.6 no longer documents attach_to_last_thread for agents; it is ignored here.
    return core.chats.send_event(req, body)


def update_chat_properties(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("id"))
    props = v.properties(body.get("properties"))
    if not props:
        raise validation("`properties` is required")
    for namespace, values in props.items():
        chat.properties.setdefault(namespace, {}).update(values)
    payload: Json = {"chat_id": chat.id, "properties": props}
    core.world.emit(Signal("chat_properties_updated", payload, chat_id=chat.id, source=req))
    return {}


def tag_thread(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("chat_id"))
    thread_id = v.req_str(body, "thread_id")
    tag = v.req_str(body, "tag")
    thread = next((t for t in chat.threads if t.id == thread_id), None)
    if thread is None:
        raise SimError("not_found", "Thread not found")
    if tag not in thread.tags:
        thread.tags.append(tag)
    payload: Json = {"chat_id": chat.id, "thread_id": thread.id, "tag": tag}
    core.world.emit(Signal("thread_tagged", payload, chat_id=chat.id, source=req))
    return {}


def get_customer(core: Core, req: Requester, body: Json) -> Any:
    return core.world.render_customer(core.world.customer(body.get("id")))


def apply_customer_update(core: Core, customer_id: str, body: Json) -> None:
    customer = core.world.customer(customer_id)
    for key in ("name", "email", "avatar", "phone_number"):
        value = v.opt_str(body, key)
        if value is not None:
            setattr(customer, key, value)
    if "session_fields" in body:
        fields = v.opt_list(body, "session_fields")
        if not all(isinstance(f, dict) for f in fields):
            raise validation("`session_fields` must be an array of objects")
        customer.session_fields = [dict(f) for f in fields]


def update_customer(core: Core, req: Requester, body: Json) -> Any:
    apply_customer_update(core, v.req_str(body, "id"), body)
    return {}


def list_routing_statuses(core: Core, req: Requester, body: Json) -> Any:
    filters = v.opt_dict(body, "filters")
    agents = list(core.world.agents.values())
    if "group_ids" in filters:
        wanted = set(v.int_list(v.opt_list(filters, "group_ids"), "filters.group_ids"))
        agents = [a for a in agents if 0 in wanted or wanted & a.group_ids]
    return [{"agent_id": a.id, "status": a.status} for a in agents]


def list_agents_for_transfer(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("chat_id"))
    present = set(chat.present_agents())
    return [
        {"agent_id": a.id, "total_active_chats": core.world.active_chat_count(a.id)}
        for a in core.router.accepting_agents(chat.group_ids)
        if a.id not in present
    ]


def send_typing_indicator(core: Core, req: Requester, body: Json) -> Any:
    chat = core.world.chat(body.get("chat_id"))
    if not isinstance(body.get("is_typing"), bool):
        raise validation("`is_typing` is required")
    if body.get("visibility", "all") not in ("all", "agents"):
        raise validation("`visibility` must be `all` or `agents`")
    if chat.active_thread is None:
        raise SimError("chat_inactive")
    return {}  # RTM push only: no webhook


def set_routing_status(core: Core, req: Requester, body: Json) -> Any:
    status = v.req_str(body, "status")
    agent_id = v.opt_str(body, "agent_id") or req.id
    agent = core.world.agent(agent_id)
    if status not in ("accepting_chats", "not_accepting_chats", "offline") or (
        status == "offline" and not agent.is_bot
    ):
        raise validation("`status` must be accepting_chats or not_accepting_chats")
    core.set_routing_status(agent_id, status, req)
    return {}


HANDLERS: dict[str, Handler] = {
    fn.__name__: fn
    for fn in (
        start_chat,
        resume_chat,
        get_chat,
        list_chats,
        deactivate_chat,
        transfer_chat,
        add_user_to_chat,
        remove_user_from_chat,
        send_event,
        update_chat_properties,
        tag_thread,
        get_customer,
        update_customer,
        list_routing_statuses,
        list_agents_for_transfer,
        send_typing_indicator,
        set_routing_status,
    )
}
