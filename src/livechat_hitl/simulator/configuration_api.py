"""Configuration API v3.6 methods (`POST /v3.6/configuration/action/<name>`)."""

from __future__ import annotations

from typing import Any

from . import validate as v
from .agent_api import Handler
from .core import Core
from .errors import SimError, validation
from .world import Agent, Json, Requester

GROUP_FIELDS = {"agent_priorities", "routing_status"}
BOT_FIELDS = {"groups", "work_scheduler", "job_title", "max_chats_count", "timezone"}


def register_webhook(core: Core, req: Requester, body: Json) -> Any:
    return {"id": core.webhooks.register(req, body).id}


def list_webhooks(core: Core, req: Requester, body: Json) -> Any:
    return core.webhooks.for_owner(core.webhooks.owner(req, body))


def unregister_webhook(core: Core, req: Requester, body: Json) -> Any:
    core.webhooks.unregister(req, body)
    return {}


def enable_license_webhooks(core: Core, req: Requester, body: Json) -> Any:
    core.webhooks.license_enabled[core.webhooks.owner(req, body)] = True
    return {}


def disable_license_webhooks(core: Core, req: Requester, body: Json) -> Any:
    core.webhooks.license_enabled[core.webhooks.owner(req, body)] = False
    return {}


def get_license_webhooks_state(core: Core, req: Requester, body: Json) -> Any:
    owner = core.webhooks.owner(req, body)
    return {"license_webhooks_enabled": core.webhooks.license_enabled.get(owner, False)}


def _fields(body: Json, allowed: set[str]) -> set[str]:
    fields = v.opt_list(body, "fields")
    if not all(isinstance(f, str) and f in allowed for f in fields):
        raise validation(f"`fields` may hold only {sorted(allowed)}")
    return set(fields)


def _render_group(core: Core, group_id: int, fields: set[str]) -> Json:
    group = core.world.groups[group_id]
    out: Json = {"id": group.id, "name": group.name, "language_code": group.language_code}
    members = core.world.group_members(group_id)
    if "agent_priorities" in fields:
        out["agent_priorities"] = {a.id: "normal" for a in members}
    if "routing_status" in fields:
        accepting = any(a.status == "accepting_chats" for a in members)
        out["routing_status"] = "accepting_chats" if accepting else "offline"
    return out


def list_groups(core: Core, req: Requester, body: Json) -> Any:
    fields = _fields(body, GROUP_FIELDS)
    return [_render_group(core, gid, fields) for gid in sorted(core.world.groups)]


def get_group(core: Core, req: Requester, body: Json) -> Any:
    group = core.world.group(body.get("id"))
    return _render_group(
        core, group.id, _fields(body, GROUP_FIELDS) | {"agent_priorities", "routing_status"}
    )


def create_bot(core: Core, req: Requester, body: Json) -> Any:
    name = v.req_str(body, "name")
    owner = core.webhooks.owner(req, body)
    max_chats = v.opt_int(body, "max_chats_count", 6)
    if not 1 <= max_chats <= 500:
        raise validation("`max_chats_count` must be between 1 and 500")
    groups = v.opt_list(body, "groups")
    group_ids: set[int] = set()
    for item in groups:
        if not isinstance(item, dict):
            raise validation("`groups` items must be objects with `id`")
        group_ids.add(core.world.group(item.get("id")).id)
    bot_id = core.ids.hex32()
    bot = Agent(
        id=bot_id,
        name=name,
        avatar=v.opt_str(body, "avatar") or "",
        status="offline",
        group_ids={0, *group_ids},
        max_chats=max_chats,
        is_bot=True,
        owner_client_id=owner,
        secret=core.ids.hex32(),
        job_title=v.opt_str(body, "job_title"),
    )
    core.world.agents[bot_id] = bot
    return {"id": bot_id, "secret": bot.secret}


def list_bots(core: Core, req: Requester, body: Json) -> Any:
    every = v.opt_bool(body, "all")
    fields = _fields(body, BOT_FIELDS)
    out = []
    for bot in core.world.agents.values():
        if not bot.is_bot:
            continue
        if not every and not req.via_pat and bot.owner_client_id != req.client_id:
            continue
        item: Json = {"id": bot.id, "name": bot.name, "avatar_path": bot.avatar}
        if "groups" in fields:
            item["groups"] = [{"id": g, "priority": "normal"} for g in sorted(bot.group_ids)]
        if "max_chats_count" in fields:
            item["max_chats_count"] = bot.max_chats
        if "job_title" in fields and bot.job_title is not None:
            item["job_title"] = bot.job_title
        out.append(item)
    return out


def issue_bot_token(core: Core, req: Requester | None, body: Json) -> Any:
    bot_id = v.req_str(body, "bot_id")
    secret = v.req_str(body, "bot_secret")
    client_id = v.req_str(body, "client_id")
    organization_id = v.req_str(body, "organization_id")
    bot = core.world.agents.get(bot_id)
    if bot is None or not bot.is_bot:
        raise SimError("not_found", "Bot not found")
    if organization_id != core.config.organization_id or client_id != bot.owner_client_id:
        raise SimError("authorization", "The bot does not belong to this client")
    if secret != bot.secret:
        raise SimError("authentication", "Invalid bot secret")
    return {"token": core.credentials.issue_bot_token(bot_id, client_id)}


HANDLERS: dict[str, Handler] = {
    fn.__name__: fn
    for fn in (
        register_webhook,
        list_webhooks,
        unregister_webhook,
        enable_license_webhooks,
        disable_license_webhooks,
        get_license_webhooks_state,
        list_groups,
        get_group,
        create_bot,
        list_bots,
        issue_bot_token,
    )
}
# Public code calls issue_bot_token with no Authorization header (LIVECHAT-API §1.3).
UNAUTHENTICATED = {"issue_bot_token"}
