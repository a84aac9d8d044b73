"""Prometheus metrics of the gateway (exported by the HTTP layer at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_CLAIMS = Counter(
    "hitl_outbox_claims_total",
    "Claims the relay made, by whether they found rows to deliver (found, empty); "
    "handed counts rows the transaction that wrote them handed to the relay unclaimed.",
    ["result"],
)
OUTBOX_DELIVERIES = Counter(
    "hitl_outbox_deliveries_total",
    "Outbox delivery attempts by target and outcome "
    "(delivered, retry, dead, stale = its change lost a race and it is retried, "
    "unrecorded = the store failed and the lease will run out).",
    ["target", "outcome"],
)

OUTBOX_DELIVERY_SECONDS = Histogram(
    "hitl_outbox_delivery_seconds",
    "Time a sink took for one delivery attempt.",
    ["target"],
)

OUTBOX_SINK_ERRORS = Counter(
    "hitl_outbox_sink_errors_total",
    "Deliveries where the sink raised instead of returning an outcome (a bug or an "
    "unexpected peer answer); each is retried like a retryable failure.",
    ["target"],
)

HANDOFFS = Gauge("hitl_handoffs", "Handoffs by state (read from the store at scrape).", ["state"])

OUTBOX_BACKLOG = Gauge(
    "hitl_outbox_backlog", "Outbox rows not yet delivered (pending), read at scrape."
)

TIME_TO_ASSIGN_SECONDS = Histogram(
    "hitl_time_to_assign_seconds",
    "From handoff start to the first agent assignment.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)

WEBHOOK_INGEST_SECONDS = Histogram(
    "hitl_livechat_webhook_ingest_seconds",
    "Time to acknowledge a LiveChat webhook delivery (recorded durably), by answer.",
    ["status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)

BOT_WEBHOOK_GONE = Gauge(
    "hitl_bot_webhook_gone",
    "1 while the bot's webhook endpoint is taken as gone (it answered 410 Gone): events "
    "are not POSTed to it and their outbox rows are dead; they stay on GET /v1/events.",
)
