"""Control API for the sandbox and tests: Python methods and `/_sim/` JSON routes.

Control actions act as the named agent (the way an agent in the LiveChat app would),
so they emit the same webhooks; they never bypass the chat rules.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .core import Core
from .errors import SimError, validation
from .faults import FaultKind
from .world import Json, Requester


class Controls:
    """Mixed into `Simulator`; every method is also a `/_sim/` route."""

    core: Core

    def _agent(self, agent_id: str) -> Requester:
        agent = self.core.world.agent(agent_id)
        return Requester("agent", agent.id, is_bot=agent.is_bot)

    def add_agent(
        self,
        email: str,
        name: str,
        *,
        group_ids: list[int] | None = None,
        accepting: bool = True,
        max_chats: int | None = None,
    ) -> Json:
        for group_id in group_ids or []:
            self.core.world.group(group_id)
        agent = self.core.world.add_agent(
            email,
            name,
            group_ids=set(group_ids) if group_ids is not None else None,
            status="accepting_chats" if accepting else "not_accepting_chats",
            max_chats=max_chats,
        )
        self.core.router.drain()
        return {"id": agent.id, "name": agent.name, "status": agent.status}

    def set_agent_status(self, agent_id: str, status: str) -> None:
        """Set an agent's routing status (emits routing_status_set; frees queued chats)."""
        try:
            self.core.set_routing_status(agent_id, status, self._agent(agent_id))
        except ValueError:
            raise validation(f"unknown routing status {status!r}") from None

    def accept_chat(self, agent_id: str, chat_id: str) -> None:
        """An agent takes a queued chat (as when an agent picks it from the queue)."""
        chat = self.core.world.chat(chat_id)
        thread = chat.active_thread
        if thread is None or thread.queue is None:
            raise validation("The chat is not queued")
        self.core.router.assign_queued(chat, thread, self.core.world.agent(agent_id))

    def agent_reply(
        self,
        agent_id: str,
        chat_id: str,
        text: str | None = None,
        *,
        file: tuple[str, bytes, str] | None = None,
        file_url: str | None = None,
        rich_message: Json | None = None,
        visibility: str = "all",
        custom_id: str | None = None,
    ) -> Json:
        """Post a message, a file (uploaded content or an existing URL) or a rich message."""
        requester = self._agent(agent_id)
        event: Json
        if file is not None:
            name, content, content_type = file
            stored = self.core.files.put(name, content, content_type)
            event = {"type": "file", "url": stored.url}
        elif file_url is not None:
            event = {"type": "file", "url": file_url}
        elif rich_message is not None:
            event = {"type": "rich_message", **rich_message}
        elif text is not None:
            event = {"type": "message", "text": text}
        else:
            raise validation("text, file, file_url or rich_message is required")
        event["visibility"] = visibility
        if custom_id is not None:
            event["custom_id"] = custom_id
        if event["type"] == "file" and self.core.files.by_url(event["url"]) is None:
            # An outside URL: keep it as LiveChat would show a file event.
            chat = self.core.world.chat(chat_id)
            thread = chat.active_thread
            if thread is None:
                raise SimError("chat_inactive")  # before presence, as send_event checks
            self.core.chats.require_present(requester, chat)
            name = event["url"].rstrip("/").rsplit("/", 1)[-1] or "file"
            body = {**event, "name": name, "content_type": "application/octet-stream", "size": 0}
            created = self.core.world.new_event(thread, agent_id, body)
            self.core.chats._emit_event(chat, thread, created, requester)
            return created
        result = self.core.chats.send_event(requester, {"chat_id": chat_id, "event": event})
        chat = self.core.world.chat(chat_id)
        thread = chat.last_thread
        assert thread is not None
        return next(e for e in thread.events if e["id"] == result["event_id"])

    def transfer(
        self,
        chat_id: str,
        *,
        group_id: int | None = None,
        agent_id: str | None = None,
        by: str | None = None,
        ignore_agents_availability: bool = True,
    ) -> None:
        """Transfer a chat to a group or an agent, by an agent (`by`) or by the system."""
        chat = self.core.world.chat(chat_id)
        requester = self._agent(by) if by else None
        ids: list[object]
        if agent_id is not None:
            target_type, ids = "agent", [agent_id]
        elif group_id is not None:
            target_type, ids = "group", [group_id]
        else:
            raise validation("group_id or agent_id is required")
        self.core.transfers.transfer(
            requester,
            chat,
            target_type,
            list(ids),
            ignore_availability=ignore_agents_availability,
            ignore_presence=True,
        )

    def close_chat(self, chat_id: str, agent_id: str | None = None) -> None:
        """Deactivate a chat as an agent (`user_id` set) or as the router (no `user_id`)."""
        chat = self.core.world.chat(chat_id)
        requester = self._agent(agent_id) if agent_id else None
        self.core.chats.deactivate(requester, chat, ignore_presence=True)

    def list_chats(self) -> list[Json]:
        """Every chat with all threads, events and users."""
        out = []
        for chat in self.core.world.chats.values():
            rendered = self.core.world.render_chat(chat)
            rendered.pop("thread", None)
            rendered["threads"] = [self.core.world.render_thread(t) for t in chat.threads]
            out.append(rendered)
        return out

    def deliveries(self) -> list[Json]:
        return [d.render() for d in self.core.emitter.log]

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        method: str | None = None,
        retry_after: int = 1,
        region: str = "fra",
        hang_seconds: float = 30.0,
    ) -> None:
        """Next `count` calls of `method` (None: any) answer 429/500/503, hang, or misdirect.

        A `misdirected` fault answers only calls whose `X-Region` is not `region`, so a
        client that retries in the region named by `data.region` gets through.
        """
        self.core.faults.add(
            kind,
            count=count,
            method=method,
            retry_after=retry_after,
            region=region,
            hang_seconds=hang_seconds,
        )

    def duplicate_webhooks(self, count: int = 1, *, concurrent: bool = False) -> None:
        self.core.emitter.duplicate_next(count, concurrent=concurrent)

    def issue_agent_token(self, agent_id: str) -> str:
        """An OAuth agent access token (Bearer) for `agent_id`, as `/v2/token` would give."""
        return self.core.credentials.issue_agent_token(agent_id)


async def _json(request: Request) -> Json:
    raw = await request.body()
    if not raw.strip():
        return {}
    import json

    try:
        body = json.loads(raw)
    except ValueError:
        raise validation("Body is not JSON") from None
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    return body


def control_routes(controls: Controls) -> list[Route]:
    async def add_agent(request: Request) -> Response:
        b = await _json(request)
        return JSONResponse(
            controls.add_agent(
                _s(b, "email"),
                _s(b, "name"),
                group_ids=b.get("group_ids"),
                accepting=bool(b.get("accepting", True)),
                max_chats=b.get("max_chats"),
            )
        )

    async def set_status(request: Request) -> Response:
        b = await _json(request)
        controls.set_agent_status(request.path_params["agent_id"], _s(b, "status"))
        return JSONResponse({})

    async def accept(request: Request) -> Response:
        b = await _json(request)
        controls.accept_chat(_s(b, "agent_id"), request.path_params["chat_id"])
        return JSONResponse({})

    async def reply(request: Request) -> Response:
        b = await _json(request)
        file = None
        if isinstance(b.get("file"), dict):
            f = b["file"]
            content = base64.b64decode(_s(f, "content_base64"))
            file = (_s(f, "name"), content, str(f.get("content_type", "application/octet-stream")))
        event = controls.agent_reply(
            _s(b, "agent_id"),
            request.path_params["chat_id"],
            b.get("text"),
            file=file,
            file_url=b.get("file_url"),
            rich_message=b.get("rich_message"),
            visibility=str(b.get("visibility", "all")),
            custom_id=b.get("custom_id"),
        )
        return JSONResponse(event)

    async def transfer(request: Request) -> Response:
        b = await _json(request)
        controls.transfer(
            request.path_params["chat_id"],
            group_id=b.get("group_id"),
            agent_id=b.get("agent_id"),
            by=b.get("by"),
            ignore_agents_availability=bool(b.get("ignore_agents_availability", True)),
        )
        return JSONResponse({})

    async def close(request: Request) -> Response:
        b = await _json(request)
        controls.close_chat(request.path_params["chat_id"], b.get("agent_id"))
        return JSONResponse({})

    async def chats(request: Request) -> Response:
        return JSONResponse(controls.list_chats())

    async def deliveries(request: Request) -> Response:
        return JSONResponse(controls.deliveries())

    async def faults(request: Request) -> Response:
        b = await _json(request)
        try:
            controls.inject_fault(
                b.get("kind"),  # type: ignore[arg-type]
                count=int(b.get("count", 1)),
                method=b.get("method"),
                retry_after=int(b.get("retry_after", 1)),
                region=str(b.get("region", "fra")),
                hang_seconds=float(b.get("hang_seconds", 30.0)),
            )
        except (TypeError, ValueError) as exc:
            raise validation(str(exc)) from None
        return JSONResponse({})

    async def duplicates(request: Request) -> Response:
        b = await _json(request)
        controls.duplicate_webhooks(int(b.get("count", 1)), concurrent=bool(b.get("concurrent")))
        return JSONResponse({})

    async def agent_token(request: Request) -> Response:
        b = await _json(request)
        return JSONResponse({"access_token": controls.issue_agent_token(_s(b, "agent_id"))})

    return [
        Route("/_sim/agents", add_agent, methods=["POST"]),
        Route("/_sim/agents/{agent_id}/status", set_status, methods=["POST"]),
        Route("/_sim/agent_tokens", agent_token, methods=["POST"]),
        Route("/_sim/chats", chats, methods=["GET"]),
        Route("/_sim/chats/{chat_id}/accept", accept, methods=["POST"]),
        Route("/_sim/chats/{chat_id}/reply", reply, methods=["POST"]),
        Route("/_sim/chats/{chat_id}/transfer", transfer, methods=["POST"]),
        Route("/_sim/chats/{chat_id}/close", close, methods=["POST"]),
        Route("/_sim/webhooks/deliveries", deliveries, methods=["GET"]),
        Route("/_sim/webhooks/duplicate", duplicates, methods=["POST"]),
        Route("/_sim/faults", faults, methods=["POST"]),
    ]


def _s(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise validation(f"`{key}` is required")
    return value
