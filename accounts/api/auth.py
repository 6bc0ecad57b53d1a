"""Signing in and out: token pairs, refresh, logout, who you are, switching organization."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.ratelimits.limits import RateLimitRule
from accounts.selectors import (
    person_required,
    session_current_get,
)
from accounts.services import sessions as session_services


def token_pair_response(sign_in: session_services.SignIn) -> Response:
    """Return the token pair of a sign-in, never cached."""
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
    """Sign in with a username (or email) and password; open a session in one organization.

    A person with a second factor gets no tokens yet: the answer is 401 MFA_REQUIRED with a
    `challenge` (valid `expires_in` seconds) and the `methods` they may prove, to send to
    POST /api/v1/auth/token/mfa.
    """

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
        return token_pair_response(sign_in)


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
        return token_pair_response(
            session_services.auth_refresh(refresh=data.validated_data["refresh"])
        )


class LogoutApi(APIView):
    """End the current session: its access and refresh tokens are refused from now on."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True

    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def post(self, request: Request) -> Response:
        session = session_current_get(session_id=_principal(request).session_id)
        session_services.session_revoke(session=session, reason="logout")
        return Response(status=204)


class MeApi(APIView):
    """Who you are, in which organization, with which role, groups and permissions."""

    required_permission = ANY_PRINCIPAL
    mfa_enrolment_allowed = True

    @extend_schema(responses=s.MeSerializer, tags=["auth"])
    def get(self, request: Request) -> Response:
        # Answered from the request's principal, read in the credential's round
        # trip: no query. A change to the profile renews the member views.
        principal = _principal(request)
        body = {
            "id": person_required(user_id=principal.user_id),
            "username": principal.display,
            "email": principal.email,
            "name": principal.name,
            "organization": {
                "id": principal.organization_id,
                "name": principal.organization_name,
                "tier": principal.organization_tier,
            },
            "role": principal.role,
            "groups": sorted(principal.groups),
            "permissions": sorted(principal.permissions),
        }
        return Response(body)


class OrgSwitchApi(APIView):
    """Move this session to another organization you belong to; returns a new token pair."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(request=s.OrgSwitchSerializer, responses=s.TokenPairSerializer, tags=["auth"])
    def post(self, request: Request) -> Response:
        data = s.OrgSwitchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = session_current_get(session_id=_principal(request).session_id)
        return token_pair_response(
            session_services.org_switch(session=session, org=data.validated_data["org"])
        )
