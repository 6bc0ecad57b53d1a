"""The images API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authorization import ANY_PRINCIPAL
from accounts.permissions import principal_required
from accounts.services.quotas import uploads_today


class DimensionsSerializer(serializers.Serializer[Any]):
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ImageLimitsSerializer(serializers.Serializer[Any]):
    tier = serializers.CharField()
    rate_limit_per_minute = serializers.IntegerField()
    max_file_size_bytes = serializers.IntegerField()
    daily_limit = serializers.IntegerField()
    used_today = serializers.IntegerField(help_text="Uploads since 00:00 UTC.")
    remaining_today = serializers.IntegerField()
    min_dimensions = DimensionsSerializer()
    max_dimensions = DimensionsSerializer()
    allowed_types = serializers.ListField(child=serializers.CharField())


class ImageLimitsApi(APIView):
    """Your organization's tier, its limits, and today's uploads against its quota."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=ImageLimitsSerializer, tags=["images"])
    def get(self, request: Request) -> Response:
        principal = principal_required(request)
        limits = principal.limits
        used = uploads_today(organization_id=principal.organization_id)
        smallest, largest = settings.IMAGE_MIN_DIMENSION, settings.IMAGE_MAX_DIMENSION
        body = {
            "tier": principal.organization_tier,
            "rate_limit_per_minute": limits["requests_per_minute"],
            "max_file_size_bytes": limits["max_file_size_bytes"],
            "daily_limit": limits["uploads_per_day"],
            "used_today": used,
            "remaining_today": max(0, limits["uploads_per_day"] - used),
            "min_dimensions": {"width": smallest, "height": smallest},
            "max_dimensions": {"width": largest, "height": largest},
            "allowed_types": list(settings.IMAGE_ALLOWED_TYPES),
        }
        return Response(ImageLimitsSerializer(body).data)
