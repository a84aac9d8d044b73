"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from livechat_hitl import metrics
from livechat_hitl.domain.states import HandoffState

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
READY_TIMEOUT = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "store or LiveChat unreachable"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Ready when the store answers and LiveChat accepts our credentials."""
    gateway = request.app.state.gateway
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await gateway.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # report, never raise: this is the health check
        checks["store"] = f"failing: {type(exc).__name__}"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await gateway.livechat.agent.list_routing_statuses([gateway.settings.livechat_group_id])
        checks["livechat"] = "ok"
    except Exception as exc:
        checks["livechat"] = f"failing: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(request: Request) -> Response:
    gateway = request.app.state.gateway
    counts = await gateway.store.count_handoffs_by_state()
    for state in HandoffState:
        metrics.HANDOFFS.labels(state=state.value).set(counts.get(state, 0))
    metrics.OUTBOX_BACKLOG.set(await gateway.store.outbox_backlog())
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
