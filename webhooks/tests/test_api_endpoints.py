"""The webhooks API through HTTP: endpoints, secrets, pings, delivery log, resend."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from audit.models import AuditEvent
from config.testing.http import assert_problem
from config.testing.webhook_receiver import Answer, WebhookReceiver
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import (
    ENDPOINTS,
    PUBLIC_ADDRESS,
    RECEIVER_HOST,
    deliveries_run,
    endpoint_for,
    endpoint_url,
)

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
ENDPOINT_FIELDS = {
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
}
NEW = {"url": "https://hooks.example.com/vantage", "event_types": ["job.succeeded", "job.failed"]}


@pytest.fixture
def public_dns(resolver: dict[str, list[str]]) -> dict[str, list[str]]:
    resolver["hooks.example.com"] = [PUBLIC_ADDRESS]
    resolver["other.example.com"] = [PUBLIC_ADDRESS]
    return resolver


def _receiving(org: Any, receiver: WebhookReceiver, **fields: Any) -> WebhookEndpoint:
    return endpoint_for(org, url=f"https://{RECEIVER_HOST}:{receiver.port}/hooks", **fields)


# --- Create and list --------------------------------------------------------------------


def test_an_admin_registers_an_endpoint_and_sees_its_secret_once(
    admin_client: APIClient, org: Any, admin: Any, public_dns: Any
) -> None:
    response = admin_client.post(ENDPOINTS, {**NEW, "description": "CI"}, format="json")

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert SECRET.match(body["secret"])
    assert body["enabled"] is True
    assert body["event_types"] == ["job.failed", "job.succeeded"]
    endpoint = WebhookEndpoint.objects.get(id=body["id"])
    assert (endpoint.organization_id, endpoint.created_by_id) == (org.id, admin.id)
    assert endpoint.secret == body["secret"]
    event = AuditEvent.objects.get(action="webhook.endpoint_created")
    assert body["secret"] not in str(event.details)
    # A path may hold a credential (chat services' webhook URLs do): the audit keeps the origin.
    assert event.details["url"] == "https://hooks.example.com"

    listed = admin_client.get(ENDPOINTS).json()
    assert listed["count"] == 1
    assert set(listed["results"][0]) == ENDPOINT_FIELDS
    assert "secret" not in admin_client.get(endpoint_url(body["id"])).json()


def test_the_endpoint_list_takes_a_few_queries_however_long(
    admin_client: APIClient, org: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(6):
        endpoint_for(org)

    with django_assert_max_num_queries(10):
        body = admin_client.get(ENDPOINTS).json()

    assert body["count"] == 6


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**NEW, "url": "http://hooks.example.com/x"}, "url"),
        ({**NEW, "url": "https://127.0.0.1/x"}, "url"),
        ({**NEW, "url": "https://nowhere.example.com/x"}, "url"),
        ({**NEW, "url": "not a url"}, "url"),
        ({**NEW, "event_types": []}, "event_types"),
        ({**NEW, "event_types": ["job.exploded"]}, "event_types"),
        ({**NEW, "event_types": ["ping"]}, "event_types"),
        ({"url": NEW["url"]}, "event_types"),
    ],
)
def test_a_bad_endpoint_is_refused(
    admin_client: APIClient, public_dns: Any, payload: dict[str, Any], field: str
) -> None:
    response = admin_client.post(ENDPOINTS, payload, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert any(str(error["field"]).startswith(field) for error in body["errors"])
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_pointing_into_the_private_network_is_refused(
    admin_client: APIClient, resolver: dict[str, list[str]]
) -> None:
    resolver["intranet.example.com"] = ["10.0.0.5"]

    response = admin_client.post(
        ENDPOINTS, {**NEW, "url": "https://intranet.example.com/x"}, format="json"
    )

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert "10.0.0.5, a private address" in body["detail"]


def test_members_below_admin_may_not_manage_webhooks(
    member_client: APIClient, viewer_client: APIClient, org: Any, public_dns: Any
) -> None:
    endpoint = endpoint_for(org)
    for client in (member_client, viewer_client):
        assert_problem(
            client.post(ENDPOINTS, NEW, format="json"), status=403, code="PERMISSION_DENIED"
        )
        assert_problem(client.get(ENDPOINTS), status=403, code="PERMISSION_DENIED")
        assert_problem(client.get(endpoint_url(endpoint.id)), status=403, code="PERMISSION_DENIED")
    assert WebhookEndpoint.objects.count() == 1


def test_another_organizations_endpoint_is_not_found(
    outsider_client: APIClient, org: Any, public_dns: Any
) -> None:
    endpoint = endpoint_for(org)
    paths = [
        ("get", endpoint_url(endpoint.id)),
        ("patch", endpoint_url(endpoint.id)),
        ("delete", endpoint_url(endpoint.id)),
        ("post", f"{endpoint_url(endpoint.id)}/rotate-secret"),
        ("post", f"{endpoint_url(endpoint.id)}/ping"),
        ("get", f"{endpoint_url(endpoint.id)}/deliveries"),
    ]
    for method, path in paths:
        response = getattr(outsider_client, method)(path, {"description": "x"}, format="json")
        assert_problem(response, status=404, code="NOT_FOUND")
    assert outsider_client.get(ENDPOINTS).json()["count"] == 0
    endpoint.refresh_from_db()
    assert endpoint.description == "test receiver"


# --- Change, rotate, delete ---------------------------------------------------------------


def test_an_admin_changes_an_endpoint(admin_client: APIClient, org: Any, public_dns: Any) -> None:
    endpoint = endpoint_for(org)

    response = admin_client.patch(
        endpoint_url(endpoint.id),
        {"url": "https://other.example.com/new", "event_types": ["member.removed"]},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["url"] == "https://other.example.com/new"
    assert response.json()["event_types"] == ["member.removed"]
    audit = AuditEvent.objects.get(action="webhook.endpoint_changed")
    assert audit.details["changes"]["event_types"] == ["member.removed"]


def test_an_admin_disables_and_enables_an_endpoint(
    admin_client: APIClient, org: Any, public_dns: Any
) -> None:
    endpoint = endpoint_for(org)

    off = admin_client.patch(endpoint_url(endpoint.id), {"enabled": False}, format="json").json()

    assert off["enabled"] is False
    assert off["disabled_reason"]
    assert AuditEvent.objects.filter(action="webhook.endpoint_disabled").exists()
    on = admin_client.patch(endpoint_url(endpoint.id), {"enabled": True}, format="json").json()
    assert (on["enabled"], on["disabled_reason"], on["disabled_at"]) == (True, "", None)


@pytest.mark.parametrize(
    "payload",
    [{"url": "https://127.0.0.1/"}, {"event_types": []}, {"enabled": "perhaps"}],
)
def test_a_bad_change_is_refused(
    admin_client: APIClient, org: Any, public_dns: Any, payload: dict[str, Any]
) -> None:
    endpoint = endpoint_for(org)

    response = admin_client.patch(endpoint_url(endpoint.id), payload, format="json")

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.is_enabled) == ("https://hooks.example.test/hooks", True)


def test_rotating_the_secret_shows_the_new_one_once_and_keeps_the_old_for_the_overlap(
    admin_client: APIClient, org: Any
) -> None:
    endpoint = endpoint_for(org)
    old = endpoint.secret

    response = admin_client.post(f"{endpoint_url(endpoint.id)}/rotate-secret")

    assert response.status_code == 201
    body = response.json()
    assert SECRET.match(body["secret"])
    assert body["secret"] != old
    assert body["secret_rotation_ends_at"] is not None
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (body["secret"], old)


def test_an_admin_deletes_an_endpoint(admin_client: APIClient, org: Any) -> None:
    endpoint = endpoint_for(org)

    assert admin_client.delete(endpoint_url(endpoint.id)).status_code == 204

    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.endpoint_deleted").exists()
    assert_problem(admin_client.delete(endpoint_url(endpoint.id)), status=404, code="NOT_FOUND")


def test_a_member_may_not_change_rotate_or_delete(member_client: APIClient, org: Any) -> None:
    endpoint = endpoint_for(org)
    old = endpoint.secret

    for response in (
        member_client.patch(endpoint_url(endpoint.id), {"enabled": False}, format="json"),
        member_client.post(f"{endpoint_url(endpoint.id)}/rotate-secret"),
        member_client.delete(endpoint_url(endpoint.id)),
        member_client.post(f"{endpoint_url(endpoint.id)}/ping"),
        member_client.get(f"{endpoint_url(endpoint.id)}/deliveries"),
    ):
        assert_problem(response, status=403, code="PERMISSION_DENIED")
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.is_enabled) == (old, True)


# --- Ping, delivery log, resend -----------------------------------------------------------------


def test_a_test_ping_reaches_the_endpoint_and_shows_in_its_log(
    admin_client: APIClient, org: Any, receiver: WebhookReceiver
) -> None:
    endpoint = _receiving(org, receiver)

    response = admin_client.post(f"{endpoint_url(endpoint.id)}/ping")

    assert response.status_code == 202, response.content
    assert (response.json()["event_type"], response.json()["status"]) == ("ping", "pending")
    assert deliveries_run() == ["succeeded"]
    [request] = receiver.received
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "ping"
    log = admin_client.get(f"{endpoint_url(endpoint.id)}/deliveries").json()
    [delivery] = log["results"]
    assert delivery["status"] == "succeeded"
    assert delivery["event_id"] == request.headers["webhook-id"]
    assert [(row["attempt"], row["outcome"], row["status_code"]) for row in delivery["log"]] == [
        (1, "succeeded", 204)
    ]
    assert delivery["log"][0]["duration_ms"] >= 0


def test_a_disabled_endpoint_cannot_be_pinged(admin_client: APIClient, org: Any) -> None:
    endpoint = endpoint_for(org, is_enabled=False)

    response = admin_client.post(f"{endpoint_url(endpoint.id)}/ping")

    assert_problem(response, status=409, code="CONFLICT")
    assert not WebhookDelivery.objects.exists()


def test_the_delivery_log_filters_by_status_within_a_few_queries(
    admin_client: APIClient,
    org: Any,
    receiver: WebhookReceiver,
    django_assert_max_num_queries: Any,
) -> None:
    endpoint = _receiving(org, receiver)
    receiver.answers = [Answer(500), Answer(200)]
    for number in range(4):
        webhook_event_emit(organization_id=org.id, type="job.failed", data={"n": number})
    deliveries_run()
    path = f"{endpoint_url(endpoint.id)}/deliveries"

    with django_assert_max_num_queries(12):
        everything = admin_client.get(path).json()

    assert everything["count"] == 4
    pending = admin_client.get(path, {"status": "pending"}).json()
    assert pending["count"] == 1
    assert pending["results"][0]["next_attempt_at"] is not None
    assert pending["results"][0]["log"][0]["error"] == "The endpoint answered 500."
    assert_problem(admin_client.get(path, {"status": "lost"}), status=400, code="VALIDATION_ERROR")


def test_resend_sends_the_same_event_again(
    admin_client: APIClient, org: Any, receiver: WebhookReceiver
) -> None:
    endpoint = _receiving(org, receiver)
    webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})
    deliveries_run()
    first = WebhookDelivery.objects.get()

    response = admin_client.post(f"{endpoint_url(endpoint.id)}/deliveries/{first.id}/resend")

    assert response.status_code == 202, response.content
    assert response.json()["id"] != str(first.id)
    assert deliveries_run() == ["succeeded"]
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert ids == [str(first.event_id)] * 2


def test_resend_of_an_unknown_or_foreign_delivery_is_not_found(
    admin_client: APIClient, outsider_client: APIClient, member_client: APIClient, org: Any
) -> None:
    endpoint = endpoint_for(org, event_types=["job.failed"])
    other = endpoint_for(org, event_types=["job.failed"])
    webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    path = f"{endpoint_url(endpoint.id)}/deliveries/{delivery.id}/resend"

    assert_problem(outsider_client.post(path), status=404, code="NOT_FOUND")
    assert_problem(member_client.post(path), status=403, code="PERMISSION_DENIED")
    wrong_endpoint = f"{endpoint_url(other.id)}/deliveries/{delivery.id}/resend"
    assert_problem(admin_client.post(wrong_endpoint), status=404, code="NOT_FOUND")
    assert WebhookDelivery.objects.count() == 2


def test_the_event_types_are_listed(
    admin_client: APIClient, member_client: APIClient, outsider_client: APIClient
) -> None:
    response = admin_client.get("/api/v1/webhooks/event-types")

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()}
    assert {"job.succeeded", "token.expiring", "ping"} <= set(rows)
    assert rows["ping"]["subscribable"] is False
    assert_problem(
        member_client.get("/api/v1/webhooks/event-types"), status=403, code="PERMISSION_DENIED"
    )
    # Event types are public knowledge: an admin of another organization sees the same list.
    assert outsider_client.get("/api/v1/webhooks/event-types").json() == response.json()
