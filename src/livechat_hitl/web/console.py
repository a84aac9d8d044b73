"""The sandbox's agent console: a person plays the LiveChat agent against the simulator.

A small server-rendered page over the simulator's control API (`/_sim/...`): it lists
chats with their transcript, and lets the chosen agent accept, reply, transfer and close.
It knows nothing of the gateway: it is what a LiveChat agent app would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _state(chat: dict[str, Any]) -> dict[str, Any]:
    """What the console shows of a chat: its last thread, agents, customer, status."""
    threads = chat.get("threads") or []
    thread = threads[-1] if threads else {}
    users = chat.get("users") or []
    agents = {u["id"]: u for u in users if u.get("type") == "agent"}
    customer = next((u for u in users if u.get("type") == "customer"), None)
    present = [a for a in agents.values() if a.get("present", True)]
    queue = thread.get("queue")
    if not thread.get("active"):
        status = "closed"
    elif queue:
        status = "queued"
    else:
        status = "assigned"
    events = []
    for event in thread.get("events", []):
        author = event.get("author_id")
        who = (
            "system"
            if author is None
            else (customer or {}).get("name") or "customer"
            if customer and author == customer.get("id")
            else agents.get(author, {}).get("name") or author
        )
        events.append({**event, "who": who})
    return {
        "id": chat["id"],
        "thread": thread,
        "status": status,
        "queue": queue,
        "customer": customer,
        "agents": present,
        "agent_ids": [a["id"] for a in present],
        "events": events,
    }


class Console:
    def __init__(self, simulator_url: str, agents: list[tuple[str, str]]) -> None:
        self._url = simulator_url.rstrip("/")
        self.agents = agents

    async def _sim(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.request(method, f"{self._url}{path}", json=body)
        if response.status_code >= 400:
            error = response.json().get("error", {}) if response.content else {}
            raise ConsoleError(str(error.get("message") or response.status_code))
        return response.json() if response.content else None

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/", response_class=HTMLResponse)
        async def page(
            request: Request, agent: str | None = None, error: str | None = None
        ) -> Response:
            me = agent or (self.agents[0][0] if self.agents else "")
            chats = [_state(c) for c in await self._sim("GET", "/_sim/chats")]
            chats.sort(key=lambda c: (c["status"] == "closed", c["id"]))
            return TEMPLATES.TemplateResponse(
                request,
                "console.html",
                {"chats": chats, "agents": self.agents, "me": me, "error": error},
            )

        async def act(agent: str, path: str, body: dict[str, Any]) -> Response:
            target = f"./?agent={agent}"
            try:
                await self._sim("POST", path, body)
            except ConsoleError as exc:
                target += f"&error={httpx.QueryParams({'e': str(exc)})['e']}"
            return RedirectResponse(target, status_code=303)

        @router.post("/chats/{chat_id}/accept")
        async def accept(chat_id: str, agent: Annotated[str, Form()]) -> Response:
            return await act(agent, f"/_sim/chats/{chat_id}/accept", {"agent_id": agent})

        @router.post("/chats/{chat_id}/reply")
        async def reply(
            chat_id: str, agent: Annotated[str, Form()], text: Annotated[str, Form()]
        ) -> Response:
            return await act(
                agent, f"/_sim/chats/{chat_id}/reply", {"agent_id": agent, "text": text}
            )

        @router.post("/chats/{chat_id}/transfer")
        async def transfer(
            chat_id: str, agent: Annotated[str, Form()], to: Annotated[str, Form()]
        ) -> Response:
            return await act(
                agent, f"/_sim/chats/{chat_id}/transfer", {"agent_id": to, "by": agent}
            )

        @router.post("/chats/{chat_id}/close")
        async def close(chat_id: str, agent: Annotated[str, Form()]) -> Response:
            return await act(agent, f"/_sim/chats/{chat_id}/close", {"agent_id": agent})

        return router


class ConsoleError(Exception):
    pass


def create_console_app(simulator_url: str, agents: list[tuple[str, str]]) -> FastAPI:
    app = FastAPI(title="livechat-hitl agent console", openapi_url=None, docs_url=None)
    app.include_router(Console(simulator_url, agents).router())
    return app
