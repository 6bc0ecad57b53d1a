"""Webhooks in Django admin: read, never a secret; actions go through the services."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import endpoint_for

pytestmark = pytest.mark.django_db


def test_staff_see_endpoints_but_never_their_secrets(staff_browser: Any, org: Any) -> None:
    endpoint = endpoint_for(org)

    listing = staff_browser.get("/admin/webhooks/webhookendpoint/")
    page = staff_browser.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")

    assert listing.status_code == 200
    assert endpoint.url.encode() in listing.content
    assert page.status_code == 200
    assert endpoint.secret.encode() not in page.content
    assert staff_browser.get("/admin/webhooks/webhookendpoint/add/").status_code == 403


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
