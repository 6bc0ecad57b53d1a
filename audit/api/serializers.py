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
