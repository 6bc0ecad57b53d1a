"""What the service token API reads and writes; never a secret or a digest."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import ServiceToken
from accounts.roles import PERMISSIONS


class ServiceTokenSerializer(serializers.ModelSerializer[ServiceToken]):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    status = serializers.SerializerMethodField()
    revoked_at = serializers.SerializerMethodField()
    grace_until = serializers.SerializerMethodField()

    class Meta:
        model = ServiceToken
        fields = [
            "id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at",
            "last_used_at", "last_used_ip", "usage_count", "status", "revoked_at",
            "revoked_reason", "grace_until", "rotated_from",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, token: ServiceToken) -> str:
        return token.status_at(timezone.now())

    def get_revoked_at(self, token: ServiceToken) -> str | None:
        if token.revoked_at is None or token.revoked_at > timezone.now():
            return None
        return serializers.DateTimeField().to_representation(token.revoked_at)

    def get_grace_until(self, token: ServiceToken) -> str | None:
        if token.revoked_reason != "rotated" or token.revoked_at is None:
            return None
        return serializers.DateTimeField().to_representation(token.revoked_at)


class IssuedTokenSerializer(ServiceTokenSerializer):
    token = serializers.CharField(help_text="The secret: shown once, never again.")

    class Meta(ServiceTokenSerializer.Meta):
        fields = [*ServiceTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=PERMISSIONS), min_length=1, max_length=20
    )
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        required=False,
        help_text="Default 90, or the organization's maximum if lower.",
    )


class TokenUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=PERMISSIONS), min_length=1, required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give a name, scopes, or both.")
        return attrs


class TokenRevokeSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)


class TokenRotateSerializer(serializers.Serializer[Any]):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=86400, default=3600)


class RevokeAllTokensSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=180)


class DaysSerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(min_value=1, max_value=365, required=False)


class UsageDaySerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    requests = serializers.IntegerField()


class TokenUsageSerializer(serializers.Serializer[Any]):
    usage_count = serializers.IntegerField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    daily = UsageDaySerializer(many=True)
