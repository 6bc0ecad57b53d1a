"""Identity's Prometheus metrics."""

from prometheus_client import Counter

CACHE_FAILURES = Counter(
    "vantage_auth_cache_failures_total",
    "Identity cache operations that failed (the database answered instead), by operation.",
    ["operation"],
)
PRINCIPAL_LOOKUPS = Counter(
    "vantage_auth_principal_lookups_total",
    "Member views resolved for a request, by where they came from (cache or db).",
    ["source"],
)
LOGINS = Counter(
    "vantage_auth_logins_total",
    "Sign-in attempts, by outcome (success, failure, locked).",
    ["outcome"],
)
AUTH_FAILURES = Counter(
    "vantage_auth_failures_total",
    "Requests refused during authentication, by problem code.",
    ["code"],
)
