"""The organization's groups and the permissions each grants."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.permissions import principal_required as _principal
from accounts.selectors import (
    group_get,
    group_list,
    organization_get,
)
from accounts.services import organizations as org_services


class GroupListApi(APIView):
    required_permission = "org:admin"

    @extend_schema(responses=s.GroupSerializer(many=True), tags=["organizations"])
    def get(self, request: Request) -> Response:
        """The organization's groups and the permissions each grants."""
        groups = group_list(organization_id=_principal(request).organization_id)
        return Response(s.GroupSerializer(groups, many=True).data)


class GroupCreateApi(APIView):
    required_permission = "org:admin"
    step_up = True

    @extend_schema(
        request=s.GroupWriteSerializer, responses={201: s.GroupSerializer}, tags=["organizations"]
    )
    def post(self, request: Request) -> Response:
        """Create a group granting permissions to its members."""
        data = s.GroupWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = org_services.group_create(
            organization=organization_get(organization_id=_principal(request).organization_id),
            name=data.validated_data["name"],
            permissions=data.validated_data["permissions"],
            members=data.validated_data.get("members", []),
        )
        fresh = group_get(organization_id=group.organization_id, group_id=group.id)
        return Response(s.GroupSerializer(fresh).data, status=201)


class GroupUpdateApi(APIView):
    required_permission = "org:admin"
    step_up = True

    @extend_schema(
        request=s.GroupWriteSerializer(partial=True),
        responses=s.GroupSerializer,
        tags=["organizations"],
    )
    def patch(self, request: Request, group_id: str) -> Response:
        """Rename a group, or change its permissions or members."""
        principal = _principal(request)
        group = group_get(organization_id=principal.organization_id, group_id=group_id)
        data = s.GroupWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values: dict[str, Any] = data.validated_data
        org_services.group_update(
            group=group,
            name=values.get("name"),
            permissions=values.get("permissions"),
            members=values.get("members"),
        )
        return Response(
            s.GroupSerializer(
                group_get(organization_id=principal.organization_id, group_id=group_id)
            ).data
        )


class GroupDeleteApi(APIView):
    required_permission = "org:admin"

    @extend_schema(responses={204: None}, tags=["organizations"])
    def delete(self, request: Request, group_id: str) -> Response:
        """Delete a group; its members lose what it granted on their next request."""
        org_services.group_delete(
            group=group_get(organization_id=_principal(request).organization_id, group_id=group_id)
        )
        return Response(status=204)
