"""Identifiers: a type prefix and a time-ordered random body (sortable as text)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (ULID-like, 26 chars)."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def handoff_id() -> str:
    return new_id("ho")


def message_id() -> str:
    return new_id("msg")


def event_id() -> str:
    return new_id("evt")


def outbox_id() -> str:
    return new_id("ob")
