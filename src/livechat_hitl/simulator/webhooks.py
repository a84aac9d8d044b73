"""Webhook registry (Configuration API) and the filters LiveChat applies (v3.6)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import validate as v
from .errors import SimError, validation
from .world import Json, Requester, Signal, World

CHAT_ACTIONS = {
    "incoming_chat", "chat_deactivated", "chat_access_updated", "chat_transferred",
    "user_added_to_chat", "user_removed_from_chat",
}  # fmt: skip
EVENT_ACTIONS = {"incoming_event", "event_updated"}
OTHER_CHAT_ACTIONS = {
    "event_deleted", "incoming_rich_message_postback", "chat_properties_updated",
    "chat_properties_deleted", "thread_properties_updated", "thread_properties_deleted",
    "event_properties_updated", "event_properties_deleted", "thread_tagged", "thread_untagged",
    "events_marked_as_seen", "thread_summary_set",
}  # fmt: skip
CONFIG_ACTIONS = {
    "agent_created", "agent_updated", "agent_deleted", "agent_suspended", "agent_unsuspended",
    "agent_approved", "bot_created", "bot_updated", "bot_deleted", "group_created",
    "group_updated", "group_deleted", "auto_accesses_updated", "tag_created", "tag_deleted",
    "tag_updated",
}  # fmt: skip
V36_ACTIONS = (
    CHAT_ACTIONS
    | EVENT_ACTIONS
    | OTHER_CHAT_ACTIONS
    | CONFIG_ACTIONS
    | {"routing_status_set", "customer_session_fields_updated"}
)
MAX_PER_ACTION = 3
ADDITIONAL_DATA = {"chat_properties", "chat_presence_user_ids"}
SOURCE_TYPES = {"my_client", "other_clients", "system"}


def allowed_filters(action: str) -> set[str]:
    if action in EVENT_ACTIONS:
        return {"chat_presence", "author_type", "only_my_chats", "source_type"}
    if action in CHAT_ACTIONS or action in OTHER_CHAT_ACTIONS:
        return {"chat_presence", "only_my_chats", "source_type"}
    if action == "routing_status_set":
        return {"agent_ids", "source_type"}
    if action == "customer_session_fields_updated":
        return {"chat_presence", "source_type"}
    return {"source_type"}


@dataclass
class Webhook:
    id: str
    url: str
    action: str
    secret_key: str
    owner_client_id: str
    type: str
    description: str | None = None
    filters: Json = field(default_factory=dict)
    additional_data: list[str] = field(default_factory=list)

    def render(self) -> Json:
        out: Json = {"id": self.id, "url": self.url}
        if self.description is not None:
            out["description"] = self.description
        out.update(action=self.action, filters=copy.deepcopy(self.filters))
        out.update(owner_client_id=self.owner_client_id, type=self.type)
        if self.additional_data:
            out["additional_data"] = list(self.additional_data)
        return out


class WebhookRegistry:
    def __init__(self, world: World) -> None:
        self.world = world
        self.webhooks: dict[str, Webhook] = {}
        self.license_enabled: dict[str, bool] = {}

    def owner(self, requester: Requester, body: Json) -> str:
        """`owner_client_id` is required with a PAT; a Bearer token implies its client."""
        owner = body.get("owner_client_id")
        if owner is None and not requester.via_pat and requester.client_id:
            owner = requester.client_id
        if not isinstance(owner, str) or not owner:
            raise validation("`owner_client_id` is required")
        if owner not in self.world.config.client_ids:
            raise SimError("authorization", "The client does not belong to this organization")
        return owner

    def register(self, requester: Requester, body: Json) -> Webhook:
        action = v.req_str(body, "action")
        if action not in V36_ACTIONS:
            raise validation(f"`action` {action!r} is not a v3.6 webhook action")
        secret_key = v.req_str(body, "secret_key")
        url = v.req_str(body, "url")
        if len(url) > 500 or not url.startswith(("http://", "https://")):
            raise validation("`url` must be an http(s) URL of at most 500 characters")
        kind = v.req_str(body, "type")
        if kind not in ("license", "bot"):
            raise validation("`type` must be `license` or `bot`")
        owner = self.owner(requester, body)
        filters = v.opt_dict(body, "filters")
        self._check_filters(action, filters)
        additional = v.opt_list(body, "additional_data")
        if not all(isinstance(a, str) and a in ADDITIONAL_DATA for a in additional):
            raise validation(
                "`additional_data` items must be chat_properties or chat_presence_user_ids"
            )
        same = [
            w for w in self.webhooks.values() if w.owner_client_id == owner and w.action == action
        ]
        if len(same) >= MAX_PER_ACTION:
            raise SimError("limit_reached", "A Client ID can register up to 3 webhooks per action")
        webhook = Webhook(
            id=self.world.ids.hex32(),
            url=url,
            action=action,
            secret_key=secret_key,
            owner_client_id=owner,
            type=kind,
            description=v.opt_str(body, "description"),
            filters=copy.deepcopy(filters),
            additional_data=list(additional),
        )
        self.webhooks[webhook.id] = webhook
        return webhook

    def _check_filters(self, action: str, filters: Json) -> None:
        unknown = set(filters) - allowed_filters(action)
        if unknown:
            raise validation(f"filters {sorted(unknown)} are not allowed for {action}")
        if "author_type" in filters and filters["author_type"] not in ("customer", "agent"):
            raise validation("`filters.author_type` must be `customer` or `agent`")
        if "only_my_chats" in filters and not isinstance(filters["only_my_chats"], bool):
            raise validation("`filters.only_my_chats` must be a boolean")
        if "source_type" in filters:
            types = filters["source_type"]
            if not isinstance(types, list) or not set(types) <= SOURCE_TYPES:
                raise validation("`filters.source_type` must list my_client, other_clients, system")
        if "agent_ids" in filters:
            ids = filters["agent_ids"]
            if not isinstance(ids, dict) or not ({"values", "exclude_values"} & set(ids)):
                raise validation("`filters.agent_ids` needs `values` or `exclude_values`")
        if "chat_presence" in filters:
            presence = filters["chat_presence"]
            if not isinstance(presence, dict):
                raise validation("`filters.chat_presence` must be an object")
            user_ids = presence.get("user_ids", {})
            if not isinstance(user_ids, dict):
                raise validation("`filters.chat_presence.user_ids` must be an object")

    def unregister(self, requester: Requester, body: Json) -> None:
        webhook_id = v.req_str(body, "id")
        owner = self.owner(requester, body)
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or webhook.owner_client_id != owner:
            raise SimError("not_found", "Webhook not found")
        del self.webhooks[webhook_id]

    def for_owner(self, owner: str) -> list[Json]:
        return [w.render() for w in self.webhooks.values() if w.owner_client_id == owner]

    # --- matching ------------------------------------------------------------------------

    def matching(self, signal: Signal) -> list[Webhook]:
        return [w for w in self.webhooks.values() if self._matches(w, signal)]

    def _matches(self, webhook: Webhook, signal: Signal) -> bool:
        if webhook.action != signal.action:
            return False
        if webhook.type == "license" and not self.license_enabled.get(webhook.owner_client_id):
            return False
        if webhook.type == "bot" and not any(
            a.is_bot and a.owner_client_id == webhook.owner_client_id and a.status != "offline"
            for a in self.world.agents.values()
        ):
            return False
        filters = webhook.filters
        if "author_type" in filters and filters["author_type"] != signal.author_type:
            return False
        if (
            "source_type" in filters
            and self._source_type(webhook, signal) not in filters["source_type"]
        ):
            return False
        if "agent_ids" in filters and not _in_set(signal.agent_id, filters["agent_ids"]):
            return False
        chat = self.world.chats.get(signal.chat_id) if signal.chat_id else None
        if filters.get("only_my_chats"):
            source = chat.properties.get("source", {}) if chat else {}
            if source.get("client_id") != webhook.owner_client_id:
                return False
        if "chat_presence" in filters:
            present = {u.id for u in chat.users.values() if u.present} if chat else set()
            if not self._presence_ok(webhook, filters["chat_presence"], present):
                return False
        return True

    def _source_type(self, webhook: Webhook, signal: Signal) -> str:
        if signal.source is None:
            return "system"
        if signal.source.client_id == webhook.owner_client_id:
            return "my_client"
        return "other_clients"

    def _presence_ok(self, webhook: Webhook, presence: Json, present: set[str]) -> bool:
        user_ids = presence.get("user_ids", {})
        my_bots = {
            a.id
            for a in self.world.agents.values()
            if a.is_bot and a.owner_client_id == webhook.owner_client_id
        }
        bots_hit = bool(presence.get("my_bots")) and bool(my_bots & present)
        if "values" in user_ids:
            return bots_hit or bool(set(user_ids["values"]) & present)
        if "exclude_values" in user_ids:
            return not (set(user_ids["exclude_values"]) & present)
        return bots_hit if presence.get("my_bots") else True

    def additional_data(self, webhook: Webhook, signal: Signal) -> Json:
        chat = self.world.chats.get(signal.chat_id) if signal.chat_id else None
        out: Json = {}
        if chat is not None and "chat_properties" in webhook.additional_data:
            out["chat_properties"] = copy.deepcopy(chat.properties)
        if chat is not None and "chat_presence_user_ids" in webhook.additional_data:
            out["chat_presence_user_ids"] = [u.id for u in chat.users.values() if u.present]
        return out


def _in_set(value: Any, spec: Json) -> bool:
    if "values" in spec:
        return value in spec["values"]
    return value not in spec.get("exclude_values", [])
