"""Errors raised by the LiveChat client, keyed by LiveChat's `error.type`.

    LiveChatError                      any failure of a LiveChat call (`type`, `message`, `data`)
    ├── LiveChatTransportError         no HTTP answer: timeout, connection refused, … (retryable)
    ├── AuthenticationError            authentication
    ├── AuthorizationError             authorization
    │   └── MissingAccessError         missing_access
    ├── InvalidRequestError            validation
    ├── NotFoundError                  not_found
    │   └── LicenseNotFoundError       license_not_found
    ├── ChatInactiveError              chat_inactive
    ├── EntityTooLargeError            entity_too_large
    ├── TooManyRequestsError           too_many_requests (retryable)
    ├── MisdirectedRequestError        misdirected_request (retryable, `.region`)
    ├── InternalError                  internal (retryable)
    ├── ServiceUnavailableError        service_unavailable (retryable)
    ├── RequestTimeoutError            request_timeout (retryable)
    ├── PendingRequestsLimitError      pending_requests_limit_reached (retryable)
    ├── UsersLimitReachedError         users_limit_reached
    ├── GroupsOfflineError             groups_offline, group_offline, group_unavailable
    ├── GroupNotFoundError             group_not_found
    ├── LicenseExpiredError            license_expired
    ├── NotAllowedError                not_allowed
    ├── AlreadyExistsError             already_exists
    ├── LimitReachedError              limit_reached, seats_limit_exceeded
    ├── AgentOfflineError              agent_offline
    ├── CustomerBannedError            customer_banned
    ├── UnsupportedVersionError        unsupported_version, wrong_product_version
    ├── RequesterUnavailableError      requester_suspended, requester_awaiting_approval
    ├── ChatAnonymizedError            chat_anonymized
    └── AccountsError                  an accounts (OAuth) refusal: `type` is `oauth_exception`

    CredentialsError (ValueError)      credentials unusable for the requested call; raised
                                       locally, before anything is sent

`retryable` is a property of the class: callers branch on it (and on `retry_after`), never on
the HTTP status. An `error.type` this module does not know keeps its type on the base class
(permanent), unless the status says the server is overloaded or broken (429, 5xx).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

from livechat_hitl.livechat.wire import ErrorType

_MAX_MESSAGE_CHARS = 300


class LiveChatError(Exception):
    """A LiveChat call failed; `type` is LiveChat's `error.type`."""

    retryable: ClassVar[bool] = False
    """Whether repeating the same call later can succeed."""

    def __init__(
        self,
        type: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{type}: {message}" if message else type)
        self.type = type
        self.message = message
        self.data: dict[str, Any] = dict(data or {})
        self.status_code = status_code
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(type={self.type!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, retry_after={self.retry_after!r})"
        )


_E = TypeVar("_E", bound=type[LiveChatError])
_BY_TYPE: dict[str, type[LiveChatError]] = {}


def _keyed_by(*error_types: str) -> Callable[[_E], _E]:
    def register(cls: _E) -> _E:
        for error_type in error_types:
            _BY_TYPE[error_type] = cls
        return cls

    return register


def error_class_for(error_type: str) -> type[LiveChatError]:
    """The exception class LiveChat's `error.type` maps to (the base for unknown types)."""
    return _BY_TYPE.get(error_type, LiveChatError)


class LiveChatTransportError(LiveChatError):
    """No HTTP answer from LiveChat (timeout, connection failure); safe to retry."""

    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__("transport", message)


@_keyed_by(ErrorType.AUTHENTICATION)
class AuthenticationError(LiveChatError):
    """The token is missing, malformed, expired or revoked."""


@_keyed_by(ErrorType.AUTHORIZATION)
class AuthorizationError(LiveChatError):
    """The token is valid but lacks the scope or role for this call."""


@_keyed_by("missing_access")
class MissingAccessError(AuthorizationError):
    """The requester has no access to the chat or group."""


@_keyed_by(ErrorType.VALIDATION)
class InvalidRequestError(LiveChatError):
    """LiveChat refused the request as malformed (`validation`)."""


@_keyed_by(ErrorType.NOT_FOUND)
class NotFoundError(LiveChatError):
    """The chat, thread, customer or other resource does not exist."""


@_keyed_by("license_not_found")
class LicenseNotFoundError(NotFoundError):
    """The license does not exist."""


@_keyed_by(ErrorType.CHAT_INACTIVE)
class ChatInactiveError(LiveChatError):
    """The call needs an active thread and the chat has none."""


@_keyed_by(ErrorType.ENTITY_TOO_LARGE)
class EntityTooLargeError(LiveChatError):
    """The upload exceeds LiveChat's limit (10 MB)."""


@_keyed_by(ErrorType.TOO_MANY_REQUESTS)
class TooManyRequestsError(LiveChatError):
    """Rate limited; `retry_after` says when to come back, if LiveChat said."""

    retryable = True


@_keyed_by(ErrorType.MISDIRECTED_REQUEST)
class MisdirectedRequestError(LiveChatError):
    """The request went to the wrong region; `region` names the right one, if given."""

    retryable = True

    @property
    def region(self) -> str | None:
        region = self.data.get("region")
        return region if isinstance(region, str) and region else None


@_keyed_by(ErrorType.INTERNAL)
class InternalError(LiveChatError):
    """LiveChat failed internally."""

    retryable = True


@_keyed_by(ErrorType.SERVICE_UNAVAILABLE)
class ServiceUnavailableError(LiveChatError):
    """LiveChat is temporarily unavailable."""

    retryable = True


@_keyed_by(ErrorType.REQUEST_TIMEOUT)
class RequestTimeoutError(LiveChatError):
    """LiveChat gave up on the request (its 15 s threshold)."""

    retryable = True


@_keyed_by(ErrorType.PENDING_REQUESTS_LIMIT_REACHED)
class PendingRequestsLimitError(LiveChatError):
    """Too many requests in flight at once."""

    retryable = True


@_keyed_by(ErrorType.USERS_LIMIT_REACHED)
class UsersLimitReachedError(LiveChatError):
    """The chat already holds as many users of that kind as allowed."""


@_keyed_by(ErrorType.GROUPS_OFFLINE, "group_offline", "group_unavailable")
class GroupsOfflineError(LiveChatError):
    """No group among the targets can take the chat now."""


@_keyed_by(ErrorType.GROUP_NOT_FOUND)
class GroupNotFoundError(LiveChatError):
    """The group does not exist."""


@_keyed_by(ErrorType.LICENSE_EXPIRED)
class LicenseExpiredError(LiveChatError):
    """The LiveChat license has expired."""


@_keyed_by(ErrorType.NOT_ALLOWED)
class NotAllowedError(LiveChatError):
    """The action is not allowed in the current state."""


@_keyed_by("already_exists")
class AlreadyExistsError(LiveChatError):
    """The resource already exists."""


@_keyed_by("limit_reached", "seats_limit_exceeded")
class LimitReachedError(LiveChatError):
    """A license or account limit is reached (webhooks per action, seats, …)."""


@_keyed_by("agent_offline")
class AgentOfflineError(LiveChatError):
    """The agent is offline."""


@_keyed_by(ErrorType.CUSTOMER_BANNED)
class CustomerBannedError(LiveChatError):
    """The customer is banned."""


@_keyed_by(ErrorType.UNSUPPORTED_VERSION, ErrorType.WRONG_PRODUCT_VERSION)
class UnsupportedVersionError(LiveChatError):
    """LiveChat does not serve this API or product version."""


@_keyed_by("requester_suspended", "requester_awaiting_approval")
class RequesterUnavailableError(LiveChatError):
    """The requesting account is suspended or awaiting approval."""


@_keyed_by("chat_anonymized")
class ChatAnonymizedError(LiveChatError):
    """The chat was anonymized and can no longer be used."""


class AccountsError(LiveChatError):
    """The accounts API refused a token grant (`type` is its `oauth_exception`)."""


class CredentialsError(ValueError):
    """The configured credentials cannot be used for this call (checked before sending)."""


_FALLBACK_BY_STATUS: dict[int, type[LiveChatError]] = {
    401: AuthenticationError,
    403: AuthorizationError,
    404: NotFoundError,
    408: RequestTimeoutError,
    413: EntityTooLargeError,
    421: MisdirectedRequestError,
    429: TooManyRequestsError,
    503: ServiceUnavailableError,
    504: RequestTimeoutError,
}
_TYPE_OF_CLASS: dict[type[LiveChatError], str] = {
    cls: error_type for error_type, cls in reversed(list(_BY_TYPE.items()))
}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def error_from_response(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> LiveChatError:
    """The exception for a non-2xx LiveChat answer.

    Reads `{"error": {"type", "message", "data"}}` (Web APIs) or
    `{"oauth_exception", "exception_description"}` (accounts API). Bodies that are neither fall
    back on the status: 5xx → `internal` (retryable), 429 → `too_many_requests`, 401/403/404/413
    → their types, any other 4xx → `validation` (permanent).
    """
    retry_after = parse_retry_after(_header(headers, "retry-after"), now=now)
    document = _json_object(body)
    error = document.get("error") if document is not None else None
    if isinstance(error, Mapping) and isinstance(error.get("type"), str):
        error_type = str(error["type"])
        message = error.get("message")
        data = error.get("data")
        cls = _BY_TYPE.get(error_type) or _class_for_unknown_type(status)
        return cls(
            error_type,
            message if isinstance(message, str) else "",
            data if isinstance(data, Mapping) else None,
            status,
            retry_after,
        )
    if document is not None and isinstance(document.get("oauth_exception"), str):
        description = document.get("exception_description")
        oauth_cls = AccountsError if status < 500 else _class_for_unknown_type(status)
        return oauth_cls(
            str(document["oauth_exception"]),
            description if isinstance(description, str) else "",
            None,
            status,
            retry_after,
        )
    cls = _fallback_class(status)
    return cls(
        str(_TYPE_OF_CLASS.get(cls, ErrorType.INTERNAL)),
        _snippet(body) or f"HTTP {status}",
        None,
        status,
        retry_after,
    )


def _class_for_unknown_type(status: int) -> type[LiveChatError]:
    if status == 429:
        return TooManyRequestsError
    if status >= 500:
        return _FALLBACK_BY_STATUS.get(status, InternalError)
    return LiveChatError


def _fallback_class(status: int) -> type[LiveChatError]:
    if status in _FALLBACK_BY_STATUS:
        return _FALLBACK_BY_STATUS[status]
    if status >= 500:
        return InternalError
    return InvalidRequestError


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _json_object(body: bytes | str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _snippet(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text[:_MAX_MESSAGE_CHARS]
