"""Pure functions that move a handoff through its states."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from livechat_hitl.domain.models import Handoff, Transition
from livechat_hitl.domain.states import HandoffState, check_transition


def advance(
    handoff: Handoff, target: HandoffState, *, cause: str, now: datetime, **changes: Any
) -> tuple[Handoff, Transition]:
    """The handoff in `target` state with `changes` applied, and the transition record.

    Raises `InvalidTransition` when the table does not allow the move.
    """
    check_transition(handoff.state, target)
    if target in (HandoffState.CLOSED, HandoffState.FAILED):
        changes.setdefault("closed_at", now)
        changes.setdefault("queue", None)
    if target is HandoffState.ASSIGNED:
        changes.setdefault("queue", None)
    updated = replace(handoff, state=target, updated_at=now, **changes)
    record = Transition(
        handoff_id=handoff.id, from_state=handoff.state, to_state=target, cause=cause, at=now
    )
    return updated, record


def touch(handoff: Handoff, *, now: datetime, **changes: Any) -> Handoff:
    """The handoff with `changes` applied and no state change."""
    return replace(handoff, updated_at=now, **changes)
