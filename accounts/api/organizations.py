"""The organization your credential is bound to."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import serializers as s
from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required as _principal
from accounts.ratelimits.tiers import organization_limits
from accounts.selectors import (
    organization_get,
)


class OrgCurrentApi(APIView):
    """The organization your credential is bound to, with its tier's limits."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=s.OrganizationSerializer, tags=["organizations"])
    def get(self, request: Request) -> Response:
        org = organization_get(organization_id=_principal(request).organization_id)
        body = {
            "id": org.id,
            "name": org.name,
            "slug": org.slug,
            "tier": org.tier,
            "limits": organization_limits(org),
        }
        return Response(s.OrganizationSerializer(body).data)
