"""Logging: text and JSON lines, uvicorn routed through us, no secret at any level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from livechat_hitl.logs import (
    _redact_patterns,
    clear_secrets,
    configure_logging,
    redact,
    register_secrets,
)

API_KEY = "bot-key-9f8e7d6c5b4a"
PAT = "fra:PatValue-0123456789abcdef"
BASIC = "YWNjb3VudDpmcmE6UGF0VmFsdWU="
WEBHOOK_SECRET = "lc-webhook-Secret-Value-42"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    register_secrets([API_KEY, SecretStr(PAT), None, "", WEBHOOK_SECRET])
    yield out
    clear_secrets()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def assert_clean(text: str) -> None:
    for secret in (API_KEY, PAT, BASIC, WEBHOOK_SECRET, "whsec_", "c2VjcmV0c2VjcmV0"):
        assert secret not in text, text


class Holder:
    """Something whose repr shows a secret, as careless dataclasses do."""

    def __repr__(self) -> str:
        return f"Holder(token={PAT!r}, key={API_KEY})"


def test_no_secret_at_debug_in_message_args_repr_or_exception(stream: io.StringIO) -> None:
    configure_logging("debug", "text", stream=stream)
    log = logging.getLogger("livechat_hitl.test")
    log.debug("key %s and %r", API_KEY, Holder())
    log.debug("headers %s", {"Authorization": f"Basic {BASIC}", "X-Api-Key": API_KEY})
    log.debug('body {"secret_key":"%s","action":"incoming_event"}', WEBHOOK_SECRET)
    log.debug("bot secret whsec_c2VjcmV0c2VjcmV0 in text")
    try:
        raise RuntimeError(f"LiveChat refused token {PAT} / {Holder()!r}")
    except RuntimeError:
        log.exception("call failed for %s", API_KEY)
    try:
        raise ValueError("nested", {"password": WEBHOOK_SECRET})
    except ValueError as exc:
        log.debug("as arg: %s", exc, exc_info=True, stack_info=True)
    log.debug("extra", extra={"token_field": PAT, "nested": {"k": [API_KEY]}})

    text = stream.getvalue()
    assert_clean(text)
    assert text.count("***") >= 9
    assert "RuntimeError" in text  # the traceback is still there, only scrubbed
    assert "action" in text  # the rest of the message is kept


def test_json_format_is_one_object_per_line(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=stream)
    log = logging.getLogger("livechat_hitl.json")
    log.info("started %s", "handoff", extra={"handoff_id": "ho_1", "attempt": 2})
    log.debug("hidden at info")
    try:
        1 / 0
    except ZeroDivisionError:
        log.error("boom with %s", API_KEY, exc_info=True)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "info"
    assert first["logger"] == "livechat_hitl.json"
    assert first["message"] == "started handoff"
    assert first["handoff_id"] == "ho_1"
    assert first["attempt"] == 2
    assert first["ts"].endswith("Z")
    assert second["level"] == "error"
    assert second["message"] == "boom with ***"
    assert "ZeroDivisionError" in second["exc"]


def test_uvicorn_loggers_go_through_the_same_handler(stream: io.StringIO) -> None:
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_access.propagate = False
    configure_logging("info", "json", stream=stream)
    uvicorn_access.info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", f"/v1/events?key={API_KEY}", "1.1", 200
    )
    logging.getLogger("uvicorn.error").warning("Authorization: Bearer %s", API_KEY)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["logger"] for r in records] == ["uvicorn.access", "uvicorn.error"]
    assert uvicorn_access.handlers == []
    assert_clean(stream.getvalue())
    assert "GET /v1/events?key=***" in records[0]["message"]


def _access_line(path: str, status: int, method: str = "POST") -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", method, path, "1.1", status
    )


def test_webhook_deliveries_answered_2xx_are_debug_lines(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=stream)
    _access_line("/livechat/webhooks", 200)
    _access_line("/proxy/livechat/webhooks?x=1", 204)
    _access_line("/livechat/webhooks", 401)
    _access_line("/v1/handoffs", 200)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["message"].split('"')[1]) for r in records] == [
        ("info", "POST /livechat/webhooks HTTP/1.1"),
        ("info", "POST /v1/handoffs HTTP/1.1"),
    ]
    assert records[0]["message"].endswith(" 401")

    configure_logging("debug", "json", stream=stream)  # reconfigured: one filter, debug
    stream.truncate(0)
    stream.seek(0)
    _access_line("/livechat/webhooks", 200)
    [record] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["level"] == "debug"
    assert len(logging.getLogger("uvicorn.access").filters) == 1


def test_reconfiguring_replaces_the_handler(stream: io.StringIO) -> None:
    configure_logging("info", "text", stream=io.StringIO())
    configure_logging("warning", "text", stream=stream)
    log = logging.getLogger("livechat_hitl.again")
    log.info("not shown")
    log.warning("shown once")
    assert stream.getvalue().count("shown once") == 1
    assert "not shown" not in stream.getvalue()
    assert " WARNING " in stream.getvalue()


def test_text_format_shows_extras(stream: io.StringIO) -> None:
    configure_logging("info", "text", stream=stream)
    logging.getLogger("x").info("delivered", extra={"row": "ob_1"})
    assert stream.getvalue().rstrip().endswith("x: delivered row=ob_1")


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("verbose", "text")
    with pytest.raises(ValueError):
        configure_logging("info", "xml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic abc123==", "Authorization: Basic ***"),
        ("'authorization': 'Bearer tok.en-1'", "'authorization': 'Bearer ***'"),
        ('{"secret_key":"s3cr3t","x":1}', '{"secret_key":"***","x":1}'),
        ("secret_key = 's3'", "secret_key = '***'"),
        ("use whsec_QUJDREVG now", "use *** now"),
        ("access_token=abc&x=1", "access_token=***&x=1"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secret_json_escaped_form_is_redacted() -> None:
    odd = 'quote"back\\slash-secret'
    register_secrets([odd])
    try:
        assert redact(json.dumps({"v": odd})) == '{"v": "***"}'
        assert redact(f"raw {odd}") == "raw ***"
    finally:
        clear_secrets()


_KEYS = [
    "Authorization", "'authorization'", "Bearer", "secret_key", "client_secret", "SECRET",
    "password", "passwd", "access_token", "refresh_token", "api_key", "ApiKey", "pat",
    "whsec_", "path", "token", "key", "user", "POST /v1/handoffs",
]  # fmt: skip
_SEPARATORS = [": ", "=", " ", "': '", '":"', ": Basic ", " bearer "]
_VALUES = ["abc123==", "tok.en-1", "QUJDREVG", "x", '"s3"', "200"]
# "key, separator, value" pieces, alone or a few in a line
_LINES = st.lists(
    st.tuples(st.sampled_from(_KEYS), st.sampled_from(_SEPARATORS), st.sampled_from(_VALUES)).map(
        "".join
    ),
    min_size=1,
    max_size=3,
).map(" ".join)


@settings(max_examples=400)
@given(_LINES)
def test_skipping_the_patterns_never_changes_the_result(text: str) -> None:
    # The shortcut (no pattern word in ASCII text) must give what the patterns give.
    assert redact(text) == _redact_patterns(text)


def test_non_ascii_text_always_runs_the_patterns() -> None:
    long_s = "\u017f"  # IGNORECASE matches it to "s"
    assert redact(f"{long_s}ecret=abc") == f"{long_s}ecret=***"
