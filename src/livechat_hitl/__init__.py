"""livechat-hitl: a human-in-the-loop gateway between chatbots and LiveChat agents.

The public Python surface is small: the bot client (`HitlClient`, `verify_webhook`) and
its errors. Everything else is the gateway's own machinery, run by `livechat-hitl`.
"""

from livechat_hitl.client import (
    HitlApiError,
    HitlClient,
    WebhookVerificationError,
    verify_webhook,
)

__version__ = "0.1.0"

__all__ = [
    "HitlApiError",
    "HitlClient",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
