"""Who an agent is, read from the chat's users (`get_chat`), with a small cache."""

from __future__ import annotations

from collections import OrderedDict

from livechat_hitl.domain.models import Agent
from livechat_hitl.livechat.client import LiveChatClient
from livechat_hitl.livechat.structures import Agent as AgentUser


class ChatUsersDirectory:
    """`AgentDirectory` over LiveChat: never reports the customer as the agent."""

    def __init__(self, client: LiveChatClient, *, size: int = 10_000) -> None:
        self._client = client
        self._size = size
        self._known: OrderedDict[str, Agent] = OrderedDict()

    def remember(self, agent: Agent) -> None:
        self._known[agent.id] = agent
        self._known.move_to_end(agent.id)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    async def agent(self, chat_id: str, user_id: str) -> Agent | None:
        known = self._known.get(user_id)
        if known is not None:
            return known
        chat = await self._client.agent.get_chat(chat_id)
        found: Agent | None = None
        for user in chat.users:
            if isinstance(user, AgentUser):
                agent = Agent(id=user.id, name=user.name, avatar_url=user.avatar)
                self.remember(agent)
                if user.id == user_id:
                    found = agent
        return found
