"""GET /metrics: every process's metrics on this host, for a scraper with the token.

Metrics are kept in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): every
gunicorn worker and Celery process writes its own file and this view adds
them up, so one scrape sees the whole host. They cover every organization of
the installation, so only the scrape token and staff read them; an
organization's admins read their own figures at /api/v1/orgs/current/metrics.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.authz.permissions import permission_denial_audit, request_principal
from accounts.errors import PermissionDenied
from accounts.models import User

ORGANIZATION_FIGURES_URL = "/api/v1/orgs/current/metrics"


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


class IsStaff(BasePermission):
    """Allow a signed-in person whose account is staff; refuse every other principal (403)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        principal = request_principal(request)
        if principal is None:
            return False  # DRF answers 401 when nobody authenticated
        if principal.kind == "user" and _is_staff(principal.id):
            return True
        permission_denial_audit(principal, "installation:monitor", "not staff", request.path)
        raise PermissionDenied(
            "Installation-wide monitoring is for staff and the scrape token; your "
            f"organization's figures are at {ORGANIZATION_FIGURES_URL}."
        )


def _is_staff(user_id: str) -> bool:
    return User.objects.filter(id=user_id, is_staff=True, is_active=True).exists()


class OperatorApi(APIView):
    """A view about the whole installation: for the scrape token or a staff person only."""

    permission_classes = [HasScrapeToken | IsStaff]
    rate_limit = None  # scrapers ask every few seconds, with the scrape token

    def get_authenticators(self) -> list[Any]:
        # The scrape token is no JWT: let it through authentication untouched.
        request = getattr(self, "request", None)
        if request is not None and scrape_token_matches(request.headers.get("Authorization", "")):
            return []
        return super().get_authenticators()


class MetricsApi(OperatorApi):
    """Prometheus text exposition of every process's metrics on this host."""

    @extend_schema(
        summary="Prometheus metrics",
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)},
        tags=["operations"],
    )
    def get(self, request: Request) -> HttpResponse:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
