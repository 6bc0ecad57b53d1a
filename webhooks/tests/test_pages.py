"""The webhooks pages: register (secret shown once), change, ping, rotate, resend, delete."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from config.testing.http import html, post, signed_in_browser
from config.testing.webhook_receiver import WebhookReceiver
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import PUBLIC_ADDRESS, RECEIVER_HOST, deliveries_run, endpoint_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_dns(resolver: dict[str, list[str]]) -> dict[str, list[str]]:
    resolver["hooks.example.com"] = [PUBLIC_ADDRESS]
    return resolver


def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(
    admin: Any, public_dns: Any
) -> None:
    browser = signed_in_browser("alice")

    response = post(
        browser,
        "/webhooks/",
        {
            "url": "https://hooks.example.com/in",
            "description": "CI",
            "event_types": ["job.failed", "token.expiring"],
        },
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in html(response)
    assert endpoint.event_types == ["job.failed", "token.expiring"]
    listing = browser.get("/webhooks/")
    assert "https://hooks.example.com/in" in html(listing)
    detail = browser.get(f"/webhooks/{endpoint.id}/")
    assert detail.status_code == 200
    assert endpoint.secret not in html(detail)


def test_a_refused_address_is_said_beside_the_form(admin: Any, public_dns: Any) -> None:
    browser = signed_in_browser("alice")

    response = post(
        browser, "/webhooks/", {"url": "https://10.0.0.1/in", "event_types": ["job.failed"]}
    )

    assert response.status_code == 400
    assert "a private address" in html(response)
    assert not WebhookEndpoint.objects.exists()


def test_members_below_admin_are_not_offered_the_pages(org: Any, member: Any) -> None:
    endpoint = endpoint_for(org)
    browser = signed_in_browser("bob")

    assert browser.get("/webhooks/").status_code == 403
    assert browser.get(f"/webhooks/{endpoint.id}/").status_code == 403
    assert post(browser, f"/webhooks/{endpoint.id}/delete/").status_code == 403
    assert 'href="/webhooks/"' not in html(browser.get("/"))
    assert WebhookEndpoint.objects.exists()


def test_another_organizations_endpoint_is_not_found(other_org: Any, admin: Any) -> None:
    endpoint = endpoint_for(other_org)
    browser = signed_in_browser("alice")

    assert browser.get(f"/webhooks/{endpoint.id}/").status_code == 404
    assert post(browser, f"/webhooks/{endpoint.id}/delete/").status_code == 404
    assert WebhookEndpoint.objects.exists()


def test_the_endpoint_page_disables_rotates_pings_resends_and_deletes(
    org: Any, admin: Any, receiver: WebhookReceiver
) -> None:
    endpoint = endpoint_for(org, url=f"https://{RECEIVER_HOST}:{receiver.port}/in")
    old_secret = endpoint.secret
    browser = signed_in_browser("alice")
    page = f"/webhooks/{endpoint.id}/"

    assert post(browser, f"{page}ping/").status_code == 302
    deliveries_run()
    log = html(browser.get(page))
    assert "ping" in log
    assert "succeeded 204" in log

    rotated = post(browser, f"{page}rotate/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old_secret
    assert endpoint.secret in html(rotated)

    delivery = WebhookDelivery.objects.get()
    assert post(browser, f"{page}deliveries/{delivery.id}/resend/").status_code == 302
    assert WebhookDelivery.objects.count() == 2

    assert post(browser, f"{page}change/", {"enabled": "false"}).status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert webhook_event_emit(organization_id=org.id, type="job.failed", data={}) is None

    assert post(browser, f"{page}delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.endpoint_deleted").exists()
