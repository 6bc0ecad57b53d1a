"""Webhooks' Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERY_ATTEMPTS = Counter(
    "vantage_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (succeeded, failed, refused).",
    ["outcome"],
)
DELIVERIES_FINISHED = Counter(
    "vantage_webhook_deliveries_total",
    "Webhook deliveries finished, by status (succeeded, or failed once the tries ran out).",
    ["status"],
)
ATTEMPT_SECONDS = Histogram(
    "vantage_webhook_attempt_seconds",
    "How long one webhook attempt took, from connecting to the end of the answer read.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
BACKLOG = Gauge(
    "vantage_webhook_backlog",
    "Webhook deliveries pending (waiting for an attempt or a retry), as last counted by the "
    "periodic check.",
    multiprocess_mode="mostrecent",
)
ENDPOINTS_DISABLED = Counter(
    "vantage_webhook_endpoints_disabled_total",
    "Webhook endpoints disabled automatically after failing for too long.",
)
