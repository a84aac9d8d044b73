"""Logging: stdlib `logging`, text or JSON lines, and secrets redacted at the handler.

`configure_logging` installs ONE handler on the root logger and routes uvicorn's loggers
through it (run uvicorn with `log_config=None` so it keeps them). A redaction filter on
that handler rewrites every record before it is formatted: configured secret values
(`register_secrets`) and well-known credential shapes become `***`, in the message, its
arguments, extra fields, the exception text and the stack.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import SecretStr

REDACTED = "***"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers, in any rendering (`Authorization: Basic …`, dict reprs)
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer)\s+)[^\s'\",;]+"),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}"), rf"\g<1>{REDACTED}"),
    # JSON-ish or form-ish key/value pairs whose key names a secret
    (
        re.compile(
            r"(?i)([\"']?\b(?:secret_key|secret|client_secret|password|passwd|access_token|"
            r"refresh_token|api_key|apikey|pat)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;&}]+"
        ),
        rf"\g<1>{REDACTED}",
    ),
    # Standard Webhooks secrets
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]*"), REDACTED),
)


class _SecretRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str | SecretStr | None]) -> None:
        with self._lock:
            for value in values:
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                if text:
                    self._values.add(text)
                    # JSON-escaped form, as it would appear inside a logged body
                    self._values.add(json.dumps(text)[1:-1])
            ordered = sorted(self._values, key=len, reverse=True)  # longest wins
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text


_registry = _SecretRegistry()


def register_secrets(values: Iterable[str | SecretStr | None]) -> None:
    """Add secret values that must never appear in a log line (empty ones are ignored)."""
    _registry.add(values)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _registry.clear()


# Every pattern above needs one of these words (case-insensitive). ASCII text without
# any of them skips the patterns: most lines (every access log line) have none, and the
# patterns cost ~10 µs a line. Other text always runs them (IGNORECASE matches some
# non-ASCII letters to ASCII ones, e.g. U+017F, the long s, to "s").
_PATTERN_WORDS = ("authorization", "bearer", "secret", "passw", "_token", "api", "pat", "whsec_")


def redact(text: str) -> str:
    """`text` with registered secrets and credential-looking fragments replaced by `***`."""
    text = _registry.redact(text)
    if text.isascii():
        lowered = text.lower()
        if not any(word in lowered for word in _PATTERN_WORDS):
            return text
    return _redact_patterns(text)


def _redact_patterns(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return redact(str(value))


class RedactionFilter(logging.Filter):
    """Rewrites a record in place so that no formatter can render a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide what was logged
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key in set(vars(record)) - _RECORD_FIELDS:
            setattr(record, key, _redact_value(getattr(record, key)))
        return True


# Extras other libraries attach that are no use in a log line (uvicorn's ANSI copy).
_DROPPED_EXTRAS = frozenset({"color_message"})
# Libraries whose debug output carries query parameters or wire bytes (customer tokens,
# cookies): kept at WARNING whatever the level, so debug logging leaks nothing.
_QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "sqlalchemy", "httpcore", "hpack")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(record).items()
        if k not in _RECORD_FIELDS and k not in _DROPPED_EXTRAS
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2025-01-01T12:00:00.000Z INFO    logger: message key=value …` for humans."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record)
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        return text


# uvicorn's access lines of these paths answered 2xx are DEBUG lines: LiveChat's webhook
# deliveries arrive by the hundred a second on a busy day, the lines say nothing that
# `hitl_livechat_webhook_ingest_seconds` does not count, and writing them cost ~5 % of
# the gateway's CPU at its limit (bench/). Their other answers stay INFO lines.
QUIET_ACCESS_PATHS = ("/livechat/webhooks",)


class _QuietAccessLines(logging.Filter):
    """On `uvicorn.access`: a 2xx answer on a `QUIET_ACCESS_PATHS` path is a DEBUG line
    (dropped here, before any formatting, unless the level is debug)."""

    def __init__(self, *, debug: bool) -> None:
        super().__init__()
        self._debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access line: (client, method, path with query, HTTP version, status)
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = args[2], args[4]
        if not isinstance(status, int) or not 200 <= status < 300 or not isinstance(path, str):
            return True
        if path.partition("?")[0].endswith(QUIET_ACCESS_PATHS):
            if not self._debug:
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class _GatewayHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler `configure_logging` owns, so reconfiguring replaces it."""


def configure_logging(
    level: str = "info", fmt: str = "text", *, stream: IO[str] | None = None
) -> None:
    """Route all logging (ours, uvicorn's, libraries') through one redacting handler.

    `level` is `debug`, `info`, `warning` or `error`; `fmt` is `text` or `json`.
    Calling it again replaces the previous configuration.
    """
    level_name = str(level).lower()
    if level_name not in _LEVELS:
        raise ValueError(f"unknown log level {level_name!r}")
    format_name = str(fmt).lower()
    if format_name not in ("text", "json"):
        raise ValueError(f"unknown log format {format_name!r}")

    handler = _GatewayHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if format_name == "json" else TextFormatter())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_LEVELS[level_name])

    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    for old_filter in [f for f in access.filters if isinstance(f, _QuietAccessLines)]:
        access.removeFilter(old_filter)
    access.addFilter(_QuietAccessLines(debug=level_name == "debug"))
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(_LEVELS[level_name], logging.WARNING))
    # httpx logs every request at INFO; the gateway logs what matters itself
    logging.getLogger("httpx").setLevel(logging.DEBUG if level_name == "debug" else logging.WARNING)
