"""Async client of LiveChat's Agent, Customer, Configuration and accounts APIs (v3.6).

One request funnel (`LiveChatClient`), typed method groups (`client.agent`,
`client.customer(session)`, `client.configuration`, `client.customer_identities()`),
errors keyed by LiveChat's `error.type`, and webhook models.
"""

from livechat_hitl.livechat.accounts import CustomerIdentities, CustomerSession
from livechat_hitl.livechat.agent import AgentApi
from livechat_hitl.livechat.auth import AgentCredentials, AuthScheme
from livechat_hitl.livechat.client import Api, LiveChatClient
from livechat_hitl.livechat.configuration import ConfigurationApi
from livechat_hitl.livechat.customer import CustomerApi
from livechat_hitl.livechat.errors import (
    CredentialsError,
    LiveChatError,
    LiveChatTransportError,
    error_from_response,
)
from livechat_hitl.livechat.webhooks import WebhookEnvelope, parse_payload, secret_matches

__all__ = [
    "AgentApi",
    "AgentCredentials",
    "Api",
    "AuthScheme",
    "ConfigurationApi",
    "CredentialsError",
    "CustomerApi",
    "CustomerIdentities",
    "CustomerSession",
    "LiveChatClient",
    "LiveChatError",
    "LiveChatTransportError",
    "WebhookEnvelope",
    "error_from_response",
    "parse_payload",
    "secret_matches",
]
