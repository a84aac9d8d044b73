"""The retry policy is pure: properties over attempts, clocks and Retry-After."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from livechat_hitl.domain.models import OutboxRow, OutboxStatus, OutboxTarget
from livechat_hitl.outbox.retry import (
    RETRY_AFTER_CAP,
    RetryPolicy,
    backoff_seconds,
    next_attempt_at,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
attempts = st.integers(min_value=1, max_value=10_000)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(attempts, fractions)
def test_backoff_stays_between_half_and_full_capped_delay(attempt: int, jitter: float) -> None:
    delay = backoff_seconds(attempt, base=1.0, cap=300.0, jitter=lambda: jitter)
    full = min(300.0, 2.0 ** (min(attempt, 63) - 1))
    assert full / 2 <= delay <= full
    assert delay <= 300.0


@given(attempts, fractions)
def test_backoff_never_shrinks_as_attempts_grow(attempt: int, jitter: float) -> None:
    def at(n: int) -> float:
        return backoff_seconds(n, jitter=lambda: jitter)

    assert at(attempt) <= at(attempt + 1)


def test_backoff_doubles_until_the_cap() -> None:
    full = [backoff_seconds(n, base=1.0, cap=30.0, jitter=lambda: 1.0) for n in range(1, 8)]
    assert full == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    half = [backoff_seconds(n, base=1.0, cap=30.0, jitter=lambda: 0.0) for n in range(1, 4)]
    assert half == [0.5, 1.0, 2.0]


def test_jitter_out_of_range_is_clamped() -> None:
    assert backoff_seconds(3, jitter=lambda: 7.0) == 4.0
    assert backoff_seconds(3, jitter=lambda: -1.0) == 2.0


@given(attempts, st.floats(allow_nan=True, allow_infinity=True) | st.none(), fractions)
def test_next_attempt_is_never_in_the_past(
    attempt: int, retry_after: float | None, jitter: float
) -> None:
    at = next_attempt_at(attempt, NOW, retry_after, jitter=lambda: jitter)
    assert NOW <= at <= NOW + timedelta(seconds=max(300.0, RETRY_AFTER_CAP))


@given(attempts, st.floats(min_value=0, max_value=RETRY_AFTER_CAP))
def test_retry_after_wins(attempt: int, retry_after: float) -> None:
    at = next_attempt_at(attempt, NOW, retry_after, jitter=lambda: 0.5)
    assert at == NOW + timedelta(seconds=retry_after)


def test_retry_after_is_bounded() -> None:
    assert next_attempt_at(1, NOW, 10 * 86400.0) == NOW + timedelta(seconds=RETRY_AFTER_CAP)
    assert next_attempt_at(1, NOW, -5.0) == NOW
    assert next_attempt_at(1, NOW, 30.0, retry_after_cap=10.0) == NOW + timedelta(seconds=10)


def _row(
    attempts: int, age: timedelta, target: OutboxTarget = OutboxTarget.BOT_WEBHOOK
) -> OutboxRow:
    return OutboxRow(
        id="ob",
        seq=1,
        handoff_id="h",
        target=target,
        kind="event",
        payload={},
        status=OutboxStatus.PENDING,
        attempts=attempts,
        next_attempt_at=NOW,
        created_at=NOW - age,
    )


def test_policy_gives_up_after_max_age_and_enough_attempts() -> None:
    policy = RetryPolicy(min_attempts=3)
    assert policy.max_age == timedelta(hours=24)
    assert not policy.gives_up(_row(50, timedelta(hours=23, minutes=59)), NOW)
    assert policy.gives_up(_row(2, timedelta(hours=24)), NOW)  # this failure is the 3rd
    # old but barely tried (it waited behind an earlier row, or was replayed): keep going
    assert not policy.gives_up(_row(0, timedelta(days=3)), NOW)
    assert not policy.gives_up(_row(1, timedelta(days=3)), NOW)


def test_policy_max_age_per_target() -> None:
    policy = RetryPolicy(
        min_attempts=1, max_age_by_target={OutboxTarget.LIVECHAT: timedelta(hours=1)}
    )
    assert policy.gives_up(_row(0, timedelta(hours=2), OutboxTarget.LIVECHAT), NOW)
    assert not policy.gives_up(_row(0, timedelta(hours=2), OutboxTarget.BOT_WEBHOOK), NOW)


@given(attempts, fractions)
def test_policy_uses_its_parameters(attempt: int, jitter: float) -> None:
    policy = RetryPolicy(base=0.5, cap=10.0, jitter=lambda: jitter)
    expected = next_attempt_at(attempt, NOW, None, base=0.5, cap=10.0, jitter=lambda: jitter)
    assert policy.next_attempt_at(attempt, NOW, None) == expected
    assert replace(policy, cap=1.0).next_attempt_at(attempt, NOW, None) <= NOW + timedelta(
        seconds=1
    )
