"""Prometheus metrics of the gateway (exported by the HTTP layer at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
