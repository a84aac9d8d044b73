"""When to try an outbox row again, and when to give up. Pure: no I/O, no clock."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from livechat_hitl.domain.models import OutboxRow, OutboxTarget

Jitter = Callable[[], float]  # a number in [0, 1)

DEFAULT_BASE = 1.0
DEFAULT_CAP = 300.0
# A Retry-After beyond this is treated as this: a peer asking for days would otherwise
# park the row past its max age without another try.
RETRY_AFTER_CAP = 3600.0
MAX_EXPONENT = 62


def backoff_seconds(
    attempt: int,
    *,
    base: float = DEFAULT_BASE,
    cap: float = DEFAULT_CAP,
    jitter: Jitter = random.random,
) -> float:
    """Delay after the `attempt`-th failure (1-based): base·2^(attempt-1), capped at
    `cap`, then "equal jitter": uniformly in [delay/2, delay]."""
    exponent = min(max(attempt, 1) - 1, MAX_EXPONENT)
    delay = min(cap, base * 2.0**exponent)
    fraction = min(max(jitter(), 0.0), 1.0)
    return delay / 2 + delay / 2 * fraction


def next_attempt_at(
    attempt: int,
    now: datetime,
    retry_after: float | None,
    *,
    base: float = DEFAULT_BASE,
    cap: float = DEFAULT_CAP,
    retry_after_cap: float = RETRY_AFTER_CAP,
    jitter: Jitter = random.random,
) -> datetime:
    """When to try again after the `attempt`-th failure. A peer's Retry-After wins
    (bounded to [0, retry_after_cap]); otherwise exponential backoff with jitter."""
    if retry_after is not None and retry_after == retry_after:  # not NaN
        delay = min(max(retry_after, 0.0), retry_after_cap)
    else:
        delay = backoff_seconds(attempt, base=base, cap=cap, jitter=jitter)
    return now + timedelta(seconds=delay)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff parameters and when a row stops being retried (goes dead).

    A row goes dead on a permanent failure, or on a retryable one once it is older than
    its target's max age AND has had at least `min_attempts` attempts since it was
    created or last replayed: a row that waited a day behind an earlier one, or that an
    operator replays, still gets a few real tries.
    """

    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP
    retry_after_cap: float = RETRY_AFTER_CAP
    max_age: timedelta = timedelta(hours=24)
    max_age_by_target: Mapping[OutboxTarget, timedelta] = field(default_factory=dict)
    min_attempts: int = 3
    jitter: Jitter = random.random

    def max_age_for(self, target: OutboxTarget) -> timedelta:
        return self.max_age_by_target.get(target, self.max_age)

    def next_attempt_at(self, attempt: int, now: datetime, retry_after: float | None) -> datetime:
        return next_attempt_at(
            attempt,
            now,
            retry_after,
            base=self.base,
            cap=self.cap,
            retry_after_cap=self.retry_after_cap,
            jitter=self.jitter,
        )

    def gives_up(self, row: OutboxRow, now: datetime) -> bool:
        """After one more failed attempt of `row` at `now`, is it dead?"""
        attempts = row.attempts + 1
        too_old = now - row.created_at >= self.max_age_for(row.target)
        return too_old and attempts >= self.min_attempts
