"""Identifiers: a type prefix and a time-ordered random body (sortable as text)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# Two digits per 10 bits: 13 lookups for a body (a loop over the 26 digits took ~4 µs).
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))


def body(millis: int, random: int) -> str:
    """10 digits of `millis` (mod 2**50) then 16 of `random` (mod 2**80): the 26 base-32
    digits of the 130-bit number they make, most significant first."""
    number = (millis % (1 << 50)) << 80 | random % (1 << 80)
    return "".join([_PAIRS[(number >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 random chars (ULID-like, 26 chars)."""
    return f"{prefix}_{body(time.time_ns() // 1_000_000, secrets.randbits(80))}"


def handoff_id() -> str:
    return new_id("ho")


def message_id() -> str:
    return new_id("msg")


def event_id() -> str:
    return new_id("evt")


def outbox_id() -> str:
    return new_id("ob")
