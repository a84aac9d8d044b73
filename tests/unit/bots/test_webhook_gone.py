"""A bot endpoint that answers 410 Gone: the gateway stops POSTing to it and says so
(a WARNING, `hitl_bot_webhook_gone` 1, dead rows with a clear last error), probes it
again after a while, and clears all of that once it accepts an event."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_webhook_sender import Receiver, make_row, make_sink

from livechat_hitl import metrics
from livechat_hitl.clock import FrozenClock
from livechat_hitl.outbox.sinks import Delivered, Failed


def gone_gauge() -> float:
    return float(metrics.BOT_WEBHOOK_GONE._value.get())


async def test_after_410_events_are_not_posted_and_the_operator_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FrozenClock(datetime.now(UTC))
    receiver = Receiver(httpx.Response(410, text="this bot was deleted"))
    sink = make_sink(receiver, clock, gone_recheck=timedelta(minutes=10))
    with caplog.at_level(logging.WARNING, logger="livechat_hitl.bots.webhook_sender"):
        first = await sink.deliver(make_row())
        assert isinstance(first, Failed)
        assert not first.retryable
        assert "410 Gone" in first.error
        assert gone_gauge() == 1
        clock.advance(60)
        second = await sink.deliver(make_row())
    assert isinstance(second, Failed)
    assert not second.retryable
    assert second.error.startswith("not sent: the bot endpoint answered 410 Gone at ")
    assert len(receiver.requests) == 1  # the second event was not POSTed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "410 Gone" in warnings[0].getMessage()
    assert "outbox retry --all-dead" in warnings[0].getMessage()


async def test_the_endpoint_is_probed_again_later_and_a_2xx_clears_the_mark() -> None:
    clock = FrozenClock(datetime.now(UTC))
    receiver = Receiver(httpx.Response(410), httpx.Response(200))
    sink = make_sink(receiver, clock, gone_recheck=timedelta(minutes=10))
    assert isinstance(await sink.deliver(make_row()), Failed)
    clock.advance(minutes=11)
    assert isinstance(await sink.deliver(make_row()), Delivered)
    assert len(receiver.requests) == 2
    assert sink.gone_since is None
    assert gone_gauge() == 0
