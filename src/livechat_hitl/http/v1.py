"""Bot-facing REST API v1 (CONTRACT §3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from livechat_hitl.domain.states import HandoffState
from livechat_hitl.http.auth import require_api_key
from livechat_hitl.http.problems import problem
from livechat_hitl.http.schemas import (
    Availability,
    CloseIn,
    FileMessageIn,
    HandoffIn,
    HandoffOut,
    HandoffPage,
    MessageAccepted,
    MessageIn,
    MessageList,
    MessageOut,
    to_outgoing,
)
from livechat_hitl.livechat.files import FileRefused
from livechat_hitl.services.handoffs import HandoffService
from livechat_hitl.store.sql_store import CURSOR_PATTERN

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["handoffs"])


def _service(request: Request) -> HandoffService:
    service: HandoffService = request.app.state.handoffs
    return service


Service = Annotated[HandoffService, Depends(_service)]


@router.post(
    "/handoffs",
    status_code=201,
    response_model=HandoffOut,
    responses={200: {"model": HandoffOut, "description": "the conversation's open handoff"}},
)
async def start_handoff(body: HandoffIn, service: Service, response: Response) -> HandoffOut:
    """Start a handoff, or return the open one of this conversation (never a second chat)."""
    handoff, created = await service.start(body.to_request())
    if not created:
        response.status_code = 200
    return HandoffOut.of(handoff)


@router.get("/handoffs", response_model=HandoffPage)
async def list_handoffs(
    request: Request,
    conversation_id: Annotated[str | None, Query(max_length=200)] = None,
    state: HandoffState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
) -> HandoffPage | JSONResponse:
    store = request.app.state.store
    try:
        items, next_cursor = await store.list_handoffs(
            conversation_id=conversation_id, state=state, limit=limit, cursor=cursor
        )
    except ValueError:
        return problem(
            422, "invalid fields: cursor", errors=[{"field": "cursor", "message": "unknown cursor"}]
        )
    return HandoffPage(items=[HandoffOut.of(h) for h in items], next_cursor=next_cursor)


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut, responses={404: PROBLEM})
async def get_handoff(handoff_id: str, service: Service) -> HandoffOut:
    return HandoffOut.of(await service.get(handoff_id))


@router.post(
    "/handoffs/{handoff_id}/messages",
    status_code=202,
    response_model=MessageAccepted,
    responses={404: PROBLEM, 409: PROBLEM},
)
async def post_message(
    handoff_id: str, body: Annotated[MessageIn, Body()], service: Service, request: Request
) -> MessageAccepted | JSONResponse:
    """Queue a message from the end user for the agent; a repeated `id` is accepted once."""
    if isinstance(body, FileMessageIn):
        await service.get(handoff_id)  # 404 before any fetch on the bot's behalf
        try:
            await request.app.state.gateway.fetcher.precheck(str(body.url))
        except FileRefused as exc:
            return problem(
                422, f"invalid fields: url ({exc})", errors=[{"field": "url", "message": str(exc)}]
            )
    message = await service.post_message(handoff_id, to_outgoing(body))
    return MessageAccepted(id=message.id, handoff_id=handoff_id, status=message.status.value)


@router.get("/handoffs/{handoff_id}/messages", response_model=MessageList, responses={404: PROBLEM})
async def list_messages(handoff_id: str, service: Service) -> MessageList:
    return MessageList(items=[MessageOut.of(m) for m in await service.messages(handoff_id)])


@router.post("/handoffs/{handoff_id}/close", response_model=HandoffOut, responses={404: PROBLEM})
async def close_handoff(
    handoff_id: str, service: Service, body: Annotated[CloseIn | None, Body()] = None
) -> HandoffOut:
    """Close from the bot: the LiveChat chat is deactivated. Repeating it is harmless."""
    return HandoffOut.of(await service.close(handoff_id))


@router.get("/availability", response_model=Availability)
async def availability(
    request: Request, group_id: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None
) -> Availability:
    group = request.app.state.default_group_id if group_id is None else group_id
    accepting: int = await request.app.state.agents_accepting(group)
    return Availability(group_id=group, accepting_chats=accepting > 0, agents_accepting=accepting)


@router.get("/events", responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request) -> Any:
    """Server-Sent Events: every bot event, in log order; `Last-Event-ID` resumes."""
    from livechat_hitl.bots.sse import events_response, parse_last_event_id

    try:
        parse_last_event_id(request.headers.get("last-event-id"))
    except ValueError:
        return problem(400, "Last-Event-ID must be an event id given by this stream")
    return events_response(request, request.app.state.store, request.app.state.notifier)
