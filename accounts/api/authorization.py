"""POST /api/v1/authorization/check: the decision point, asked by another service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz.decision_point import Decision, decision_check
from accounts.authz.health import authorization_health
from accounts.authz.permissions import principal_required as _principal
from accounts.caching.invalidations import cache_get_many
from accounts.errors import PermissionDenied
from accounts.identity.principal import (
    generation_key,
    member_key,
    member_view,
    principal_from_view,
)
from accounts.roles import PERMISSIONS
from config.metrics_api import OperatorApi


class CheckSerializer(serializers.Serializer[Any]):
    org_id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    permission = serializers.ChoiceField(choices=PERMISSIONS)


class DecisionSerializer(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    groups = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    # A field may be called "source" here; the stubs mistake it for Field.source.
    source = serializers.ChoiceField(choices=["l1", "cache", "db", "remote"])  # type: ignore[assignment]


def member_decision(*, organization_id: str, user_id: str, permission: str) -> Decision:
    """Decide for a member named by id, reading their permissions like a request would."""
    cached = cache_get_many([generation_key(organization_id), member_key(organization_id, user_id)])
    view, source, generation = member_view(
        organization_id=organization_id, user_id=user_id, cached=cached
    )
    if view["status"] != "ok":
        return Decision(False, (), "not an active member of this organization", source=source)
    subject = principal_from_view(view, source=source, generation=generation)
    # This deployment answers from its own records, whatever it asks for itself.
    return decision_check(
        principal=subject, permission=permission, organization_id=organization_id, backend="local"
    )


class AuthorizationCheckApi(APIView):
    """May this user do this in this organization? Only about the caller's own organization."""

    required_permission = "authz:check"

    @extend_schema(request=CheckSerializer, responses=DecisionSerializer, tags=["authorization"])
    def post(self, request: Request) -> Response:
        data = CheckSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org_id = str(data.validated_data["org_id"])
        if org_id != _principal(request).organization_id:
            raise PermissionDenied("You may ask only about your own organization.")
        decision = member_decision(
            organization_id=org_id,
            user_id=str(data.validated_data["user_id"]),
            permission=data.validated_data["permission"],
        )
        body = {
            "allowed": decision.allowed,
            "groups": list(decision.groups),
            "reason": decision.reason,
            "source": decision.source,
        }
        return Response(DecisionSerializer(body).data)


class BreakerSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=["closed", "open", "half-open"])
    failures = serializers.IntegerField(help_text="Consecutive failures counted so far.")
    threshold = serializers.IntegerField(help_text="Consecutive failures that open the breaker.")
    timeout_seconds = serializers.FloatField(help_text="How long it stays open before a probe.")
    opened_at = serializers.DateTimeField(allow_null=True)


class AuthApiSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(allow_null=True)
    timeout_seconds = serializers.FloatField()
    circuit_breaker = BreakerSerializer()


class TtlConfigSerializer(serializers.Serializer[Any]):
    read_seconds = serializers.IntegerField()
    write_seconds = serializers.IntegerField()
    admin_seconds = serializers.IntegerField()
    denied_seconds = serializers.IntegerField()


class AuthCacheSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    redis_connection = serializers.ChoiceField(
        choices=["connected", "unreachable", "not_configured"]
    )
    redis_error = serializers.CharField(allow_null=True)
    ttl_config = TtlConfigSerializer()


class AuthConfigSerializer(serializers.Serializer[Any]):
    fail_open = serializers.BooleanField()


class AuthorizationHealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    backend = serializers.ChoiceField(choices=["local", "remote"])
    auth_api = AuthApiSerializer()
    cache = AuthCacheSerializer()
    config = AuthConfigSerializer()


class AuthorizationHealthApi(OperatorApi):
    """The authorization subsystem: decision point, circuit breaker and permission cache."""

    @extend_schema(
        summary="Health of the authorization subsystem",
        responses={200: AuthorizationHealthSerializer, 503: AuthorizationHealthSerializer},
        tags=["operations"],
    )
    def get(self, request: Request) -> Response:
        report, status = authorization_health()
        body = AuthorizationHealthSerializer(report).data
        return Response(body, status=status, headers={"Cache-Control": "no-store"})
