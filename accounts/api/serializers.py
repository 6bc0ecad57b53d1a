"""What the identity API reads and writes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Group, Membership, Role, Session
from accounts.roles import PERMISSIONS


class TokenObtainSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=254, help_text="Username or email address.")
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    org = serializers.CharField(
        max_length=64, required=False, help_text="Organization slug or id; default: your first."
    )


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds the access token is valid.")
    session_id = serializers.UUIDField()


class TokenRefreshSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(max_length=4096)


class OrgSwitchSerializer(serializers.Serializer[Any]):
    org = serializers.CharField(max_length=64, help_text="Organization slug or id.")


class OrganizationBriefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    tier = serializers.CharField()


class MeSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    username = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    organization = OrganizationBriefSerializer()
    role = serializers.CharField()
    groups = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())


class SessionSerializer(serializers.ModelSerializer[Session]):
    current = serializers.SerializerMethodField()
    organization = serializers.CharField(source="organization.slug", read_only=True)

    class Meta:
        model = Session
        fields = [
            "id",
            "kind",
            "organization",
            "created_at",
            "last_activity",
            "ip",
            "user_agent",
            "device",
            "current",
        ]
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        return str(session.id) == self.context.get("current_session_id")


class RevokeAllSerializer(serializers.Serializer[Any]):
    keep_current = serializers.BooleanField(default=True)


class RevokedCountSerializer(serializers.Serializer[Any]):
    revoked = serializers.IntegerField()


class LimitsSerializer(serializers.Serializer[Any]):
    requests_per_minute = serializers.IntegerField()
    max_file_size_bytes = serializers.IntegerField()
    uploads_per_day = serializers.IntegerField()


class OrganizationSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()
    tier = serializers.CharField()
    limits = LimitsSerializer()


class MemberSerializer(serializers.ModelSerializer[Membership]):
    user_id = serializers.UUIDField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    groups = serializers.SerializerMethodField()
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "name", "role", "groups", "joined_at"]
        read_only_fields = fields

    def get_groups(self, membership: Membership) -> list[str]:
        return [group.name for group in membership.groups.all()]


class MemberUpdateSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    groups = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give a role, groups, or both.")
        return attrs


class GroupSerializer(serializers.ModelSerializer[Group]):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["id", "name", "permissions", "members", "created_at"]
        read_only_fields = fields

    def get_members(self, group: Group) -> list[str]:
        return sorted(str(m.user_id) for m in group.members.all())


class GroupWriteSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,64}$", max_length=64)
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=PERMISSIONS), max_length=len(PERMISSIONS)
    )
    members = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=1000)
