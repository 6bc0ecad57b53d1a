"""The service token API: list, create, narrow, rotate, revoke, usage (`token:manage`); a
token about itself; the organization's token policy (`org:admin`)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import token_serializers as s
from accounts.api.serializers import RevokedCountSerializer
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.errors import PermissionDenied
from accounts.identity.principal import Principal
from accounts.models import ServiceToken
from accounts.selectors import (
    organization_get,
    token_creator_get,
    token_get,
    token_list,
    token_presenting_get,
    token_usage_series,
)
from accounts.services import token_expiry, token_policies, token_rotations
from accounts.services import tokens as token_services
from accounts.tokens.usage import token_usage_flush
from config.pagination import PageNumberPagination, paginated

MANAGE = "token:manage"
NO_STORE = {"Cache-Control": "no-store"}


class TokenListApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses=paginated(s.ServiceTokenSerializer), tags=["tokens"])
    def get(self, request: Request) -> Response:
        """The organization's service tokens, newest first; never a secret."""
        paginator = PageNumberPagination()
        page = (
            paginator.paginate_queryset(
                token_list(organization_id=_principal(request).organization_id), request, view=self
            )
            or []
        )
        return paginator.get_paginated_response(s.ServiceTokenSerializer(page, many=True).data)


class TokenCreateApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(
        request=s.TokenCreateSerializer, responses={201: s.IssuedTokenSerializer}, tags=["tokens"]
    )
    def post(self, request: Request) -> Response:
        """Create a token; the response holds its secret, shown this once."""
        data = s.TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = _principal(request)
        issued = token_services.token_create(
            organization=organization_get(organization_id=principal.organization_id),
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            expires_in_days=data.validated_data.get("expires_in_days"),
            created_by=token_creator_get(user_id=principal.user_id, token_id=principal.id),
            grantor=principal,
            allowed_ips=data.validated_data.get("allowed_ips", ()),
        )
        issued.token.token = issued.secret  # type: ignore[attr-defined]
        body = s.IssuedTokenSerializer(issued.token).data
        return Response(body, status=201, headers=NO_STORE)


class TokenDetailApi(APIView):
    required_permission = MANAGE

    @extend_schema(responses=s.ServiceTokenSerializer, tags=["tokens"])
    def get(self, request: Request, token_id: str) -> Response:
        """One service token."""
        return Response(
            s.ServiceTokenSerializer(
                token_get(organization_id=_principal(request).organization_id, token_id=token_id)
            ).data
        )


class TokenUpdateApi(APIView):
    required_permission = MANAGE
    # It may widen what the token may do from where: its allow-list.
    step_up = True

    @extend_schema(
        request=s.TokenUpdateSerializer, responses=s.ServiceTokenSerializer, tags=["tokens"]
    )
    def patch(self, request: Request, token_id: str) -> Response:
        """Rename a token, narrow its scopes or replace its allow-list; effective on its next
        request."""
        token = token_get(organization_id=_principal(request).organization_id, token_id=token_id)
        data = s.TokenUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = token_services.token_update(
            token=token,
            name=data.validated_data.get("name"),
            scopes=data.validated_data.get("scopes"),
            allowed_ips=data.validated_data.get("allowed_ips"),
        )
        return Response(s.ServiceTokenSerializer(token).data)


class TokenRevokeApi(APIView):
    required_permission = MANAGE

    @extend_schema(request=s.TokenRevokeSerializer, responses={204: None}, tags=["tokens"])
    def delete(self, request: Request, token_id: str) -> Response:
        """Revoke a token: refused from its next request on."""
        token = token_get(organization_id=_principal(request).organization_id, token_id=token_id)
        data = s.TokenRevokeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token_services.token_revoke(token=token, reason=data.validated_data.get("reason", ""))
        return Response(status=204)


class TokenRotateApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(
        request=s.TokenRotateSerializer, responses={201: s.IssuedTokenSerializer}, tags=["tokens"]
    )
    def post(self, request: Request, token_id: str) -> Response:
        """A successor with the same name and scopes; the old token works for the grace period."""
        token = token_get(organization_id=_principal(request).organization_id, token_id=token_id)
        data = s.TokenRotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = token_rotations.token_rotate(
            token=token,
            grace_seconds=data.validated_data["grace_seconds"],
            grantor=_principal(request),
        )
        issued.token.token = issued.secret  # type: ignore[attr-defined]
        return Response(s.IssuedTokenSerializer(issued.token).data, status=201, headers=NO_STORE)


class TokenRevokeAllApi(APIView):
    required_permission = MANAGE
    step_up = True

    @extend_schema(
        request=s.RevokeAllTokensSerializer,
        tags=["tokens"],
        responses={200: RevokedCountSerializer},
    )
    def post(self, request: Request) -> Response:
        """Emergency: revoke every token of the organization now."""
        data = s.RevokeAllTokensSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revoked = token_services.tokens_revoke_all(
            organization=organization_get(organization_id=_principal(request).organization_id),
            reason=data.validated_data["reason"],
        )
        return Response({"revoked": revoked})


class TokenUsageApi(APIView):
    required_permission = MANAGE

    @extend_schema(parameters=[s.DaysSerializer], responses=s.TokenUsageSerializer, tags=["tokens"])
    def get(self, request: Request, token_id: str) -> Response:
        """Uses of the token: the total, the last use, and requests per day (UTC)."""
        token = token_get(organization_id=_principal(request).organization_id, token_id=token_id)
        query = s.DaysSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        days = query.validated_data.get("days", 30)
        token_usage_flush([str(token.id)])
        token.refresh_from_db()
        since = timezone.now().date() - timedelta(days=days - 1)
        [series] = token_usage_series(
            organization_id=token.organization_id, token_ids=[token.id], since=since, days=days
        ).values()
        daily = [
            {"date": since + timedelta(days=n), "requests": requests}
            for n, requests in enumerate(series)
        ]
        body = {
            "usage_count": token.usage_count,
            "last_used_at": token.last_used_at,
            "daily": daily,
        }
        return Response(s.TokenUsageSerializer(body).data)


class TokenExpiringApi(APIView):
    required_permission = MANAGE

    @extend_schema(
        parameters=[s.DaysSerializer],
        tags=["tokens"],
        responses=s.ServiceTokenSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """Active tokens expiring within `days` (default 7), soonest first."""
        query = s.DaysSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tokens = token_expiry.tokens_expiring(
            organization=organization_get(organization_id=_principal(request).organization_id),
            days=query.validated_data.get("days", 7),
        )
        return Response(s.ServiceTokenSerializer(tokens, many=True).data)


def _presenting_token(principal: Principal) -> ServiceToken:
    if principal.kind != "service_token":
        raise PermissionDenied(
            "Only a service token has a record of its own here; a person reads theirs at "
            "/api/v1/auth/me."
        )
    return token_presenting_get(token_id=principal.id)


class TokenSelfApi(APIView):
    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.SelfTokenSerializer, tags=["tokens"])
    def get(self, request: Request) -> Response:
        """The presenting service token's own record, and what it may do at this moment."""
        principal = _principal(request)
        token = _presenting_token(principal)
        context = {"permissions": principal.permissions}
        return Response(s.SelfTokenSerializer(token, context=context).data)


class TokenSelfRotateApi(APIView):
    required_permission = "token:self_rotate"

    @extend_schema(
        request=s.TokenRotateSerializer, responses={201: s.IssuedTokenSerializer}, tags=["tokens"]
    )
    def post(self, request: Request) -> Response:
        """The presenting token's successor (its secret shown once); the presenting token
        works until its grace ends. Only the newest token of a rotation family may rotate:
        an older one presented here revokes the whole family."""
        presented_at = time.time()
        principal = _principal(request)
        _presenting_token(principal)
        data = s.TokenRotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = token_rotations.token_self_rotate(
            principal=principal,
            grace_seconds=data.validated_data["grace_seconds"],
            presented_at=presented_at,
        )
        issued.token.token = issued.secret  # type: ignore[attr-defined]
        return Response(s.IssuedTokenSerializer(issued.token).data, status=201, headers=NO_STORE)


class TokenPolicyDetailApi(APIView):
    required_permission = "org:admin"

    @extend_schema(responses=s.TokenPolicySerializer, tags=["tokens"])
    def get(self, request: Request) -> Response:
        """The organization's token policy: bounds on every token created or rotated."""
        organization = organization_get(organization_id=_principal(request).organization_id)
        return Response(token_policies.token_policy(organization))


class TokenPolicyUpdateApi(APIView):
    required_permission = "org:admin"
    step_up = True

    @extend_schema(
        request=s.TokenPolicySerializer, responses=s.TokenPolicySerializer, tags=["tokens"]
    )
    def patch(self, request: Request) -> Response:
        """Change the token policy; it applies to tokens created or rotated from now on."""
        data = s.TokenPolicySerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        organization = token_policies.token_policy_set(
            organization=organization_get(organization_id=_principal(request).organization_id),
            **data.validated_data,
        )
        return Response(token_policies.token_policy(organization))
