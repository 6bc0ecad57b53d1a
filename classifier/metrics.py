"""The classifier's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

PROVIDER_SECONDS = Histogram(
    "vantage_classifier_provider_seconds",
    "Time a provider took to classify a batch, successful or not, by provider.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROVIDER_CALLS = Counter(
    "vantage_classifier_provider_calls_total",
    "Batches given to a provider, by provider and outcome (success, transient, permanent).",
    ["provider", "outcome"],
)
IMAGES_CLASSIFIED = Counter(
    "vantage_classifier_images_total",
    "Images classified, by the provider that answered.",
    ["provider"],
)
PROVIDER_STATE = Gauge(
    "vantage_classifier_provider_state",
    "A provider's health as last seen by a process: 0 healthy, 1 degraded, 2 unhealthy.",
    ["provider"],
    multiprocess_mode="mostrecent",
)
PROVIDER_TRANSITIONS = Counter(
    "vantage_classifier_provider_transitions_total",
    "Provider health changes made by a process, by provider and the state entered.",
    ["provider", "state"],
)
FAILOVERS = Counter(
    "vantage_classifier_failovers_total",
    "Times the chain passed a provider over for the next, by provider and reason "
    "(failed, ejected).",
    ["provider", "reason"],
)
HEALTH_CACHE_FAILURES = Counter(
    "vantage_classifier_health_cache_failures_total",
    "Health record operations the shared cache failed (process memory served instead).",
)
