"""The audit event as the API shows it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from audit.models import AuditEvent


class ActorSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(source="actor_type")
    id = serializers.CharField(source="actor_id")
    display = serializers.CharField(source="actor_display")


class ResourceSerializer(serializers.Serializer[Any]):
    type = serializers.CharField(source="resource_type")
    id = serializers.CharField(source="resource_id")


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = ActorSerializer(source="*")
    resource = ResourceSerializer(source="*")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "organization_id",
            "actor",
            "action",
            "resource",
            "outcome",
            "ip",
            "user_agent",
            "request_id",
            "details",
            "hash",
            "prev_hash",
        ]
        read_only_fields = fields


class AuditEventFilterSerializer(serializers.Serializer[Any]):
    action = serializers.CharField(required=False, max_length=64)
    actor_type = serializers.ChoiceField(choices=AuditEvent.ActorType.choices, required=False)
    actor_id = serializers.CharField(required=False, max_length=64)
    outcome = serializers.ChoiceField(choices=AuditEvent.Outcome.choices, required=False)
    resource_type = serializers.CharField(required=False, max_length=64)
    resource_id = serializers.CharField(required=False, max_length=128)
    request_id = serializers.CharField(required=False, max_length=128)
    since = serializers.DateTimeField(required=False, help_text="Events at or after (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Events before (ISO 8601).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "must be later than since"})
        return attrs


class AuditExportSerializer(AuditEventFilterSerializer):
    format = serializers.ChoiceField(choices=["jsonl", "csv"], default="jsonl")


class FiguresQuerySerializer(serializers.Serializer[Any]):
    hours = serializers.IntegerField(
        min_value=1, max_value=720, default=24, help_text="The window, in hours up to now."
    )


class FigureSerializer(serializers.Serializer[Any]):
    action = serializers.CharField()
    outcome = serializers.CharField()
    count = serializers.IntegerField()


class OrganizationFiguresSerializer(serializers.Serializer[Any]):
    organization_id = serializers.UUIDField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    events = FigureSerializer(many=True)
