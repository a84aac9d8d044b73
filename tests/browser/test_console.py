"""The sandbox's agent console in a real browser: a person plays the LiveChat agent.

The sandbox runs as a real process; a bot starts a handoff over the API and listens on
the SSE feed, while chromium accepts the chat, replies and closes it in the console.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.procs import LOOPBACK, Process, Processes, clean_env, free_port, wait_http, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "sandbox-key"
TRANSCRIPT_LINE = "My parcel 77 never arrived."
AGENT_REPLY = "Hello Ada, I am looking at parcel 77 now."
BOT_MESSAGE = "Thank you, I will wait."


@dataclass
class EventFeed:
    """The bot's side: `GET /v1/events` read in a thread, every event kept."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        timeout = httpx.Timeout(10.0, read=60.0)
        try:
            with httpx.stream("GET", self.url, headers=headers, timeout=timeout) as response:
                self.connected.set()
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line.removeprefix("data:").strip())
                        with self._lock:
                            self.events.append(event)
                        if event["type"] == "handoff.closed":
                            return
        except httpx.HTTPError:
            return  # the sandbox stopped

    def of_type(self, event_type: str, handoff_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e for e in self.events if e["type"] == event_type and e["handoff_id"] == handoff_id
            ]


@pytest.fixture
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (make test installs Debian's chromium)"
        print(f"\nskipping browser test: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def sandbox(processes: Processes, tmp_path: Path) -> tuple[str, Process]:
    gateway_port, sim_port = free_port(), free_port()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    process = processes.start(
        "sandbox",
        ["sandbox"],
        clean_env(HITL_PORT=str(gateway_port), HITL_SIMULATOR_PORT=str(sim_port)),
        cwd=cwd,
    )
    process.wait_for_stdout("Then accept, reply and close the chat in the agent console.")
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    wait_http(f"{gateway_url}/healthz", process)
    return gateway_url, process


def test_agent_accepts_replies_and_closes_in_the_console(
    chromium: Any, sandbox: tuple[str, Process], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    gateway_url, process = sandbox
    feed = EventFeed(f"{gateway_url}/v1/events")
    threading.Thread(target=feed.run, name="sse-feed", daemon=True).start()
    assert feed.connected.wait(10), "the SSE feed did not connect"

    api = httpx.Client(
        base_url=gateway_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    created = api.post(
        "/v1/handoffs",
        json={
            "conversation_id": "conv-browser-1",
            "user": {"id": "user-b1", "name": "Ada Lovelace", "email": "ada@example.com"},
            "title": "Lost parcel",
            "transcript": [
                {"role": "user", "text": TRANSCRIPT_LINE},
                {"role": "bot", "text": "I will get you a person."},
            ],
        },
    )
    assert created.status_code == 201, created.text
    handoff_id = created.json()["id"]
    queued = wait_until(
        lambda: (h := api.get(f"/v1/handoffs/{handoff_id}").json())["state"] == "queued" and h,
        what="the handoff to be queued",
        alive=[process],
    )
    chat_id = queued["livechat"]["chat_id"]

    page = chromium.new_page(viewport={"width": 1100, "height": 760})
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(f"{gateway_url}/console/")
    chat = page.locator(f'[data-chat-id="{chat_id}"]')
    expect(chat).to_have_attribute("data-status", "queued")
    expect(chat.locator(".events")).to_contain_text(TRANSCRIPT_LINE)
    expect(chat.locator(".events")).to_contain_text("agents only")

    chat.get_by_role("button", name="Accept").click()
    expect(chat).to_have_attribute("data-status", "assigned")
    wait_until(lambda: feed.of_type("handoff.assigned", handoff_id), what="handoff.assigned on SSE")

    chat.get_by_placeholder("Reply").fill(AGENT_REPLY)
    chat.get_by_role("button", name="Send").click()
    expect(chat.locator(".events")).to_contain_text(AGENT_REPLY)
    message = wait_until(
        lambda: feed.of_type("handoff.message", handoff_id), what="handoff.message on SSE"
    )[0]
    assert message["data"]["message"]["text"] == AGENT_REPLY
    assert message["data"]["agent"]["name"] == "Alice Agent"

    # The bot answers; the console picks it up on its own (auto-refresh).
    posted = api.post(
        f"/v1/handoffs/{handoff_id}/messages", json={"type": "text", "text": BOT_MESSAGE}
    )
    assert posted.status_code == 202, posted.text
    expect(chat.locator(".events")).to_contain_text(BOT_MESSAGE, timeout=10_000)
    page.screenshot(path=str(tmp_path / "console-assigned.png"), full_page=True)

    chat.get_by_role("button", name="Close chat").click()
    expect(chat).to_have_attribute("data-status", "closed")
    closed = wait_until(
        lambda: feed.of_type("handoff.closed", handoff_id), what="handoff.closed on SSE"
    )[0]
    assert closed["data"]["reason"] == "agent_closed"
    final = api.get(f"/v1/handoffs/{handoff_id}").json()
    assert (final["state"], final["close_reason"]) == ("closed", "agent_closed")
    messages = api.get(f"/v1/handoffs/{handoff_id}/messages").json()["items"]
    assert [(m["direction"], m["text"]) for m in messages] == [
        ("to_bot", AGENT_REPLY),
        ("to_agent", BOT_MESSAGE),
    ]
    page.screenshot(path=str(tmp_path / "console-closed.png"), full_page=True)
    print(f"screenshots in {tmp_path}")
    assert page_errors == []
    api.close()
