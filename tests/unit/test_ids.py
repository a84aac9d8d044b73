"""Identifiers: their shape, their order, and the digits of the encoding."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from livechat_hitl import ids

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def digits(number: int, width: int) -> str:
    """The reference: `width` base-32 digits of `number`, most significant first."""
    out = []
    for _ in range(width):
        number, rem = divmod(number, 32)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


@given(st.integers(0, 2**50 - 1), st.integers(0, 2**80 - 1))
def test_body_is_ten_digits_of_time_then_sixteen_of_randomness(millis: int, random: int) -> None:
    assert ids.body(millis, random) == digits(millis, 10) + digits(random, 16)


@given(st.integers(0, 2**50 - 2), st.integers(0, 2**80 - 1), st.integers(0, 2**80 - 1))
def test_a_later_millisecond_sorts_after_whatever_the_randomness(
    millis: int, first: int, second: int
) -> None:
    assert ids.body(millis, first) < ids.body(millis + 1, second)


def test_new_ids_have_the_prefix_and_26_crockford_digits_and_differ() -> None:
    made = [ids.outbox_id() for _ in range(1000)]
    assert all(re.fullmatch(r"ob_[0-9a-hjkmnp-tv-z]{26}", i) for i in made)
    assert len(set(made)) == len(made)
    assert ids.handoff_id().startswith("ho_")
    assert ids.message_id().startswith("msg_")
    assert ids.event_id().startswith("evt_")
