"""Handoff states and the transition table, kept as data."""

from __future__ import annotations

from enum import StrEnum


class HandoffState(StrEnum):
    REQUESTED = "requested"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATES


class CloseReason(StrEnum):
    AGENT_CLOSED = "agent_closed"
    BOT_CLOSED = "bot_closed"
    LIVECHAT_CLOSED = "livechat_closed"
    FAILED = "failed"


TERMINAL_STATES = frozenset({HandoffState.CLOSED, HandoffState.FAILED})

# Which state may follow which. A transfer keeps a handoff `assigned` (new agent) or
# sends it back to `queued`; LiveChat may assign straight from `requested`.
TRANSITIONS: dict[HandoffState, frozenset[HandoffState]] = {
    HandoffState.REQUESTED: frozenset(
        {HandoffState.QUEUED, HandoffState.ASSIGNED, HandoffState.CLOSED, HandoffState.FAILED}
    ),
    HandoffState.QUEUED: frozenset(
        {HandoffState.QUEUED, HandoffState.ASSIGNED, HandoffState.CLOSED, HandoffState.FAILED}
    ),
    HandoffState.ASSIGNED: frozenset(
        {HandoffState.ASSIGNED, HandoffState.QUEUED, HandoffState.CLOSED, HandoffState.FAILED}
    ),
    HandoffState.CLOSED: frozenset(),
    HandoffState.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: HandoffState, target: HandoffState) -> None:
        super().__init__(f"a handoff cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: HandoffState, target: HandoffState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: HandoffState, target: HandoffState) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
