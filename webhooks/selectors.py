"""Reading an organization's webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound
from config.ids import Id
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_list(*, organization_id: Id) -> QuerySet[WebhookEndpoint]:
    """The organization's endpoints, newest first."""
    return WebhookEndpoint.objects.filter(organization_id=organization_id).order_by(
        "-created_at", "id"
    )


def endpoint_get(*, organization_id: Id, endpoint_id: Id) -> WebhookEndpoint:
    """Return an endpoint of the organization, or raise 404."""
    endpoint = endpoint_list(organization_id=organization_id).filter(id=endpoint_id).first()
    if endpoint is None:
        raise NotFound("This organization has no webhook endpoint with that id.")
    return endpoint


def delivery_list(
    *, endpoint: WebhookEndpoint, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The endpoint's deliveries, newest first, each with its event and its attempts."""
    deliveries = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("attempt"))
        )
        .order_by("-created_at", "id")
    )
    return deliveries.filter(status=status) if status else deliveries


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: Id) -> WebhookDelivery:
    """Return one delivery of the endpoint, or raise 404."""
    delivery = delivery_list(endpoint=endpoint).filter(id=delivery_id).first()
    if delivery is None:
        raise NotFound("This endpoint has no delivery with that id.")
    return delivery
