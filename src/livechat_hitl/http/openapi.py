"""The OpenAPI document says what the doors really answer.

Every error is `application/problem+json` (not FastAPI's default JSON validation body),
and the statuses any operation can give for a client mistake are declared once here:
400 (body not JSON), 401 (no or wrong API key on /v1), 422 (invalid fields).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from livechat_hitl.http.problems import PROBLEM_JSON, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    "400": "the body is not valid JSON",
    "401": "a valid API key is required",
    "404": "not found",
    "409": "the handoff is closed or failed",
    "413": "the body is too large",
    "422": "invalid fields (named in `errors`)",
    "503": "a dependency (store or LiveChat) is unavailable",
}


def _problem_response(status: str, current: dict[str, Any] | None) -> dict[str, Any]:
    description = (current or {}).get("description") or _DESCRIPTIONS.get(status, "error")
    if status in ("422",) or not description or description == "Validation Error":
        description = _DESCRIPTIONS.get(status, description)
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema()
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                declared: set[str] = {s for s in responses if s.startswith(("4", "5"))}
                if path.startswith("/v1/"):
                    declared |= {"401", "422"}
                    if method in ("post", "put", "patch"):
                        declared |= {"400", "413"}
                for status in declared:
                    if status == "503" and path == "/readyz":
                        continue  # readiness answers its own JSON body
                    responses[status] = _problem_response(status, responses.get(status))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
