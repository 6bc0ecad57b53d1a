"""What the invitation API reads and writes: never whether an account exists for an address."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import Invitation, Role

STATUSES = [*Invitation.State.values, Invitation.EXPIRED]


class InvitationCreateSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254, help_text="The address to invite.")
    role = serializers.ChoiceField(choices=Role.choices)
    groups = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=100,
        help_text="Names of this organization's groups the person joins on accepting.",
    )


class InvitationFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=STATUSES, required=False)


class _InvitationBaseSerializer(serializers.ModelSerializer[Invitation]):
    groups = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    def get_groups(self, invitation: Invitation) -> list[str]:
        return [group.name for group in invitation.groups.all()]

    def get_status(self, invitation: Invitation) -> str:
        return invitation.status_at(timezone.now())


class InvitationSerializer(_InvitationBaseSerializer):
    """An invitation as its organization's admins see it."""

    invited_by = serializers.CharField(source="invited_by.username", default=None, read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "groups",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "responded_at",
        ]
        read_only_fields = fields


class InvitingOrganizationSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()


class ReceivedInvitationSerializer(_InvitationBaseSerializer):
    """An invitation as the invited person sees it."""

    organization = InvitingOrganizationSerializer(read_only=True)
    invited_by = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "organization",
            "role",
            "groups",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields

    def get_invited_by(self, invitation: Invitation) -> str | None:
        inviter = invitation.invited_by
        return inviter.get_full_name() if inviter else None
