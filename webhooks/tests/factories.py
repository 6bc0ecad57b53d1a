"""Shared builders of the webhooks tests: endpoints, and due deliveries run as a worker would."""

from typing import Any, cast

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.tests.factories import OrganizationFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import delivery_attempt
from webhooks.signing import secret_generate

ENDPOINTS = "/api/v1/webhooks/endpoints"
RECEIVER_HOST = "hooks.example.test"
# A public address (TEST-NET-free, globally routable) the table resolver may answer.
PUBLIC_ADDRESS = "93.184.215.14"


class EndpointFactory(DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = f"https://{RECEIVER_HOST}/hooks"
    description = "test receiver"
    event_types = factory.LazyFunction(lambda: ["job.succeeded", "job.failed"])
    secret = factory.LazyFunction(secret_generate)


def endpoint_for(organization: Any, **fields: Any) -> WebhookEndpoint:
    """Return a new endpoint of the organization, the factory's defaults under `fields`."""
    return cast(WebhookEndpoint, EndpointFactory(organization=organization, **fields))


def endpoint_url(endpoint_id: Any) -> str:
    return f"{ENDPOINTS}/{endpoint_id}"


def deliveries_run() -> list[str]:
    """Make one attempt of every due pending delivery, as workers would; return the outcomes."""
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("created_at")
    return [delivery_attempt(delivery_id) for delivery_id in due.values_list("id", flat=True)]
