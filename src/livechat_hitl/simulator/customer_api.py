"""Customer Chat Web API v3.6 methods (`POST /v3.6/customer/action/<name>?organization_id=`)."""

from __future__ import annotations

from typing import Any

from . import validate as v
from .agent_api import Handler, apply_customer_update
from .core import Core
from .errors import validation
from .world import Json, Requester


def start_chat(core: Core, req: Requester, body: Json) -> Any:
    return core.chats.start(req, body)


def resume_chat(core: Core, req: Requester, body: Json) -> Any:
    return core.chats.resume(req, body)


def get_chat(core: Core, req: Requester, body: Json) -> Any:
    chat = core.chats.customer_chat(req, body.get("chat_id"))
    thread_id = v.opt_str(body, "thread_id")
    thread = next((t for t in chat.threads if t.id == thread_id), None) if thread_id else None
    return core.world.render_chat(chat, thread, for_customer=True)


def send_event(core: Core, req: Requester, body: Json) -> Any:
    attach = v.opt_bool(body, "attach_to_last_thread")
    return core.chats.send_event(req, body, attach_to_last=attach)


def deactivate_chat(core: Core, req: Requester, body: Json) -> Any:
    chat = core.chats.customer_chat(req, body.get("id"))
    core.chats.deactivate(req, chat)
    return {}


def get_customer(core: Core, req: Requester, body: Json) -> Any:
    return core.world.render_customer(core.world.customer(req.id))


def update_customer(core: Core, req: Requester, body: Json) -> Any:
    apply_customer_update(core, req.id, body)
    return {}


def send_sneak_peek(core: Core, req: Requester, body: Json) -> Any:
    core.chats.customer_chat(req, body.get("chat_id"))
    v.req_str(body, "sneak_peek_text")
    return {}  # RTM push only: no webhook


def list_group_statuses(core: Core, req: Requester, body: Json) -> Any:
    every = v.opt_bool(body, "all")
    if not every and "group_ids" not in body:
        raise validation("One of `all` or `group_ids` is required")
    wanted = (
        list(core.world.groups) if every else v.int_list(v.opt_list(body, "group_ids"), "group_ids")
    )
    statuses: dict[str, str] = {}
    for group_id in wanted:
        if group_id not in core.world.groups:
            continue  # documented: unknown groups are left out
        members = core.world.group_members(group_id)
        accepting = [a for a in members if a.status == "accepting_chats"]
        if any(core.router.has_capacity(a) for a in accepting):
            statuses[str(group_id)] = "online"
        elif accepting:
            statuses[str(group_id)] = "online_for_queue"
        else:
            statuses[str(group_id)] = "offline"
    return {"groups_status": statuses}


HANDLERS: dict[str, Handler] = {
    fn.__name__: fn
    for fn in (
        start_chat,
        resume_chat,
        get_chat,
        send_event,
        deactivate_chat,
        get_customer,
        update_customer,
        send_sneak_peek,
        list_group_statuses,
    )
}
