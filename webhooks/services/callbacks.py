"""Callbacks: an endpoint named for one job's outcome, whatever it subscribed to."""

from __future__ import annotations

import uuid

from django.db import transaction

from config.errors import InvalidInput
from config.ids import Id
from webhooks.models import WebhookCallback, WebhookEndpoint

JOB = "job"


def callback_endpoint_checked(
    *, organization_id: Id, endpoint_id: Id, field: str = "webhook_endpoint"
) -> WebhookEndpoint:
    """Return the organization's enabled endpoint of that id, or refuse the request (400)."""
    endpoint = WebhookEndpoint.objects.filter(
        organization_id=organization_id, id=endpoint_id
    ).first()
    if endpoint is None:
        raise InvalidInput("This organization has no webhook endpoint with that id.", field=field)
    if not endpoint.is_enabled:
        raise InvalidInput("That webhook endpoint is disabled.", field=field)
    return endpoint


@transaction.atomic
def job_callback_register(*, job_id: uuid.UUID | str, endpoint: WebhookEndpoint) -> None:
    """Send the job's outcome event (job.succeeded or job.failed) to `endpoint` too."""
    WebhookCallback.objects.create(endpoint=endpoint, resource_type=JOB, resource_id=str(job_id))


def job_callback_endpoint(*, job_id: uuid.UUID | str) -> uuid.UUID | None:
    """Return the id of the endpoint named for the job's outcome, if one was."""
    return (
        WebhookCallback.objects.filter(resource_type=JOB, resource_id=str(job_id))
        .values_list("endpoint_id", flat=True)
        .first()
    )
