"""Request field checks that answer LiveChat's `validation` error, never a crash."""

from __future__ import annotations

from typing import Any

from livechat_hitl.livechat.wire import MAX_MESSAGE_TEXT_BYTES

from .errors import validation

Json = dict[str, Any]

RICH_TEMPLATES = {"cards", "sticker", "quick_replies", "ecommerce"}
AGENT_EVENT_TYPES = {
    "message",
    "file",
    "rich_message",
    "system_message",
    "custom",
    "form",
    "filled_form",
}
CUSTOMER_EVENT_TYPES = {"message", "file", "rich_message", "custom", "filled_form"}


def req_str(body: Json, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise validation(f"`{key}` is required")
    return value


def opt_str(body: Json, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation(f"`{key}` must be a string")
    return value


def opt_bool(body: Json, key: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise validation(f"`{key}` must be a boolean")
    return value


def opt_dict(body: Json, key: str) -> Json:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation(f"`{key}` must be an object")
    return value


def opt_list(body: Json, key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation(f"`{key}` must be an array")
    return value


def opt_int(body: Json, key: str, default: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation(f"`{key}` must be an integer")
    return value


def int_list(values: list[Any], key: str) -> list[int]:
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise validation(f"`{key}` must be an array of integers")
    return list(values)


def properties(value: Any, key: str = "properties") -> Json:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise validation(f"`{key}` must be an object of namespaces")
    return value


def event(raw: Any, *, customer: bool) -> Json:
    """Check an event a client sends; returns the fields the server keeps."""
    if not isinstance(raw, dict):
        raise validation("`event` is required")
    kind = raw.get("type")
    allowed = CUSTOMER_EVENT_TYPES if customer else AGENT_EVENT_TYPES
    if kind not in allowed:
        raise validation(f"`event.type` {kind!r} is not supported")
    visibility = raw.get("visibility", "all")
    if visibility not in ("all", "agents"):
        raise validation("`event.visibility` must be `all` or `agents`")
    if raw.get("custom_id") is not None and not isinstance(raw["custom_id"], str):
        raise validation("`event.custom_id` must be a string")
    properties(raw.get("properties"), "event.properties")
    if kind == "message":
        text = raw.get("text")
        if not isinstance(text, str) or not text:
            raise validation("`event.text` is required")
        if len(text.encode()) > MAX_MESSAGE_TEXT_BYTES:
            raise validation("`event.text` is too long")
    elif kind == "file":
        if not isinstance(raw.get("url"), str) or not raw["url"]:
            raise validation("`event.url` is required")
    elif kind == "rich_message":
        if raw.get("template_id") not in RICH_TEMPLATES:
            raise validation("`event.template_id` is invalid")
        elements = raw.get("elements", [])
        if not isinstance(elements, list) or len(elements) > 10:
            raise validation("`event.elements` must be an array of at most 10 elements")
    elif kind == "system_message":
        if not isinstance(raw.get("system_message_type"), str):
            raise validation("`event.system_message_type` is required")
    elif kind in ("form", "filled_form") and (
        not isinstance(raw.get("form_id"), str) or not isinstance(raw.get("fields"), list)
    ):
        raise validation("`event.form_id` and `event.fields` are required")
    kept = {k: v for k, v in raw.items() if k not in ("id", "author_id", "created_at")}
    if customer:
        kept["visibility"] = "all"  # customer events always reach everyone
    else:
        kept["visibility"] = visibility
    return kept
