"""RFC 9457 problem+json answers for every error the HTTP doors return."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from livechat_hitl.errors import HandoffClosed, HandoffNotFound

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` names the offending fields on a 422."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def problem(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    merged = dict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=merged)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            # a bad or missing discriminator is the fault of that field, not the body
            loc = (*loc, str(err.get("ctx", {}).get("discriminator", "type")).strip("'"))
        # pydantic adds the union member's tag to the location; keep the field path only
        errors.append({"field": _field_name(loc), "message": str(err.get("msg", "invalid"))})
    fields = sorted({e["field"] for e in errors})
    if any(e["message"].startswith("JSON decode error") for e in errors):
        return problem(400, "the body is not valid JSON")
    return problem(422, "invalid fields: " + ", ".join(fields), errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by
        # several routes (GET and POST /v1/handoffs) allows all of theirs, as documented.
        allowed = _documented_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return problem(exc.status_code, str(exc.detail), headers=headers)


def _documented_methods(request: Request) -> set[str]:
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return methods


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem(404, str(exc))


async def _closed(request: Request, exc: Exception) -> JSONResponse:
    return problem(409, str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem(500, "internal error; the operator's log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(HandoffNotFound, _not_found)
    app.add_exception_handler(HandoffClosed, _closed)
    app.add_exception_handler(Exception, _unexpected)
