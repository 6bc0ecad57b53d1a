"""The invitation API: an organization's admins invite, list and revoke (`org:admin`); the
invited person lists, accepts and declines what is addressed to their account's email."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import invitation_serializers as s
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.selectors import (
    invitation_get,
    invitation_list,
    invitation_received_get,
    invitations_received,
    organization_get,
    person_get,
    token_creator_get,
)
from accounts.services import invitations as invitation_services
from config.pagination import PageNumberPagination, paginated

ADMIN = "org:admin"


class InvitationListApi(APIView):
    required_permission = ADMIN

    @extend_schema(
        parameters=[s.InvitationFilterSerializer],
        tags=["organizations"],
        responses=paginated(s.InvitationSerializer),
    )
    def get(self, request: Request) -> Response:
        """The organization's invitations, newest first; `status` picks one kind."""
        query = s.InvitationFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        invitations = invitation_list(
            organization_id=_principal(request).organization_id,
            status=query.validated_data.get("status"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(invitations, request, view=self) or []
        return paginator.get_paginated_response(s.InvitationSerializer(page, many=True).data)


class InvitationCreateApi(APIView):
    required_permission = ADMIN
    step_up = True

    @extend_schema(
        request=s.InvitationCreateSerializer,
        responses={202: s.InvitationSerializer},
        tags=["organizations"],
    )
    def post(self, request: Request) -> Response:
        """Invite an email address; the same answer whether or not it has an account."""
        data = s.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = _principal(request)
        invitation = invitation_services.invitation_create(
            organization=organization_get(organization_id=principal.organization_id),
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            groups=data.validated_data.get("groups", []),
            invited_by=token_creator_get(user_id=principal.user_id, token_id=principal.id),
        )
        fresh = invitation_get(
            organization_id=principal.organization_id, invitation_id=str(invitation.id)
        )
        return Response(s.InvitationSerializer(fresh).data, status=202)


class InvitationDetailApi(APIView):
    required_permission = ADMIN

    @extend_schema(responses={204: None}, tags=["organizations"])
    def delete(self, request: Request, invitation_id: str) -> Response:
        """Revoke a pending invitation: it can no longer be accepted."""
        invitation = invitation_get(
            organization_id=_principal(request).organization_id, invitation_id=invitation_id
        )
        invitation_services.invitation_revoke(invitation=invitation)
        return Response(status=204)


class ReceivedInvitationCollectionApi(APIView):
    """Your open invitations: those addressed to your account's email address."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.ReceivedInvitationSerializer(many=True), tags=["invitations"])
    def get(self, request: Request) -> Response:
        invitations = invitations_received(user=person_get(user_id=_principal(request).user_id))
        return Response(s.ReceivedInvitationSerializer(invitations, many=True).data)


class ReceivedInvitationAcceptApi(APIView):
    """Accept an invitation: you join its organization with its role and groups."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=None, responses=s.ReceivedInvitationSerializer, tags=["invitations"])
    def post(self, request: Request, invitation_id: str) -> Response:
        user = person_get(user_id=_principal(request).user_id)
        invitation = invitation_received_get(user=user, invitation_id=invitation_id)
        invitation_services.invitation_accept(invitation=invitation, user=user)
        invitation.refresh_from_db(fields=["state", "responded_at"])
        return Response(s.ReceivedInvitationSerializer(invitation).data)


class ReceivedInvitationDeclineApi(APIView):
    """Decline an invitation; the inviting organization sees that it was declined."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=None, responses={204: None}, tags=["invitations"])
    def post(self, request: Request, invitation_id: str) -> Response:
        user = person_get(user_id=_principal(request).user_id)
        invitation = invitation_received_get(user=user, invitation_id=invitation_id)
        invitation_services.invitation_decline(invitation=invitation, user=user)
        return Response(status=204)
