"""The gateway's exception tree.

    GatewayError
    ├── ConfigurationError        bad or missing settings (exit status 2)
    ├── StoreError
    │   ├── StaleHandoff          the handoff changed under us; re-read and retry
    │   └── ConversationBusy      a conversation already has an open handoff
    └── HandoffError
        ├── HandoffNotFound
        └── HandoffClosed         a message or action for a closed/failed handoff

LiveChat's own errors live in `livechat_hitl.livechat.errors`.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigurationError(GatewayError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StoreError(GatewayError):
    pass


class StaleHandoff(StoreError):
    def __init__(self, handoff_id: str) -> None:
        super().__init__(f"handoff {handoff_id} was changed concurrently")
        self.handoff_id = handoff_id


class ConversationBusy(StoreError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id} already has an open handoff")
        self.conversation_id = conversation_id


class HandoffError(GatewayError):
    pass


class HandoffNotFound(HandoffError):
    def __init__(self, handoff_id: str) -> None:
        super().__init__(f"no handoff {handoff_id}")
        self.handoff_id = handoff_id


class HandoffClosed(HandoffError):
    def __init__(self, handoff_id: str, state: str) -> None:
        super().__init__(f"handoff {handoff_id} is {state}")
        self.handoff_id = handoff_id
        self.state = state
