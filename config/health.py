"""Health of the app's dependencies: GET /health and GET /api/v1/health."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.celery import app as celery_app

logger = structlog.get_logger("vantage.health")


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    try:
        if cache.get(key) != "ok":
            raise RuntimeError("the cache did not return the value just written")
    finally:
        cache.delete(key)


def _broker() -> None:
    with celery_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=0)


# A failing database makes the app unhealthy; a failing cache or broker only
# degrades it (requests are still served, jobs wait to be queued).
CHECKS: dict[str, tuple[Callable[[], None], bool]] = {
    "database": (_database, True),
    "cache": (_cache, False),
    "broker": (_broker, False),
}


def _run(name: str, probe: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        latency = round((time.perf_counter() - started) * 1000, 2)
        # The exception's class only: its message may hold a host or a password.
        logger.warning("health_check_failed", check=name, error_type=type(exc).__name__)
        return {"status": "error", "latency_ms": latency, "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def health_report() -> tuple[dict[str, Any], int]:
    """Run every check and return the report with its HTTP status."""
    checks = {name: _run(name, probe) for name, (probe, _critical) in CHECKS.items()}
    failed = {name for name, result in checks.items() if result["status"] != "ok"}
    if any(CHECKS[name][1] for name in failed):
        return {"status": "unhealthy", "checks": checks}, 503
    return {"status": "degraded" if failed else "healthy", "checks": checks}, 200


class CheckResultSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["ok", "error"])
    latency_ms = serializers.FloatField()
    error = serializers.CharField(required=False, help_text="The failure's class, when failed.")


class ChecksSerializer(serializers.Serializer[Any]):
    database = CheckResultSerializer()
    cache = CheckResultSerializer()
    broker = CheckResultSerializer()


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    checks = ChecksSerializer()


class VersionedHealthSerializer(HealthSerializer):
    version = serializers.CharField()


class HealthApi(APIView):
    """Liveness and readiness: the database, the cache and the broker, with their latency."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_limit = None  # probes and load balancers ask often
    include_version = False

    @extend_schema(
        summary="Health of the app and its dependencies",
        responses={200: HealthSerializer, 503: HealthSerializer},
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        report, status = health_report()
        if self.include_version:
            report["version"] = settings.VERSION
        return Response(report, status=status, headers={"Cache-Control": "no-store"})


class VersionedHealthApi(HealthApi):
    include_version = True

    @extend_schema(
        summary="Health of the app and its dependencies, with the app's version",
        responses={200: VersionedHealthSerializer, 503: VersionedHealthSerializer},
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
