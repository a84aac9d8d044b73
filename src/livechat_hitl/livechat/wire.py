"""LiveChat wire constants shared by the client and the simulator.

This module is the only part of the product the simulator may import: it holds facts
about LiveChat's protocol (API version, error types, webhook actions, formats), never
gateway behaviour. Source: reference/LIVECHAT-API.md (digest of the v3.6 docs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

API_VERSION = "3.6"
"""The LiveChat API version the product speaks, pinned in one place."""

MAX_MESSAGE_TEXT_BYTES = 16 * 1024
"""A `message` event's `text` may hold at most 16 KB."""

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""`upload_file` refuses files over 10 MB."""

CUSTOMER_TOKEN_TTL_SECONDS = 28800
"""Customer access tokens from the accounts API live 8 h."""


class ErrorType(StrEnum):
    """`error.type` values LiveChat documents for its Web APIs."""

    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    CHAT_INACTIVE = "chat_inactive"
    ENTITY_TOO_LARGE = "entity_too_large"
    GROUPS_OFFLINE = "groups_offline"
    GROUP_NOT_FOUND = "group_not_found"
    INTERNAL = "internal"
    LICENSE_EXPIRED = "license_expired"
    MISDIRECTED_REQUEST = "misdirected_request"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    PENDING_REQUESTS_LIMIT_REACHED = "pending_requests_limit_reached"
    REQUEST_TIMEOUT = "request_timeout"
    SERVICE_UNAVAILABLE = "service_unavailable"
    TOO_MANY_REQUESTS = "too_many_requests"
    UNSUPPORTED_VERSION = "unsupported_version"
    USERS_LIMIT_REACHED = "users_limit_reached"
    VALIDATION = "validation"
    WRONG_PRODUCT_VERSION = "wrong_product_version"
    CUSTOMER_BANNED = "customer_banned"


class WebhookAction(StrEnum):
    """Webhook actions (v3.6) the product and the simulator know about."""

    INCOMING_CHAT = "incoming_chat"
    INCOMING_EVENT = "incoming_event"
    CHAT_DEACTIVATED = "chat_deactivated"
    CHAT_TRANSFERRED = "chat_transferred"
    CHAT_ACCESS_UPDATED = "chat_access_updated"
    USER_ADDED_TO_CHAT = "user_added_to_chat"
    USER_REMOVED_FROM_CHAT = "user_removed_from_chat"
    INCOMING_RICH_MESSAGE_POSTBACK = "incoming_rich_message_postback"
    EVENTS_MARKED_AS_SEEN = "events_marked_as_seen"
    ROUTING_STATUS_SET = "routing_status_set"
    THREAD_TAGGED = "thread_tagged"
    THREAD_UNTAGGED = "thread_untagged"
    CHAT_PROPERTIES_UPDATED = "chat_properties_updated"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`, as LiveChat writes `created_at`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse LiveChat's RFC 3339 timestamps (with or without fraction, `Z` or offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def region_of(token: str) -> str | None:
    """The region prefix of a LiveChat token (`fra:…` → `fra`), if it has one."""
    head, sep, _ = token.partition(":")
    if sep and head and head.replace("-", "").isalpha() and len(head) <= 8:
        return head
    return None
