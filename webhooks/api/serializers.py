"""What the webhooks API reads and writes; a secret only in the answer that issues it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from webhooks.events import EVENT_TYPES, SUBSCRIBABLE
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    enabled = serializers.BooleanField(source="is_enabled", read_only=True)
    secret_rotation_ends_at = serializers.DateTimeField(
        source="previous_secret_expires_at",
        read_only=True,
        allow_null=True,
        help_text="Until then the previous secret signs too (a second signature in the header).",
    )
    failing_since = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Since when every attempt has failed; null once one succeeds.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "secret_rotation_ends_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class IssuedEndpointSerializer(EndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_...`): shown once, never again."
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


def _event_types_field(*, required: bool) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=list(SUBSCRIBABLE)),
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        required=required,
        help_text="The event types this endpoint receives.",
    )


class EndpointCreateSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=2000, help_text="An https:// address.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = _event_types_field(required=True)


class EndpointUpdateSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=2000, required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    event_types = _event_types_field(required=False)
    enabled = serializers.BooleanField(required=False)


class AttemptSerializer(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = [
            "attempt",
            "outcome",
            "status_code",
            "duration_ms",
            "error",
            "response_body",
            "next_attempt_at",
            "created_at",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    event_id = serializers.UUIDField(read_only=True, help_text="Sent as the `webhook-id` header.")
    event_type = serializers.CharField(source="event.type", read_only=True)
    payload = serializers.JSONField(source="event.payload", read_only=True)
    log = AttemptSerializer(source="attempt_log", many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
            "payload",
            "log",
        ]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


class EventTypeSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    description = serializers.CharField()
    subscribable = serializers.BooleanField()


def event_type_rows() -> list[dict[str, Any]]:
    """Every event type with its description, as the event types operation lists them."""
    return [
        {"name": name, "description": text, "subscribable": name in SUBSCRIBABLE}
        for name, text in EVENT_TYPES.items()
    ]
