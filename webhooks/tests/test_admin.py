"""Webhooks in Django admin: read, never a secret; actions go through the services."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.tests.factories import PUBLIC_ADDRESS, RECEIVER_HOST, endpoint_for

pytestmark = pytest.mark.django_db


def test_staff_see_endpoints_but_never_their_secrets(staff_browser: Any, org: Any) -> None:
    endpoint = endpoint_for(org)

    listing = staff_browser.get("/admin/webhooks/webhookendpoint/")
    page = staff_browser.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")

    assert listing.status_code == 200
    assert endpoint.url.encode() in listing.content
    assert page.status_code == 200
    assert endpoint.secret.encode() not in page.content


ADD = "/admin/webhooks/webhookendpoint/add/"


def test_staff_register_an_endpoint_and_see_its_secret_once(
    staff_browser: Any, org: Any, resolver: dict[str, list[str]]
) -> None:
    resolver[RECEIVER_HOST] = [PUBLIC_ADDRESS]
    form = {
        "organization": str(org.pk),
        "url": f"https://{RECEIVER_HOST}/in",
        "description": "the depot",
        "event_types": ["job.failed", "token.expiring"],
    }

    answer = staff_browser.post(ADD, form, follow=True)

    endpoint = WebhookEndpoint.objects.get(organization=org)
    assert (endpoint.url, endpoint.event_types) == (form["url"], ["job.failed", "token.expiring"])
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret.encode() in answer.content  # shown this once
    assert endpoint.secret.encode() not in staff_browser.get(answer.request["PATH_INFO"]).content
    created = AuditEvent.objects.get(action="webhook.endpoint_created")
    assert created.actor_display == "root"


def test_staff_are_refused_an_address_that_is_not_public_as_the_api_refuses_it(
    staff_browser: Any, org: Any, resolver: dict[str, list[str]]
) -> None:
    resolver[RECEIVER_HOST] = ["10.0.0.7"]
    form = {"organization": str(org.pk), "url": f"https://{RECEIVER_HOST}/in"}

    answer = staff_browser.post(ADD, {**form, "event_types": ["job.failed"]})

    assert answer.status_code == 200  # the form again, with the reason
    assert b"private" in answer.content
    assert not WebhookEndpoint.objects.exists()


def test_disabling_in_admin_goes_through_the_service(staff_browser: Any, org: Any) -> None:
    endpoint = endpoint_for(org)

    response = staff_browser.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "disable_endpoints", "_selected_action": [str(endpoint.pk)]},
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert AuditEvent.objects.filter(action="webhook.endpoint_disabled").exists()


def test_a_ping_from_admin_queues_a_delivery(staff_browser: Any, org: Any) -> None:
    endpoint = endpoint_for(org)

    staff_browser.post(
        "/admin/webhooks/webhookendpoint/",
        {"action": "ping_endpoints", "_selected_action": [str(endpoint.pk)]},
    )

    assert WebhookDelivery.objects.get().event.type == "ping"
    page = staff_browser.get("/admin/webhooks/webhookdelivery/")
    assert page.status_code == 200
