"""Standard Webhooks signatures for the events the gateway POSTs to bots.

`webhook-signature` is `v1,<base64 HMAC-SHA256>` over `id.timestamp.body` with the
secret's decoded bytes; the bot verifies it with any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime

from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

_PREFIX = "whsec_"


class WebhookSigner:
    """Signs request bodies with one `whsec_…` secret."""

    def __init__(self, secret: str | SecretStr) -> None:
        text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        text = text.strip().removeprefix(_PREFIX)
        try:
            # strict, unlike the library's decoder, which skips stray characters
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except ValueError:  # binascii.Error; never echo the secret
            key = b""
        if not key:
            raise ValueError("the bot webhook secret must be `whsec_` + base64")
        self._webhook = Webhook(key)

    def sign(self, event_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for `body` sent at `timestamp` (aware)."""
        if timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        moment = timestamp.astimezone(UTC)
        signature = self._webhook.sign(event_id, moment, body.decode("utf-8"))
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(math.floor(moment.timestamp())),
            "webhook-signature": str(signature),
        }
