"""The sandbox's agent console: a person plays the LiveChat agent against the simulator.

A small server-rendered page over the simulator's control API (`/_sim/...`): it lists
chats with their transcript, and lets the chosen agent accept, reply, transfer and close.
It knows nothing of the gateway: it is what a LiveChat agent app would be.

Every action is a plain form POST answered by a 303 back to the page (so it works
without JavaScript); the page script only refreshes the chat list in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _author(event: dict[str, Any], customer: dict[str, Any] | None, agents: dict[str, Any]) -> Any:
    """(role, display name) of an event's author."""
    author = event.get("author_id")
    if author is None or event.get("type") == "system_message":
        return "system", "system"
    if customer is not None and author == customer.get("id"):
        return "customer", customer.get("name") or "customer"
    return "agent", agents.get(author, {}).get("name") or author


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
        role, who = _author(event, customer, agents)
        events.append({**event, "who": who, "role": role})
    return {
        "id": chat["id"],
        "thread": thread,
        "created_at": thread.get("created_at") or "",
        "status": status,
        "queue": queue,
        "customer": customer,
        "agents": present,
        "agent_ids": [a["id"] for a in present],
        "events": events,
    }


def _order(chat: dict[str, Any]) -> tuple[int, str, str]:
    """Open chats first, oldest first (the queue's order); closed ones last."""
    rank = {"queued": 0, "assigned": 1}.get(chat["status"], 2)
    return rank, chat["created_at"], chat["id"]


class ConsoleError(Exception):
    """The simulator refused an action, or could not be reached."""


class Console:
    def __init__(
        self,
        simulator_url: str,
        agents: list[tuple[str, str]],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = simulator_url.rstrip("/")
        self._transport = transport
        self.agents = agents

    async def _sim(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with httpx.AsyncClient(timeout=10.0, transport=self._transport) as http:
                response = await http.request(method, f"{self._url}{path}", json=body)
        except httpx.HTTPError as exc:
            raise ConsoleError(f"the LiveChat simulator is not reachable ({exc})") from None
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if response.status_code >= 400:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            message = error.get("message") if isinstance(error, dict) else None
            raise ConsoleError(str(message or f"the simulator answered {response.status_code}"))
        return payload

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/", response_class=HTMLResponse, name="console")
        async def page(
            request: Request, agent: str | None = None, error: str | None = None
        ) -> Response:
            known = [email for email, _ in self.agents]
            me = agent if agent in known else (known[0] if known else "")
            status = 200
            try:
                chats = [_state(c) for c in await self._sim("GET", "/_sim/chats")]
            except ConsoleError as exc:
                chats, error, status = [], str(exc), 502
            chats.sort(key=_order)
            return TEMPLATES.TemplateResponse(
                request,
                "console.html",
                {
                    "chats": chats,
                    "agents": self.agents,
                    "me": me,
                    "me_name": dict(self.agents).get(me, me),
                    "error": error,
                    "open_count": sum(1 for c in chats if c["status"] != "closed"),
                },
                status_code=status,
            )

        async def act(request: Request, agent: str, path: str, body: dict[str, Any]) -> Response:
            query = {"agent": agent}
            try:
                await self._sim("POST", path, body)
            except ConsoleError as exc:
                query["error"] = str(exc)
            # An absolute path: a relative one would resolve against the action's URL.
            target = f"{request.scope.get('root_path', '')}/?{urlencode(query)}"
            return RedirectResponse(target, status_code=303)

        @router.post("/chats/{chat_id}/accept")
        async def accept(request: Request, chat_id: str, agent: Annotated[str, Form()]) -> Response:
            return await act(request, agent, f"/_sim/chats/{chat_id}/accept", {"agent_id": agent})

        @router.post("/chats/{chat_id}/reply")
        async def reply(
            request: Request,
            chat_id: str,
            agent: Annotated[str, Form()],
            text: Annotated[str, Form()],
        ) -> Response:
            return await act(
                request, agent, f"/_sim/chats/{chat_id}/reply", {"agent_id": agent, "text": text}
            )

        @router.post("/chats/{chat_id}/transfer")
        async def transfer(
            request: Request,
            chat_id: str,
            agent: Annotated[str, Form()],
            to: Annotated[str, Form()],
        ) -> Response:
            return await act(
                request, agent, f"/_sim/chats/{chat_id}/transfer", {"agent_id": to, "by": agent}
            )

        @router.post("/chats/{chat_id}/close")
        async def close(request: Request, chat_id: str, agent: Annotated[str, Form()]) -> Response:
            return await act(request, agent, f"/_sim/chats/{chat_id}/close", {"agent_id": agent})

        return router


def create_console_app(
    simulator_url: str,
    agents: list[tuple[str, str]],
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The console as an ASGI app (the sandbox mounts it at `/console`)."""
    app = FastAPI(title="livechat-hitl agent console", openapi_url=None, docs_url=None)
    app.include_router(Console(simulator_url, agents, transport).router())
    return app
