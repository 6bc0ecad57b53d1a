"""The identity API: sign-in, tokens, sessions, the current organization, its members and groups."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required
from accounts.errors import PermissionDenied
from accounts.identity.principal import Principal
from accounts.models import Session, User
from accounts.ratelimits.limits import RateLimitRule
from accounts.ratelimits.tiers import organization_limits
from accounts.selectors import (
    group_get,
    group_list,
    member_get,
    member_list,
    principal_organization,
    session_list,
)
from accounts.services import organizations as org_services
from accounts.services import sessions as session_services
from config.errors import NotFound

_principal = principal_required


def _user(principal: Principal) -> User:
    if principal.user_id is None:
        raise PermissionDenied("Only people have sessions and a profile; use a user's token.")
    return User.objects.get(id=principal.user_id)


def _token_pair(sign_in: session_services.SignIn) -> Response:
    tokens = sign_in.tokens
    body = {
        "access": tokens["access"],
        "refresh": tokens["refresh"],
        "token_type": "Bearer",
        "expires_in": tokens["expires_in"],
        "session_id": str(sign_in.session.id),
    }
    return Response(s.TokenPairSerializer(body).data, headers={"Cache-Control": "no-store"})


AUTH_RATE_LIMIT = RateLimitRule(group="auth")


class TokenObtainApi(APIView):
    """Sign in with a username (or email) and password; open a session in one organization."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # Sign-ins and refreshes are counted per client address, apart from other calls.
    rate_limit = AUTH_RATE_LIMIT

    @extend_schema(request=s.TokenObtainSerializer, responses=s.TokenPairSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.TokenObtainSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sign_in = session_services.auth_login(
            login=data.validated_data["username"],
            password=data.validated_data["password"],
            org=data.validated_data.get("org"),
        )
        return _token_pair(sign_in)


class TokenRefreshApi(APIView):
    """Spend the refresh token for a new pair; reusing a spent one ends the session."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # Sign-ins and refreshes are counted per client address, apart from other calls.
    rate_limit = AUTH_RATE_LIMIT

    @extend_schema(request=s.TokenRefreshSerializer, responses=s.TokenPairSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.TokenRefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _token_pair(session_services.auth_refresh(refresh=data.validated_data["refresh"]))


def _current_session(principal: Principal) -> Session:
    session = (
        Session.objects.select_related("organization").filter(id=principal.session_id).first()
        if principal.session_id
        else None
    )
    if session is None:
        raise NotFound("This credential is not tied to a session.")
    return session


class LogoutApi(APIView):
    """End the current session: its access and refresh tokens are refused from now on."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        session = _current_session(_principal(request))
        session_services.session_revoke(session=session, reason="logout")
        return Response(status=204)


class MeApi(APIView):
    """Who you are, in which organization, with which role, groups and permissions."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.MeSerializer, tags=["auth"])
    def get(self, request: Request) -> Response:
        principal = _principal(request)
        user = _user(principal)
        body = {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "name": user.name,
            "organization": {
                "id": principal.organization_id,
                "name": principal.organization_name,
                "tier": principal.organization_tier,
            },
            "role": principal.role,
            "groups": sorted(principal.groups),
            "permissions": sorted(principal.permissions),
        }
        return Response(s.MeSerializer(body).data)


class OrgSwitchApi(APIView):
    """Move this session to another organization you belong to; returns a new token pair."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=s.OrgSwitchSerializer, responses=s.TokenPairSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.OrgSwitchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = _current_session(_principal(request))
        return _token_pair(
            session_services.org_switch(session=session, org=data.validated_data["org"])
        )


class SessionCollectionApi(APIView):
    """Your live sessions on every device, the current one marked."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.SessionSerializer(many=True), tags=["auth"])
    def get(self, request: Request) -> Response:
        principal = _principal(request)
        sessions = session_list(user_id=_user(principal).id)
        context = {"current_session_id": principal.session_id}
        return Response(s.SessionSerializer(sessions, many=True, context=context).data)


class SessionDetailApi(APIView):
    required_permission = ANY_PRINCIPAL

    @extend_schema(responses={204: None}, tags=["auth"])
    def delete(self, request: Request, session_id: str) -> Response:
        """End one of your sessions."""
        principal = _principal(request)
        session = session_list(user_id=_user(principal).id).filter(id=session_id).first()
        if session is None:
            raise NotFound("You have no live session with that id.")
        session_services.session_revoke(session=session, reason="revoked_by_user")
        return Response(status=204)


class SessionRevokeAllApi(APIView):
    """End all your sessions, by default except this one."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=s.RevokeAllSerializer, responses=s.RevokedCountSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.RevokeAllSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = _principal(request)
        keep = principal.session_id if data.validated_data["keep_current"] else None
        revoked = session_services.sessions_revoke_all(
            user=_user(principal),
            reason="revoked_by_user",
            keep_session_id=keep,
        )
        return Response({"revoked": revoked})


class OrgCurrentApi(APIView):
    """The organization your credential is bound to, with its tier's limits."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.OrganizationSerializer, tags=["organizations"])
    def get(self, request: Request) -> Response:
        org = principal_organization(_principal(request))
        body = {"id": org.id, "name": org.name, "slug": org.slug, "tier": org.tier,
                "limits": organization_limits(org)}  # fmt: skip
        return Response(s.OrganizationSerializer(body).data)


class MemberCollectionApi(APIView):
    # Members' names and addresses: not for guests, nor for tokens without this scope.
    required_permission = {"GET": "member:read"}

    @extend_schema(responses=s.MemberSerializer(many=True), tags=["organizations"])
    def get(self, request: Request) -> Response:
        """The organization's members, with their role and groups; people join by invitation."""
        members = member_list(organization_id=_principal(request).organization_id)
        return Response(s.MemberSerializer(members, many=True).data)


class MemberDetailApi(APIView):
    required_permission = {"PATCH": "org:admin", "DELETE": "org:admin"}

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberSerializer,
                   tags=["organizations"])  # fmt: skip
    def patch(self, request: Request, user_id: str) -> Response:
        """Change a member's role or groups; effective on their next request."""
        principal = _principal(request)
        membership = member_get(principal, user_id)
        data = s.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org_services.member_update(
            membership=membership,
            role=data.validated_data.get("role"),
            groups=data.validated_data.get("groups"),
        )
        return Response(s.MemberSerializer(member_get(principal, user_id)).data)

    @extend_schema(responses={204: None}, tags=["organizations"])
    def delete(self, request: Request, user_id: str) -> Response:
        """Remove a member; their sessions in this organization end now."""
        org_services.member_remove(membership=member_get(_principal(request), user_id))
        return Response(status=204)


class GroupCollectionApi(APIView):
    required_permission = {"GET": "org:admin", "POST": "org:admin"}

    @extend_schema(responses=s.GroupSerializer(many=True), tags=["organizations"])
    def get(self, request: Request) -> Response:
        """The organization's groups and the permissions each grants."""
        groups = group_list(organization_id=_principal(request).organization_id)
        return Response(s.GroupSerializer(groups, many=True).data)

    @extend_schema(request=s.GroupWriteSerializer, responses={201: s.GroupSerializer},
                   tags=["organizations"])  # fmt: skip
    def post(self, request: Request) -> Response:
        """Create a group granting permissions to its members."""
        data = s.GroupWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = org_services.group_create(
            organization=principal_organization(_principal(request)),
            name=data.validated_data["name"],
            permissions=data.validated_data["permissions"],
            members=data.validated_data.get("members", []),
        )
        return Response(s.GroupSerializer(group_get(_principal(request), str(group.id))).data,
                        status=201)  # fmt: skip


class GroupDetailApi(APIView):
    required_permission = {"PATCH": "org:admin", "DELETE": "org:admin"}

    @extend_schema(request=s.GroupWriteSerializer(partial=True), responses=s.GroupSerializer,
                   tags=["organizations"])  # fmt: skip
    def patch(self, request: Request, group_id: str) -> Response:
        """Rename a group, or change its permissions or members."""
        principal = _principal(request)
        group = group_get(principal, group_id)
        data = s.GroupWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values: dict[str, Any] = data.validated_data
        org_services.group_update(
            group=group,
            name=values.get("name"),
            permissions=values.get("permissions"),
            members=values.get("members"),
        )
        return Response(s.GroupSerializer(group_get(principal, group_id)).data)

    @extend_schema(responses={204: None}, tags=["organizations"])
    def delete(self, request: Request, group_id: str) -> Response:
        """Delete a group; its members lose what it granted on their next request."""
        org_services.group_delete(group=group_get(_principal(request), group_id))
        return Response(status=204)
