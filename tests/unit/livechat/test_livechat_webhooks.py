"""Webhook envelope and payload models parse every documented sample; the secret check."""

from __future__ import annotations

import copy
import hmac
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from livechat_hitl.livechat import webhooks as w
from livechat_hitl.livechat.structures import (
    Agent,
    Chat,
    Customer,
    CustomEvent,
    FileEvent,
    FilledFormEvent,
    FormEvent,
    MessageEvent,
    RichMessageEvent,
    SystemEvent,
    SystemMessageEvent,
    Thread,
    UnknownEvent,
    UnknownUser,
)
from livechat_hitl.livechat.webhooks import WebhookEnvelope, parse_payload, secret_matches
from livechat_hitl.livechat.wire import WebhookAction

SAMPLES = Path(__file__).parent / "samples"
EVENT_CLASSES = {
    "message.json": MessageEvent,
    "deletedEvent.json": MessageEvent,
    "file.json": FileEvent,
    "richMessage.json": RichMessageEvent,
    "systemMessage.json": SystemMessageEvent,
    "custom.json": CustomEvent,
    "form.json": FormEvent,
    "filledForm.json": FilledFormEvent,
    "system.json": SystemEvent,
}


def _load(*parts: str) -> Any:
    return json.loads(SAMPLES.joinpath(*parts).read_text())


def _webhook(action: str) -> dict[str, Any]:
    """The docs' sample webhook, with its `// "X" object` placeholders filled from samples."""
    document = _load("webhooks", f"{action}.json")
    payload = document["payload"]
    if action == "incoming_chat":
        payload["chat"]["users"] = [_load("users", "customer.json"), _load("users", "agent.json")]
        payload["chat"]["properties"] = {"routing": {"continuous": False}}
        payload["chat"]["thread"] = _load("structures", "thread.json")
    if action in ("incoming_event", "event_updated"):
        payload["event"] = _load("events", "message.json")
    if action == "user_added_to_chat":
        payload["user"] = _load("users", "agent.json")
    return document


def test_samples_are_present():
    """Guard: the sample folders are not silently empty."""
    modelled = {a.value for a in WebhookAction}
    present = {p.stem for p in (SAMPLES / "webhooks").glob("*.json")}
    assert modelled - present == set()
    assert set(EVENT_CLASSES) == {p.name for p in (SAMPLES / "events").glob("*.json")}


@pytest.mark.parametrize(
    "path", sorted((SAMPLES / "webhooks").glob("*.json")), ids=lambda p: p.stem
)
def test_every_documented_webhook_envelope_parses(path):
    action = path.stem
    envelope = WebhookEnvelope.model_validate(_webhook(action))
    assert envelope.action == action
    assert envelope.organization_id == "390e44e6-f1e6-0368c-z6ddb-74g14508c2ex"
    parsed = envelope.parsed_payload()
    if action in w.PAYLOAD_MODELS:
        assert isinstance(parsed, w.PAYLOAD_MODELS[action])
    else:
        assert parsed is None


def test_incoming_chat():
    payload = parse_payload("incoming_chat", _webhook("incoming_chat")["payload"])
    assert isinstance(payload, w.IncomingChat)
    chat = payload.chat
    assert chat.id == "PJ0MRSHTDG"
    assert [type(u) for u in chat.users] == [Customer, Agent]
    assert [a.id for a in chat.agents()] == ["smith@example.com"]
    assert chat.customer() is not None
    assert chat.customer().id == "b7eff798-f8df-4364-8059-649c35c9ed0c"
    assert chat.thread is not None
    assert chat.thread.id == "K600PKZON8"
    assert chat.thread.queue is not None
    assert chat.thread.queue.position == 42
    assert [e.text for e in chat.thread.events] == ["Hello there", "Thank you"]


def test_incoming_event_message():
    payload = parse_payload("incoming_event", _webhook("incoming_event")["payload"])
    assert isinstance(payload, w.IncomingEvent)
    assert (payload.chat_id, payload.thread_id) == ("PJ0MRSHTDG", "K600PKZON8")
    event = payload.event
    assert isinstance(event, MessageEvent)
    assert event.text == "hello there"
    assert event.custom_id == "31-0C-1C-07-DB-16"
    assert event.author_id == "b7eff798-f8df-4364-8059-649c35c9ed0c"
    assert event.postback is not None
    assert event.postback.type == "phone"
    assert event.created_at is not None
    assert event.created_at.microsecond == 10200


@pytest.mark.parametrize(("name", "cls"), sorted(EVENT_CLASSES.items()))
def test_incoming_event_of_every_event_type(name, cls):
    payload = {"chat_id": "C", "thread_id": "T", "event": _load("events", name)}
    parsed = parse_payload("incoming_event", payload)
    assert isinstance(parsed, w.IncomingEvent)
    assert type(parsed.event) is cls
    assert parsed.event.id == _load("events", name)["id"]


def test_event_fields_of_each_type():
    file = FileEvent.model_validate(_load("events", "file.json"))
    assert (file.url, file.content_type, file.size, file.width) == (
        "https://example.com/image25.png",
        "image/png",
        123444,
        640,
    )
    rich = RichMessageEvent.model_validate(_load("events", "richMessage.json"))
    assert rich.template_id == "cards"
    assert [b.postback_id for b in rich.elements[0].buttons] == [
        "action_yes",
        "action_no",
        "action_call",
    ]
    system = SystemMessageEvent.model_validate(_load("events", "systemMessage.json"))
    assert system.system_message_type == "routing.assigned"
    assert system.author_id is None
    assert system.text_vars == {"agent": "John Doe"}
    form = FilledFormEvent.model_validate(_load("events", "filledForm.json"))
    assert form.fields[0]["answer"] == "Thomas Anderson"
    custom = CustomEvent.model_validate(_load("events", "custom.json"))
    assert custom.content == {"custom": {"nested": "json"}}


def test_unknown_event_type_falls_back_and_keeps_everything():
    event = {"id": "E1", "type": "hologram", "author_id": "a@x", "beam": {"power": 9}}
    parsed = parse_payload("incoming_event", {"chat_id": "C", "thread_id": "T", "event": event})
    assert isinstance(parsed, w.IncomingEvent)
    assert isinstance(parsed.event, UnknownEvent)
    assert parsed.event.type == "hologram"
    assert parsed.event.author_id == "a@x"
    assert parsed.event.model_extra == {"beam": {"power": 9}}


def test_unknown_fields_are_kept_everywhere():
    document = _webhook("incoming_event")
    document["brand_new_envelope_field"] = 1
    document["payload"]["brand_new_payload_field"] = [1, 2]
    document["payload"]["event"]["brand_new_event_field"] = {"x": True}
    envelope = WebhookEnvelope.model_validate(document)
    payload = envelope.parsed_payload()
    assert envelope.model_extra == {"brand_new_envelope_field": 1}
    assert isinstance(payload, w.IncomingEvent)
    assert payload.model_extra == {"brand_new_payload_field": [1, 2]}
    assert payload.event.model_extra is not None
    assert payload.event.model_extra["brand_new_event_field"] == {"x": True}


def test_chat_deactivated_with_and_without_user():
    sample = _webhook("chat_deactivated")["payload"]
    parsed = parse_payload("chat_deactivated", sample)
    assert isinstance(parsed, w.ChatDeactivated)
    assert parsed.user_id == "b7eff798-f8df-4364-8059-649c35c9ed0c"
    by_router = parse_payload("chat_deactivated", {"chat_id": "C", "thread_id": "T"})
    assert isinstance(by_router, w.ChatDeactivated)
    assert by_router.user_id is None


def test_chat_transferred_documented_sample_with_queue():
    parsed = parse_payload("chat_transferred", _webhook("chat_transferred")["payload"])
    assert isinstance(parsed, w.ChatTransferred)
    assert parsed.reason == "manual"
    assert parsed.requester_id == "jones@example.com"
    assert parsed.transferred_to.group_ids == [19]
    assert parsed.transferred_to.agent_ids == ["smith@example.com"]
    assert parsed.queue is not None
    assert (parsed.queue.position, parsed.queue.wait_time) == (42, 1337)
    assert parsed.queue.queued_at is not None


def test_chat_transferred_without_thread_agents_or_queue():
    parsed = parse_payload(
        "chat_transferred",
        {"chat_id": "C", "reason": "unassigned", "transferred_to": {"group_ids": [3]}},
    )
    assert isinstance(parsed, w.ChatTransferred)
    assert parsed.thread_id is None
    assert parsed.transferred_to.agent_ids == []
    assert parsed.queue is None
    bare = parse_payload("chat_transferred", {"chat_id": "C", "reason": "assigned"})
    assert isinstance(bare, w.ChatTransferred)
    assert bare.transferred_to.group_ids == []


def test_chat_access_updated():
    parsed = parse_payload("chat_access_updated", _webhook("chat_access_updated")["payload"])
    assert isinstance(parsed, w.ChatAccessUpdated)
    assert (parsed.id, parsed.access.group_ids) == ("PJ0MRSHTDG", [0, 1])


@pytest.mark.parametrize(("user_file", "cls"), [("agent.json", Agent), ("customer.json", Customer)])
def test_user_added_to_chat(user_file, cls):
    payload = _webhook("user_added_to_chat")["payload"]
    payload["user"] = _load("users", user_file)
    payload["user_type"] = cls.model_fields["type"].default
    parsed = parse_payload("user_added_to_chat", payload)
    assert isinstance(parsed, w.UserAddedToChat)
    assert type(parsed.user) is cls
    assert parsed.user_type == payload["user_type"]
    assert parsed.requester_id == "smith@example.com"


def test_user_of_unknown_type_is_kept():
    payload = {"chat_id": "C", "user": {"id": "x", "type": "ghost", "aura": 1}, "reason": "manual"}
    parsed = parse_payload("user_added_to_chat", payload)
    assert isinstance(parsed, w.UserAddedToChat)
    assert isinstance(parsed.user, UnknownUser)
    assert parsed.user.model_extra == {"aura": 1}


def test_user_removed_from_chat():
    parsed = parse_payload("user_removed_from_chat", _webhook("user_removed_from_chat")["payload"])
    assert isinstance(parsed, w.UserRemovedFromChat)
    assert (parsed.user_id, parsed.reason) == ("agent@example.com", "manual")


def test_incoming_rich_message_postback():
    payload = _webhook("incoming_rich_message_postback")["payload"]
    parsed = parse_payload("incoming_rich_message_postback", payload)
    assert isinstance(parsed, w.IncomingRichMessagePostback)
    assert parsed.postback.id == "action_yes"
    assert parsed.postback.toggled is True
    assert parsed.postback.ecommerce == {
        "product_id": "12345",
        "option_id": "red-xl",
        "quantity": 2,
    }


def test_events_marked_as_seen():
    parsed = parse_payload("events_marked_as_seen", _webhook("events_marked_as_seen")["payload"])
    assert isinstance(parsed, w.EventsMarkedAsSeen)
    assert parsed.seen_up_to is not None
    assert parsed.seen_up_to.year == 2017


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("accepting chats", "accepting_chats"),
        ("accepting_chats", "accepting_chats"),
        ("not accepting chats", "not_accepting_chats"),
        ("not_accepting_chats", "not_accepting_chats"),
        ("offline", "offline"),
    ],
)
def test_routing_status_set_accepts_both_spellings(given, normalised):
    payload = copy.deepcopy(_webhook("routing_status_set")["payload"])
    payload["status"] = given
    parsed = parse_payload("routing_status_set", payload)
    assert isinstance(parsed, w.RoutingStatusSet)
    assert (parsed.agent_id, parsed.status) == ("agent1@example.com", normalised)


def test_thread_tagged_and_properties_updated():
    tagged = parse_payload("thread_tagged", _webhook("thread_tagged")["payload"])
    assert isinstance(tagged, w.ThreadTagged)
    updated = parse_payload(
        "chat_properties_updated", _webhook("chat_properties_updated")["payload"]
    )
    assert isinstance(updated, w.ChatPropertiesUpdated)
    assert updated.chat_id == "PJ0MRSHTDG"


def test_unmodelled_action_is_none():
    assert parse_payload("agent_created", {"id": "x"}) is None
    assert parse_payload("no_such_action", "not even an object") is None


def test_modelled_action_missing_its_keys_is_a_validation_error():
    with pytest.raises(pydantic.ValidationError):
        parse_payload("incoming_event", {"thread_id": "T"})


def test_envelope_without_additional_data_and_secret_hidden():
    document = _webhook("chat_transferred")  # the docs' sample has no additional_data
    assert "additional_data" not in document
    envelope = WebhookEnvelope.model_validate({**document, "secret_key": "top-secret"})
    assert envelope.additional_data == {}
    assert "top-secret" not in repr(envelope)


def test_chat_and_thread_structure_samples():
    chat = Chat.model_validate(_load("structures", "chat.json"))
    assert chat.threads[0].id == "QA37PVJ75B"
    assert isinstance(chat.threads[0].events[0], FilledFormEvent)
    assert chat.model_extra == {
        "properites": {"property_namespace": {"property_name": "property_value"}}
    }
    assert chat.user("smith@example.com") is not None
    thread = Thread.model_validate(_load("structures", "thread.json"))
    assert thread.tags == ["sales"]


# -- secret check ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected", "result"),
    [
        ("s3cret", "s3cret", True),
        ("s3cret", "s3cret!", False),
        ("S3CRET", "s3cret", False),
        ("", "s3cret", False),
        (None, "s3cret", False),
        ("", "", False),
        (None, "", False),
        ("żółw", "żółw", True),
    ],
)
def test_secret_matches(given, expected, result):
    assert secret_matches(given, expected) is result


def test_secret_check_uses_a_constant_time_compare_on_bytes(monkeypatch):
    calls: list[tuple[Any, Any]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(w.hmac, "compare_digest", spy)
    assert secret_matches("abc", "abc")
    assert not secret_matches(None, "abc")
    assert calls == [(b"abc", b"abc"), (b"", b"abc")]
