"""The authorization subsystem's health: decision point, circuit breaker, permission cache."""

from __future__ import annotations

from typing import Any

import pybreaker
import structlog
from django.conf import settings
from django_redis import get_redis_connection

from accounts.authz.decision_cache import ttl_config
from accounts.authz.remote import breaker_status

logger = structlog.get_logger("vantage.health")


def _redis() -> tuple[str, str | None]:
    """Return the shared cache's Redis connection state and, when failing, the error's class."""
    if not settings.REDIS_URL:
        return "not_configured", None
    try:
        get_redis_connection("default").ping()
    except Exception as exc:
        # The class only: the message may hold a host or a password.
        logger.warning("health_check_failed", check="auth_cache", error_type=type(exc).__name__)
        return "unreachable", type(exc).__name__
    return "connected", None


def authorization_health() -> tuple[dict[str, Any], int]:
    """Return the authorization subsystem's report and its HTTP status.

    Unhealthy (503): remote decisions are refused because the breaker is open
    and AUTH_FAIL_OPEN is off. Degraded: the shared cache is unreachable
    (decisions come from the database) or the breaker is not closed.
    """
    remote = settings.AUTHZ_BACKEND == "remote"
    breaker = breaker_status()
    connection, error = _redis()
    status = "healthy"
    if connection == "unreachable" or (remote and breaker["state"] != pybreaker.STATE_CLOSED):
        status = "degraded"
    if remote and breaker["state"] == pybreaker.STATE_OPEN and not settings.AUTH_FAIL_OPEN:
        status = "unhealthy"
    report = {
        "status": status,
        "backend": settings.AUTHZ_BACKEND,
        "auth_api": {
            "url": settings.AUTH_API_URL or None,
            "timeout_seconds": settings.AUTH_API_TIMEOUT,
            "circuit_breaker": breaker,
        },
        "cache": {
            "enabled": settings.AUTH_CACHE_ENABLED,
            "redis_connection": connection,
            "redis_error": error,
            "ttl_config": ttl_config(),
        },
        "config": {"fail_open": settings.AUTH_FAIL_OPEN},
    }
    return report, 503 if status == "unhealthy" else 200
