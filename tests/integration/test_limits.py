"""Limits on what a bot may send: too large is a clear 413 or 422, never a 500."""

from __future__ import annotations

import json
from typing import Any

MIB = 1024 * 1024


async def test_a_body_over_4_mib_is_413_problem(make_env: Any) -> None:
    async with make_env() as env:
        body = json.dumps(
            {"conversation_id": "c", "user": {"id": "u"}, "description": "x" * (5 * MIB)}
        )
        response = await env.api.post(
            "/v1/handoffs", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 413
        assert await env.gateway.store.list_handoffs() == ([], None)


async def test_oversized_fields_are_422_naming_them(make_env: Any) -> None:
    async with make_env() as env:
        cases = {
            "metadata": {"metadata": {f"k{i}": "v" * 100 for i in range(50)}},
            "transcript": {"transcript": [{"role": "user", "text": "t" * 90_000}] * 3},
            "title": {"title": "t" * 501},
        }
        for field, extra in cases.items():
            body = {"conversation_id": "c", "user": {"id": "u"}, **extra}
            response = await env.api.post("/v1/handoffs", json=body)
            assert response.status_code == 422, (field, response.text)
            assert field in response.json()["detail"], response.json()
        handoff = await env.start_handoff("conv-limits")
        too_long = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": "x" * 100_001}
        )
        assert too_long.status_code == 422
        assert "text" in too_long.json()["detail"]


async def test_a_long_text_reaches_livechat_in_pieces_under_16_kb(make_env: Any) -> None:
    async with make_env() as env:
        handoff = await env.assigned("conv-long-text")
        text = "word " * 10_000  # 50 KB
        posted = await env.api.post(
            f"/v1/handoffs/{handoff['id']}/messages", json={"type": "text", "text": text}
        )
        assert posted.status_code == 202
        await env.settle()
        pieces = [
            e["text"]
            for e in env.chat_events(handoff["livechat"]["chat_id"])
            if e["type"] == "message" and e.get("visibility") == "all"
        ]
        assert len(pieces) >= 4
        assert all(len(p.encode()) <= 16 * 1024 for p in pieces)
        assert "".join(pieces).split() == text.split()


async def test_a_body_growing_past_4_mib_without_length_is_413(make_env: Any) -> None:
    async with make_env() as env:

        async def chunks() -> Any:
            yield b'{"conversation_id": "c", "user": {"id": "u"}, "description": "'
            for _ in range(5):
                yield b"x" * MIB
            yield b'"}'

        response = await env.api.post(
            "/v1/handoffs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
