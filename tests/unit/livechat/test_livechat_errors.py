"""LiveChat error answers map to typed, correctly retryable exceptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from livechat_hitl.livechat import errors as e
from livechat_hitl.livechat.errors import error_from_response, parse_retry_after

# (error.type, status LiveChat might use, class, retryable)
TABLE = [
    ("authentication", 401, e.AuthenticationError, False),
    ("authorization", 403, e.AuthorizationError, False),
    ("missing_access", 403, e.MissingAccessError, False),
    ("validation", 400, e.InvalidRequestError, False),
    ("not_found", 404, e.NotFoundError, False),
    ("license_not_found", 404, e.LicenseNotFoundError, False),
    ("chat_inactive", 409, e.ChatInactiveError, False),
    ("entity_too_large", 413, e.EntityTooLargeError, False),
    ("too_many_requests", 429, e.TooManyRequestsError, True),
    ("misdirected_request", 421, e.MisdirectedRequestError, True),
    ("internal", 500, e.InternalError, True),
    ("service_unavailable", 503, e.ServiceUnavailableError, True),
    ("request_timeout", 504, e.RequestTimeoutError, True),
    ("pending_requests_limit_reached", 429, e.PendingRequestsLimitError, True),
    ("users_limit_reached", 400, e.UsersLimitReachedError, False),
    ("groups_offline", 400, e.GroupsOfflineError, False),
    ("group_offline", 400, e.GroupsOfflineError, False),
    ("group_not_found", 404, e.GroupNotFoundError, False),
    ("license_expired", 402, e.LicenseExpiredError, False),
    ("not_allowed", 403, e.NotAllowedError, False),
    ("already_exists", 409, e.AlreadyExistsError, False),
    ("limit_reached", 400, e.LimitReachedError, False),
    ("agent_offline", 400, e.AgentOfflineError, False),
    ("customer_banned", 403, e.CustomerBannedError, False),
    ("unsupported_version", 400, e.UnsupportedVersionError, False),
    ("wrong_product_version", 400, e.UnsupportedVersionError, False),
    ("requester_suspended", 403, e.RequesterUnavailableError, False),
    ("chat_anonymized", 400, e.ChatAnonymizedError, False),
]


def _body(error_type: str, message: str = "msg", data: object = None) -> bytes:
    error: dict[str, object] = {"type": error_type, "message": message}
    if data is not None:
        error["data"] = data
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(("error_type", "status", "cls", "retryable"), TABLE)
def test_each_error_type_maps_to_its_class(error_type, status, cls, retryable):
    error = error_from_response(status, _body(error_type, "Something"), {})
    assert type(error) is cls
    assert error.type == error_type
    assert error.message == "Something"
    assert error.status_code == status
    assert error.retryable is retryable
    assert cls.retryable is retryable  # a property of the class, not of the instance


def test_the_type_wins_over_the_status():
    """LiveChat's HTTP statuses are undocumented: branch on error.type, never on status."""
    error = error_from_response(500, _body("validation"), {})
    assert isinstance(error, e.InvalidRequestError)
    assert not error.retryable


def test_unknown_type_keeps_its_type_on_the_base_class():
    error = error_from_response(400, _body("brand_new_refusal", "nope", {"x": 1}), {})
    assert type(error) is e.LiveChatError
    assert error.type == "brand_new_refusal"
    assert error.data == {"x": 1}
    assert not error.retryable


def test_unknown_type_on_a_5xx_is_retryable_but_keeps_its_type():
    error = error_from_response(502, _body("brand_new_outage"), {})
    assert error.type == "brand_new_outage"
    assert error.retryable


def test_misdirected_request_exposes_the_region():
    error = error_from_response(
        421, _body("misdirected_request", "Wrong region", {"region": "dal"}), {}
    )
    assert isinstance(error, e.MisdirectedRequestError)
    assert error.region == "dal"
    assert error_from_response(421, _body("misdirected_request"), {}).region is None


def test_retry_after_in_seconds():
    error = error_from_response(429, _body("too_many_requests"), {"Retry-After": "7"})
    assert error.retry_after == 7.0


def test_retry_after_as_http_date():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    error = error_from_response(503, _body("service_unavailable"), {"retry-after": later}, now=now)
    assert error.retry_after == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None)],
)
def test_parse_retry_after_values(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_date_in_the_past_is_zero():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    past = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("status", [500, 502, 599])
def test_non_json_5xx_is_internal_and_retryable(status):
    error = error_from_response(status, b"<html>Bad Gateway</html>", {})
    assert isinstance(error, e.InternalError)
    assert error.type == "internal"
    assert error.retryable
    assert "Bad Gateway" in error.message


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, e.InvalidRequestError, False),
        (422, e.InvalidRequestError, False),
        (401, e.AuthenticationError, False),
        (404, e.NotFoundError, False),
        (413, e.EntityTooLargeError, False),
        (429, e.TooManyRequestsError, True),
        (503, e.ServiceUnavailableError, True),
    ],
)
def test_non_json_bodies_fall_back_on_the_status(status, cls, retryable):
    error = error_from_response(status, "plain text", {})
    assert type(error) is cls
    assert error.retryable is retryable


def test_json_without_an_error_object_falls_back_too():
    error = error_from_response(400, b'{"message": "odd"}', {})
    assert isinstance(error, e.InvalidRequestError)
    assert error.type == "validation"


def test_accounts_oauth_refusal():
    body = json.dumps({"oauth_exception": "invalid_grant", "exception_description": "bad"})
    error = error_from_response(401, body, {})
    assert isinstance(error, e.AccountsError)
    assert (error.type, error.message, error.retryable) == ("invalid_grant", "bad", False)


def test_transport_error_is_retryable():
    error = e.LiveChatTransportError("timeout")
    assert isinstance(error, e.LiveChatError)
    assert error.retryable
    assert error.status_code is None


def test_class_lookup_by_type():
    assert e.error_class_for("chat_inactive") is e.ChatInactiveError
    assert e.error_class_for("nope") is e.LiveChatError
