"""Webhooks in Django admin: endpoints registered, read and managed through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_site import each_through_service
from config.errors import DomainError
from config.request_context import bind_staff
from webhooks.events import EVENT_TYPES, SUBSCRIBABLE
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import delivery_resend, endpoint_ping
from webhooks.services.endpoints import (
    endpoint_create,
    endpoint_room_checked,
    endpoint_update,
    endpoint_url_checked,
    url_origin,
)

_ADD_FIELDS = ["organization", "url", "description", "event_types"]


class EndpointAddForm(forms.ModelForm):
    """A new endpoint: where, what for, and which events; checked as the API checks it."""

    url = forms.URLField(assume_scheme="https", max_length=2000)
    event_types = forms.MultipleChoiceField(
        choices=[(name, f"{name}: {EVENT_TYPES[name]}") for name in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = _ADD_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            if cleaned.get("organization") is not None:
                endpoint_room_checked(organization=cleaned["organization"])
            if cleaned.get("url"):
                endpoint_url_checked(cleaned["url"])
        except DomainError as exc:
            raise ValidationError(exc.detail) from exc
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = (
        "url",
        "organization",
        "is_enabled",
        "event_types",
        "failing_since",
        "disabled_reason",
        "created_at",
    )
    list_filter = ("is_enabled", "organization")
    search_fields = ("url", "description", "organization__slug")
    # The signing secrets sign the organization's events: never shown after they are issued.
    exclude = ("secret", "previous_secret")
    readonly_fields = [
        f.name for f in WebhookEndpoint._meta.fields if f.name not in ("secret", "previous_secret")
    ]
    actions = ["disable_endpoints", "enable_endpoints", "ping_endpoints"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = EndpointAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _ADD_FIELDS if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Register a new endpoint through the service; its signing secret is shown this once."""
        if change:
            return  # every field is read-only: changes go through the actions
        bind_staff(request)
        data = form.cleaned_data
        issued = endpoint_create(
            organization=data["organization"],
            url=data["url"],
            event_types=list(data["event_types"]),
            description=data.get("description", ""),
            created_by_id=request.user.pk,
        )
        obj.pk = issued.endpoint.pk
        self.message_user(
            request,
            f"The signing secret of the endpoint at {url_origin(issued.endpoint.url)}, shown "
            f"this once (give it to the receiver now; rotate it if it is lost): {issued.secret}",
            messages.WARNING,
        )

    def _enabled_set(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], enabled: bool
    ) -> None:
        bind_staff(request)
        for endpoint in queryset:
            endpoint_update(endpoint=endpoint, enabled=enabled)
        self.message_user(request, f"{queryset.count()} endpoint(s) updated.")

    @admin.action(description="Disable the selected endpoints")
    def disable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._enabled_set(request, queryset, False)

    @admin.action(description="Enable the selected endpoints")
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        self._enabled_set(request, queryset, True)

    @admin.action(description="Send a test ping to the selected endpoints")
    def ping_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        each_through_service(
            self, request, queryset, lambda endpoint: endpoint_ping(endpoint=endpoint)
        )
        self.message_user(request, "Pings queued; see each endpoint's deliveries.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = (
        "attempt",
        "outcome",
        "status_code",
        "duration_ms",
        "error",
        "next_attempt_at",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("event__id", "endpoint__url")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["resend_deliveries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Send the selected deliveries' events again")
    def resend_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = each_through_service(
            self,
            request,
            queryset.select_related("endpoint"),
            lambda delivery: delivery_resend(delivery=delivery),
        )
        self.message_user(request, f"{sent} deliveries queued again.")
