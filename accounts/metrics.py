"""Identity's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

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
    "Sign-in attempts, by outcome (success, failure, locked, mfa_success, mfa_failure).",
    ["outcome"],
)
AUTH_FAILURES = Counter(
    "vantage_auth_failures_total",
    "Requests refused during authentication, by problem code.",
    ["code"],
)
AUTHZ_DECISIONS = Counter(
    "vantage_authz_decisions_total",
    "Authorization decisions, by where they came from (l1, cache, db, remote) and the outcome.",
    ["source", "outcome"],
)
PERMISSION_CACHE_HITS = Counter(
    "vantage_auth_permission_cache_hits_total",
    "Authorization decisions made from a cached member view, by layer "
    "(l1: this process's memory, shared: the shared cache).",
    ["layer"],
)
PERMISSION_CACHE_MISSES = Counter(
    "vantage_auth_permission_cache_misses_total",
    "Authorization decisions the permission cache could not answer (read from the database, "
    "or asked of the remote decision point).",
)
# Each decision source's counter, bound once: one dictionary read a decision.
PERMISSION_CACHE_RESULTS = {
    "l1": PERMISSION_CACHE_HITS.labels(layer="l1"),
    "cache": PERMISSION_CACHE_HITS.labels(layer="shared"),
    "db": PERMISSION_CACHE_MISSES,
    "remote": PERMISSION_CACHE_MISSES,
}
AUTHZ_DECISION_SECONDS = Histogram(
    "vantage_authz_decision_seconds",
    "Time to reach an authorization decision once the principal is known.",
    buckets=(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
)
AUTHZ_REMOTE_REQUESTS = Counter(
    "vantage_authz_remote_requests_total",
    "Questions to the remote decision point, by outcome (answered, failed, rejected while open).",
    ["outcome"],
)
AUTHZ_BREAKER_STATE = Gauge(
    "vantage_authz_breaker_state",
    "The remote decision point's circuit breaker: 0 closed, 1 half-open, 2 open.",
    multiprocess_mode="mostrecent",
)
AUTHZ_BREAKER_TRANSITIONS = Counter(
    "vantage_authz_breaker_transitions_total",
    "Circuit breaker state changes seen by a process, by the state entered.",
    ["state"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "vantage_rate_limit_rejections_total",
    "Requests refused with 429, by tier and by the window that was full "
    "(principal, organization, client, or the daily upload quota).",
    ["tier", "reason"],
)
RATE_LIMIT_FALLBACKS = Counter(
    "vantage_rate_limit_fallbacks_total",
    "Requests counted in process memory because Redis could not be reached.",
)

CACHE_INVALIDATIONS_DEFERRED = Counter(
    "vantage_auth_cache_invalidations_deferred_total",
    "Cache invalidations that failed and were kept in the database to replay.",
)
CACHE_INVALIDATIONS_REPLAYED = Counter(
    "vantage_auth_cache_invalidations_replayed_total",
    "Deferred cache invalidations replayed once the cache was reachable again.",
)
