"""Configuration API v3.6 methods: webhooks, groups, bots (management--configuration-api.mdx).

`owner_client_id` defaults to the client's `client_id` (it is required with a PAT).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from livechat_hitl.livechat.agent import compact, json_array
from livechat_hitl.livechat.client import Api
from livechat_hitl.livechat.errors import CredentialsError
from livechat_hitl.livechat.results import (
    Bot,
    BotToken,
    CreatedBot,
    Group,
    RegisteredWebhook,
    Webhook,
    WebhooksState,
    parse_answer,
)

if TYPE_CHECKING:
    from livechat_hitl.livechat.client import LiveChatClient


class ConfigurationApi:
    """Configuration API calls with the client's agent credentials."""

    def __init__(self, client: LiveChatClient) -> None:
        self._client = client

    async def _call(self, action: str, body: Mapping[str, Any] | None = None) -> Any:
        return await self._client.call(Api.CONFIGURATION, action, body)

    def _owner(self, owner_client_id: str | None) -> str:
        owner = owner_client_id or self._client.client_id
        if not owner:
            raise CredentialsError("owner_client_id is required (configure the client id)")
        return owner

    # -- webhooks ------------------------------------------------------------------------

    async def register_webhook(
        self,
        action: str,
        url: str,
        secret_key: str,
        *,
        type: Literal["license", "bot"] = "license",
        owner_client_id: str | None = None,
        description: str | None = None,
        filters: Mapping[str, Any] | None = None,
        additional_data: Sequence[str] | None = None,
    ) -> str:
        """Register a webhook for `action`; answers its id."""
        body = compact(
            action=action,
            url=url,
            secret_key=secret_key,
            type=type,
            owner_client_id=self._owner(owner_client_id),
            description=description,
            filters=dict(filters) if filters is not None else None,
            additional_data=list(additional_data) if additional_data is not None else None,
        )
        answer = await self._call("register_webhook", body)
        return parse_answer(RegisteredWebhook, answer).id

    async def list_webhooks(self, owner_client_id: str | None = None) -> list[Webhook]:
        """Webhooks registered by the app."""
        answer = await self._call(
            "list_webhooks", {"owner_client_id": self._owner(owner_client_id)}
        )
        return [parse_answer(Webhook, item) for item in json_array(answer)]

    async def unregister_webhook(self, webhook_id: str, owner_client_id: str | None = None) -> None:
        """Remove a webhook registration."""
        body = {"id": webhook_id, "owner_client_id": self._owner(owner_client_id)}
        await self._call("unregister_webhook", body)

    async def enable_license_webhooks(self, owner_client_id: str | None = None) -> None:
        """Turn on delivery of the app's license webhooks."""
        body = {"owner_client_id": self._owner(owner_client_id)}
        await self._call("enable_license_webhooks", body)

    async def get_license_webhooks_state(self, owner_client_id: str | None = None) -> bool:
        """Whether the app's license webhooks are delivered."""
        body = {"owner_client_id": self._owner(owner_client_id)}
        answer = await self._call("get_license_webhooks_state", body)
        return parse_answer(WebhooksState, answer).license_webhooks_enabled

    # -- groups --------------------------------------------------------------------------

    async def list_groups(self, fields: Sequence[str] | None = None) -> list[Group]:
        """All groups; `fields` may ask for `agent_priorities`, `routing_status`."""
        body = compact(fields=list(fields) if fields is not None else None)
        return [
            parse_answer(Group, item) for item in json_array(await self._call("list_groups", body))
        ]

    async def get_group(self, group_id: int, fields: Sequence[str] | None = None) -> Group:
        """One group."""
        body = compact(id=group_id, fields=list(fields) if fields is not None else None)
        return parse_answer(Group, await self._call("get_group", body))

    # -- bots ----------------------------------------------------------------------------

    async def create_bot(
        self,
        name: str,
        *,
        owner_client_id: str | None = None,
        avatar: str | None = None,
        max_chats_count: int | None = None,
        default_group_priority: str | None = None,
        groups: Sequence[Mapping[str, Any]] | None = None,
        job_title: str | None = None,
    ) -> CreatedBot:
        """Create a bot agent; answers its id and secret."""
        body = compact(
            name=name,
            owner_client_id=self._owner(owner_client_id),
            avatar=avatar,
            max_chats_count=max_chats_count,
            default_group_priority=default_group_priority,
            groups=[dict(g) for g in groups] if groups is not None else None,
            job_title=job_title,
        )
        return parse_answer(CreatedBot, await self._call("create_bot", body))

    async def list_bots(
        self,
        *,
        all: bool | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[Bot]:
        """The app's bots (`all=True`: every bot of the license)."""
        body = compact(all=all, fields=list(fields) if fields is not None else None)
        return [parse_answer(Bot, item) for item in json_array(await self._call("list_bots", body))]

    async def issue_bot_token(
        self,
        bot_id: str,
        bot_secret: SecretStr | str,
        *,
        client_id: str | None = None,
        organization_id: str | None = None,
    ) -> SecretStr:
        """A 24 h bearer token to act as the bot (sent without `Authorization`)."""
        secret = bot_secret.get_secret_value() if isinstance(bot_secret, SecretStr) else bot_secret
        organization = organization_id or self._client.organization_id
        if not organization:
            raise CredentialsError("issue_bot_token needs an organization id")
        body = {
            "bot_id": bot_id,
            "client_id": self._owner(client_id),
            "bot_secret": secret,
            "organization_id": organization,
        }
        answer = await self._client.call(Api.CONFIGURATION, "issue_bot_token", body, anonymous=True)
        return parse_answer(BotToken, answer).token
