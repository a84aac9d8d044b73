"""Builders for the events the gateway sends (`send_event`, initial `start_chat` events).

Each returns the JSON object LiveChat expects. Pass `custom_id` (the outbox row id) so a
retry after a crash can be recognised in the chat instead of duplicated.
"""

from __future__ import annotations

from typing import Any, Literal

Visibility = Literal["all", "agents"]


def _event(
    event_type: str, custom_id: str | None, visibility: Visibility | None, **fields: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": event_type}
    event.update({name: value for name, value in fields.items() if value is not None})
    if custom_id is not None:
        event["custom_id"] = custom_id
    if visibility is not None:
        event["visibility"] = visibility
    return event


def message_event(
    text: str, *, custom_id: str | None = None, visibility: Visibility | None = "all"
) -> dict[str, Any]:
    """A `message` event (text ≤ 16 KB)."""
    return _event("message", custom_id, visibility, text=text)


def file_event(
    url: str,
    *,
    alternative_text: str | None = None,
    custom_id: str | None = None,
    visibility: Visibility | None = "all",
) -> dict[str, Any]:
    """A `file` event; `url` must come from `upload_file`."""
    return _event("file", custom_id, visibility, url=url, alternative_text=alternative_text)


def system_message_event(
    text: str,
    *,
    system_message_type: str = "custom",
    custom_id: str | None = None,
    visibility: Visibility | None = "agents",
) -> dict[str, Any]:
    """A `system_message` event, agents-only by default (transcript lines, notes)."""
    return _event(
        "system_message", custom_id, visibility, text=text, system_message_type=system_message_type
    )


def custom_event(
    content: Any, *, custom_id: str | None = None, visibility: Visibility | None = "agents"
) -> dict[str, Any]:
    """A `custom` event carrying any JSON `content`."""
    return _event("custom", custom_id, visibility, content=content)
