"""The transactional outbox: retry policy (pure), delivery sinks, the relay worker."""

from livechat_hitl.outbox.relay import OutboxRelay
from livechat_hitl.outbox.retry import RetryPolicy, next_attempt_at
from livechat_hitl.outbox.sinks import Delivered, Failed, Sink

__all__ = ["Delivered", "Failed", "OutboxRelay", "RetryPolicy", "Sink", "next_attempt_at"]
