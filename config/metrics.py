"""Prometheus metrics of the platform, and the /metrics endpoint.

Metrics are kept in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): every
gunicorn worker and Celery process writes its own file and the endpoint
adds them up, so one scrape sees the whole host.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

ERRORS = Counter(
    "vantage_http_errors_total",
    "Error responses, by problem code and status.",
    ["code", "status"],
)
TASKS = Counter(
    "vantage_celery_tasks_total",
    "Celery tasks finished, by task name and final state.",
    ["task", "state"],
)
TASK_DURATION = Histogram(
    "vantage_celery_task_duration_seconds",
    "Time spent running a Celery task, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


def scrape_token_matches(authorization: str) -> bool:
    """Tell whether an Authorization header carries the configured scrape token."""
    expected = settings.METRICS_TOKEN
    scheme, _, presented = authorization.partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


class HasScrapeToken(BasePermission):
    """Allow a request bearing `Authorization: Bearer $METRICS_TOKEN`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return scrape_token_matches(request.headers.get("Authorization", ""))


class MetricsApi(APIView):
    """Prometheus text exposition of every process's metrics on this host."""

    permission_classes = [HasScrapeToken]

    @extend_schema(
        summary="Prometheus metrics",
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)},
        tags=["operations"],
    )
    def get(self, request: Request) -> HttpResponse:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
