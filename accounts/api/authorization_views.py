"""POST /api/v1/authorization/check: the decision point, asked by another service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.views import _principal
from accounts.authorization import Decision, decision_check
from accounts.errors import PermissionDenied
from accounts.principal import (
    cache_get_many,
    generation_key,
    member_key,
    member_view,
    principal_from_view,
)
from accounts.roles import PERMISSIONS


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
    view, source = member_view(organization_id=organization_id, user_id=user_id, cached=cached)
    if view["status"] != "ok":
        return Decision(False, (), "not an active member of this organization", source=source)
    subject = principal_from_view(view, source=source)
    return decision_check(principal=subject, permission=permission, organization_id=organization_id)


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
        body = {"allowed": decision.allowed, "groups": list(decision.groups),
                "reason": decision.reason, "source": decision.source}  # fmt: skip
        return Response(DecisionSerializer(body).data)
