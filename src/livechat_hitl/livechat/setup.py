"""`livechat-hitl setup`: what the seed product makes people do by hand.

Registers the gateway's webhooks through the Configuration API (idempotently: a
registration with the same action and URL is kept, one with an old secret is
replaced), enables license webhooks, and checks the token, the group and the
organization.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.errors import LiveChatError

log = logging.getLogger(__name__)

# What the gateway listens to. Agent messages are filtered to agent authors at the source
# (the gateway still checks the author itself: DESIGN §3).
WEBHOOKS: dict[str, dict[str, Any] | None] = {
    "incoming_event": {"author_type": "agent"},
    "chat_transferred": None,
    "chat_deactivated": None,
    "user_added_to_chat": None,
}


@dataclass
class SetupReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"ok    {text}")

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.lines.append(f"FAIL  {text}")


async def setup_livechat(
    client: LiveChatClient, *, webhook_url: str, secret: str, group_id: int
) -> SetupReport:
    report = SetupReport()
    try:
        groups = await client.configuration.list_groups()
        report.ok(f"agent token accepted ({len(groups)} groups visible)")
    except LiveChatError as exc:
        report.problem(f"the agent token was refused: {exc.type}: {exc.message}")
        return report
    if any(g.id == group_id for g in groups):
        report.ok(f"group {group_id} exists")
    else:
        report.problem(f"group {group_id} does not exist (HITL_LIVECHAT_GROUP_ID)")
    try:
        existing = await client.configuration.list_webhooks()
    except LiveChatError as exc:
        report.problem(f"cannot list webhooks (client id?): {exc.type}: {exc.message}")
        return report
    for action, filters in WEBHOOKS.items():
        mine = [w for w in existing if w.action == action and w.url == webhook_url]
        if any((w.model_extra or {}).get("secret_key") == secret for w in mine):
            report.ok(f"webhook {action} already registered")
            continue
        for stale in mine:  # same URL, another secret: replace it
            await client.configuration.unregister_webhook(stale.id)
        try:
            await client.configuration.register_webhook(
                action,
                webhook_url,
                secret,
                type="license",
                filters=filters,
                description="livechat-hitl gateway",
            )
            report.ok(f"webhook {action} registered → {webhook_url}")
        except LiveChatError as exc:
            report.problem(f"registering {action} failed: {exc.type}: {exc.message}")
    try:
        await client.configuration.enable_license_webhooks()
        if await client.configuration.get_license_webhooks_state():
            report.ok("license webhooks enabled")
        else:
            report.problem("license webhooks are still disabled")
    except LiveChatError as exc:
        report.problem(f"enabling license webhooks failed: {exc.type}: {exc.message}")
    return report
