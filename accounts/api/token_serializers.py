"""What the service token API reads and writes; never a secret or a digest."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ServiceToken
from accounts.roles import SCOPES
from accounts.tokens.ip_allow_lists import MAX_ALLOWED_IPS


class ServiceTokenSerializer(serializers.ModelSerializer[ServiceToken]):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    rotated_by = serializers.CharField(
        source="rotated_by_display",
        read_only=True,
        help_text="Who rotated the predecessor into this token (empty for a first token).",
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Client networks the token may be used from; empty: any address.",
    )
    status = serializers.SerializerMethodField()
    revoked_at = serializers.SerializerMethodField()
    grace_until = serializers.SerializerMethodField()

    class Meta:
        model = ServiceToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "usage_count",
            "status",
            "revoked_at",
            "revoked_reason",
            "grace_until",
            "rotated_from",
            "family_id",
            "rotated_by",
            "self_rotated",
            "allowed_ips",
        ]
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
        child=serializers.ChoiceField(choices=SCOPES), min_length=1, max_length=20
    )
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        required=False,
        help_text="Default 90, or the organization's maximum if lower.",
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=64,
        required=False,
        help_text=f"Up to {MAX_ALLOWED_IPS} IPv4/IPv6 addresses or networks (CIDR).",
    )


class TokenUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100, required=False)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=SCOPES), min_length=1, required=False
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=64,
        required=False,
        help_text="The new allow-list, replacing the old one; [] allows any address.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give a name, scopes or allowed_ips to change.")
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


class OrganizationRefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()


class SelfTokenSerializer(ServiceTokenSerializer):
    """The presenting token's record, with what it may do at this moment."""

    organization = serializers.SerializerMethodField()
    effective_permissions = serializers.SerializerMethodField()

    class Meta(ServiceTokenSerializer.Meta):
        fields = [*ServiceTokenSerializer.Meta.fields, "organization", "effective_permissions"]
        read_only_fields = fields

    @extend_schema_field(OrganizationRefSerializer)
    def get_organization(self, token: ServiceToken) -> dict[str, Any]:
        org = token.organization
        return {"id": str(org.id), "slug": org.slug, "name": org.name}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_effective_permissions(self, token: ServiceToken) -> list[str]:
        return sorted(self.context.get("permissions", ()))


class TokenPolicySerializer(serializers.Serializer[Any]):
    max_lifetime_days = serializers.IntegerField(
        min_value=1,
        max_value=365,
        allow_null=True,
        required=False,
        help_text="The longest lifetime a new or rotated token may get; null: the service's.",
    )
    require_allowed_ips = serializers.BooleanField(
        required=False, help_text="Every new or rotated token must have allowed_ips."
    )
    service_max_lifetime_days = serializers.IntegerField(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                "Give max_lifetime_days, require_allowed_ips or both."
            )
        return attrs
