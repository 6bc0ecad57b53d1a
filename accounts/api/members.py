"""The organization's members: list them, change their role or groups, remove them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.permissions import principal_required as _principal
from accounts.selectors import (
    member_get,
    member_list,
)
from accounts.services import organizations as org_services


class MemberCollectionApi(APIView):
    # Members' names and addresses: not for guests, nor for tokens without this scope.
    required_permission = "member:read"

    @extend_schema(responses=s.MemberSerializer(many=True), tags=["organizations"])
    def get(self, request: Request) -> Response:
        """The organization's members, with their role and groups; people join by invitation."""
        members = member_list(organization_id=_principal(request).organization_id)
        return Response(s.MemberSerializer(members, many=True).data)


class MemberUpdateApi(APIView):
    required_permission = "org:admin"
    step_up = True

    @extend_schema(
        request=s.MemberUpdateSerializer, responses=s.MemberSerializer, tags=["organizations"]
    )
    def patch(self, request: Request, user_id: str) -> Response:
        """Change a member's role or groups; effective on their next request."""
        principal = _principal(request)
        membership = member_get(organization_id=principal.organization_id, user_id=user_id)
        data = s.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org_services.member_update(
            membership=membership,
            role=data.validated_data.get("role"),
            groups=data.validated_data.get("groups"),
        )
        return Response(
            s.MemberSerializer(
                member_get(organization_id=principal.organization_id, user_id=user_id)
            ).data
        )


class MemberRemoveApi(APIView):
    required_permission = "org:admin"

    @extend_schema(responses={204: None}, tags=["organizations"])
    def delete(self, request: Request, user_id: str) -> Response:
        """Remove a member; their sessions in this organization end now."""
        org_services.member_remove(
            membership=member_get(
                organization_id=_principal(request).organization_id, user_id=user_id
            )
        )
        return Response(status=204)
