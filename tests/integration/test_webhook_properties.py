"""Hypothesis over LiveChat webhook deliveries: hostile or malformed input never breaks
the door or the relay.

Properties, against a live in-process gateway with one assigned handoff:
- any JSON body (or none) gets 200, 400, 401 or 413 — never a 500;
- any payload under a valid envelope for an action the gateway uses gets 200 or 400, and
  what the door accepted is applied by the relay without a sink error or a dead row;
- the door and the relay never disagree: every accepted delivery is applied once.
The number of examples each property ran is printed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from livechat_hitl import metrics
from livechat_hitl.domain.models import OutboxStatus

EXAMPLES = 150
ACCEPTED = {200, 400, 401, 413}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Each example builds a whole gateway: shrinking would take minutes. The failing
    # example is printed as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
counts: dict[str, int] = {}
CHAT, THREAD = "CHAT-PLACEHOLDER", "THREAD-PLACEHOLDER"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """These properties are about the door and the relay, not the store: SQLite only,
    and a fresh file for every example (see `fresh_db`)."""
    return f"sqlite:///{tmp_path / 'unused.db'}"


def fresh_db() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='hitl-fuzz-')) / 'gateway.db'}"


def sink_errors() -> float:
    total = 0.0
    for metric in metrics.OUTBOX_SINK_ERRORS.collect():
        total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


@PROPERTY_SETTINGS
@given(body=st.one_of(json_values.map(json.dumps), st.binary(max_size=200)))
async def test_any_body_gets_a_client_answer_never_a_500(make_env: Any, body: Any) -> None:
    async with make_env(database_url=fresh_db()) as env:
        response = await env.api.post("/livechat/webhooks", content=body)
        assert response.status_code in ACCEPTED, response.text
    counts["any body"] = counts.get("any body", 0) + 1


def _payload_for(action: str, chat_id: str, thread_id: str) -> st.SearchStrategy[Any]:
    base: dict[str, Any] = {"chat_id": chat_id, "thread_id": thread_id}
    mutated = st.dictionaries(
        st.sampled_from(
            [
                "chat_id",
                "thread_id",
                "event",
                "user",
                "user_id",
                "transferred_to",
                "queue",
                "reason",
                "requester_id",
                "user_type",
            ]
        ),
        json_values,
        max_size=5,
    )
    event = st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=12),
            "type": st.sampled_from(
                [
                    "message",
                    "file",
                    "rich_message",
                    "system_message",
                    "custom",
                    "filled_form",
                    "form",
                    "system",
                    "unknown",
                ]
            ),
        },
        optional={
            "text": json_values,
            "author_id": json_values,
            "visibility": st.sampled_from(["all", "agents", "x"]) | json_values,
            "url": json_values,
            "elements": json_values,
        },
    )
    if action == "incoming_event":
        shaped = event.map(lambda e: {**base, "event": e})
    elif action == "chat_transferred":
        shaped = st.fixed_dictionaries(
            {},
            optional={"transferred_to": json_values, "queue": json_values, "reason": json_values},
        ).map(lambda d: {**base, **d})
    else:
        shaped = st.just(dict(base))
    return st.one_of(shaped, st.tuples(shaped, mutated).map(lambda t: {**t[0], **t[1]}))


USED = ["incoming_event", "chat_transferred", "chat_deactivated", "user_added_to_chat"]
deliveries = st.sampled_from(USED).flatmap(
    lambda action: st.tuples(st.just(action), _payload_for(action, CHAT, THREAD), json_values)
)


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(delivery=deliveries)
async def test_valid_envelopes_with_fuzzed_payloads_are_applied_safely(
    make_env: Any, delivery: tuple[str, dict[str, Any], Any]
) -> None:
    action, drawn, additional = delivery
    async with make_env(database_url=fresh_db()) as env:
        handoff = await env.assigned("conv-fuzz")
        await env.settle()
        errors_before = sink_errors()
        # Ids are drawn as placeholders (a strategy must not depend on this run's ids)
        real = {
            "chat_id": handoff["livechat"]["chat_id"],
            "thread_id": handoff["livechat"]["thread_id"],
        }
        placeholder = {"chat_id": CHAT, "thread_id": THREAD}
        payload = {
            k: (real[k] if k in real and v == placeholder[k] else v) for k, v in drawn.items()
        }
        envelope = {
            "webhook_id": "wh-fuzz",
            "secret_key": env.gateway.settings.livechat_webhook_secret.get_secret_value(),
            "action": action,
            "organization_id": env.sim.config.organization_id,
            "payload": payload,
            "additional_data": additional,
        }
        response = await env.api.post("/livechat/webhooks", json=envelope)
        assert response.status_code in (200, 400), response.text
        await env.settle()
        dead = await env.gateway.store.list_outbox(dead_only=True)
        assert dead == [], [(r.kind, r.last_error) for r in dead]
        assert sink_errors() == errors_before
        state = (await env.handoff(handoff["id"]))["state"]
        assert state in {"assigned", "queued", "closed"}
        rows = await env.gateway.store.list_outbox(limit=1000)
        assert all(r.status is OutboxStatus.DELIVERED for r in rows)
    counts["valid envelope"] = counts.get("valid envelope", 0) + 1


def test_print_example_counts(summary: Callable[[str], None]) -> None:
    assert counts, "the property tests above ran"
    for name, count in sorted(counts.items()):
        summary(f"hypothesis: {count} examples  {name}")
