"""LiveChat's error envelope: `{"error": {"type", "message", "data"?}}`."""

from __future__ import annotations

from typing import Any

# Documented messages (docs constants ERRORS); validation messages vary per call.
DEFAULT_MESSAGES: dict[str, str] = {
    "authentication": "Invalid access token",
    "authorization": "Authorization error",
    "chat_inactive": "Chat is inactive",
    "entity_too_large": "Upload limit exceeded (10MB).",
    "internal": "Internal server error",
    "limit_reached": "Limit reached",
    "misdirected_request": "Wrong region",
    "missing_access": "Missing access",
    "not_found": "Not found",
    "request_timeout": "Request timed out",
    "service_unavailable": "Service unavailable",
    "too_many_requests": "Too many requests",
    "unsupported_version": "Cannot call unsupported API versions.",
    "validation": "Wrong format of request",
    "users_limit_reached": "Users limit reached",
    "groups_offline": "Groups offline",
    "group_not_found": "Group not found",
}


class SimError(Exception):
    """An error LiveChat would answer with; `type` is the wire `error.type`."""

    def __init__(
        self,
        type_: str,
        message: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.type = str(type_)
        self.message = message or DEFAULT_MESSAGES.get(self.type, self.type)
        self.data = data
        self.headers = headers or {}
        super().__init__(f"{self.type}: {self.message}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"error": error}


def validation(message: str) -> SimError:
    return SimError("validation", message)


def not_found(message: str = "Not found") -> SimError:
    return SimError("not_found", message)


class OAuthError(Exception):
    """Accounts API errors: `{"oauth_exception", "exception_description"}`."""

    def __init__(self, status: int, exception: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.exception = exception
        self.description = description

    def body(self) -> dict[str, str]:
        return {"oauth_exception": self.exception, "exception_description": self.description}
