"""Events emitted by the product's changes, with the resource as the API shows it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from accounts.models import ServiceToken
from accounts.services.token_rotations import family_revoke
from accounts.tasks import token_expiry_notify_task
from accounts.tests.factories import OrganizationFactory
from classifier.health import provider_health, trackers_forget
from config.testing.http import assert_problem
from config.testing.webhook_receiver import WebhookReceiver
from images.models import Image
from images.tests.factories import accepted, jpeg_bytes, run_job, upload
from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import RECEIVER_HOST, deliveries_run, endpoint_for

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens"
MEMBERS = "/api/v1/orgs/current/members"


def _only_event(type: str) -> dict[str, Any]:
    [event] = WebhookEvent.objects.filter(type=type)
    payload: dict[str, Any] = event.payload
    assert payload["type"] == type
    assert payload["id"] == str(event.id)
    return payload


def test_a_finished_job_reaches_its_subscribers_as_the_job_api_shows_it(
    org: Any, member_client: APIClient, receiver: WebhookReceiver
) -> None:
    endpoint = endpoint_for(
        org, url=f"https://{RECEIVER_HOST}:{receiver.port}/jobs", event_types=["job.succeeded"]
    )
    body = accepted(upload(member_client, jpeg_bytes()))
    assert not WebhookEvent.objects.exists()

    run_job(body["job_id"])

    payload = _only_event("job.succeeded")
    assert payload["data"] == member_client.get(body["status_url"]).json()
    assert deliveries_run() == ["succeeded"]
    [request] = receiver.received
    assert Webhook(endpoint.secret).verify(request.body, request.headers) == payload


def test_a_failed_job_is_announced_with_its_error(org: Any, member_client: APIClient) -> None:
    endpoint_for(org, event_types=["job.failed"])
    body = accepted(upload(member_client, jpeg_bytes()))
    default_storage.delete(Image.objects.get().original_path)

    run_job(body["job_id"])

    payload = _only_event("job.failed")
    assert payload["data"]["error"]["code"] == "IMAGE_MISSING"
    assert payload["data"] == member_client.get(body["status_url"]).json()


def test_an_upload_names_an_endpoint_for_its_job_outcome(
    org: Any, member_client: APIClient
) -> None:
    callback = endpoint_for(org, event_types=["member.removed"])
    bystander = endpoint_for(org, event_types=["member.removed"])
    body = accepted(upload(member_client, jpeg_bytes(), webhook_endpoint=str(callback.id)))
    other_job = accepted(upload(member_client, jpeg_bytes(colour="blue")))

    run_job(body["job_id"])
    run_job(other_job["job_id"])

    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint_id == callback.id
    assert delivery.event.payload["data"]["id"] == body["job_id"]
    assert not WebhookDelivery.objects.filter(endpoint=bystander).exists()


def test_an_upload_may_name_only_an_enabled_endpoint_of_its_organization(
    org: Any, other_org: Any, member_client: APIClient
) -> None:
    foreign = endpoint_for(other_org)
    disabled = endpoint_for(org, is_enabled=False)

    for named in (str(foreign.id), str(disabled.id), "not-a-uuid"):
        response = upload(member_client, jpeg_bytes(), webhook_endpoint=named)
        body = assert_problem(response, status=400, code="VALIDATION_ERROR")
        assert body["errors"][0]["field"] == "webhook_endpoint"
    assert not Image.objects.exists()


def test_a_deleted_image_is_announced_as_it_was(org: Any, member_client: APIClient) -> None:
    endpoint_for(org, event_types=["image.deleted"])
    body = accepted(upload(member_client, jpeg_bytes()))
    shown = member_client.get(f"/api/v1/images/{body['image_id']}").json()

    assert member_client.delete(f"/api/v1/images/{body['image_id']}").status_code == 204

    assert _only_event("image.deleted")["data"] == shown


def test_a_revoked_token_is_announced_without_its_secret(org: Any, admin_client: APIClient) -> None:
    endpoint_for(org, event_types=["token.revoked"])
    created = admin_client.post(TOKENS, {"name": "ci", "scopes": ["image:read"]}, format="json")
    token = created.json()

    assert admin_client.delete(f"{TOKENS}/{token['id']}").status_code == 204

    payload = _only_event("token.revoked")
    assert payload["data"] == admin_client.get(f"{TOKENS}/{token['id']}").json()
    assert payload["data"]["status"] == "revoked"
    assert token["token"] not in str(payload)
    assert ServiceToken.objects.get().digest not in str(payload)


def test_revoking_every_token_is_one_event(org: Any, admin_client: APIClient) -> None:
    endpoint_for(org, event_types=["tokens.revoked_all", "token.revoked"])
    ids = [
        admin_client.post(
            TOKENS, {"name": f"t{n}", "scopes": ["image:read"]}, format="json"
        ).json()["id"]
        for n in range(2)
    ]

    response = admin_client.post(f"{TOKENS}/revoke-all", {"reason": "leak"}, format="json")

    assert response.json() == {"revoked": 2}
    data = _only_event("tokens.revoked_all")["data"]
    assert (data["reason"], data["revoked"], sorted(data["token_ids"])) == ("leak", 2, sorted(ids))
    assert not WebhookEvent.objects.filter(type="token.revoked").exists()


def test_a_rotation_reuse_is_announced_with_the_family_revoked(
    org: Any, admin_client: APIClient
) -> None:
    endpoint_for(org, event_types=["token.rotation_reuse_detected"])
    created = admin_client.post(TOKENS, {"name": "ci", "scopes": ["image:read"]}, format="json")

    family_revoke(token=ServiceToken.objects.get(id=created.json()["id"]), reason="reuse")

    data = _only_event("token.rotation_reuse_detected")["data"]
    assert (data["id"], data["status"]) == (created.json()["id"], "revoked")
    assert data["revoked_token_ids"] == [created.json()["id"]]


def test_a_role_change_and_a_removal_are_announced(
    org: Any, admin_client: APIClient, member: Any
) -> None:
    endpoint_for(org, event_types=["member.role_changed", "member.removed"])

    changed = admin_client.patch(f"{MEMBERS}/{member.id}", {"role": "viewer"}, format="json")
    assert changed.status_code == 200
    shown = next(m for m in admin_client.get(MEMBERS).json() if m["user_id"] == str(member.id))
    assert admin_client.delete(f"{MEMBERS}/{member.id}").status_code == 204

    role_changed = _only_event("member.role_changed")["data"]
    assert role_changed == {**shown, "previous_role": "user"}
    assert _only_event("member.removed")["data"] == shown


def test_token_expiring_goes_to_mail_and_webhooks_once_per_threshold(
    org: Any, admin: Any, admin_client: APIClient, mailoutbox: list[Any], time_machine: Any
) -> None:
    endpoint_for(org, event_types=["token.expiring"])
    response = admin_client.post(
        TOKENS, {"name": "deploy", "scopes": ["image:read"], "expires_in_days": 5}, format="json"
    )
    assert response.status_code == 201
    created = response.json()
    start = ServiceToken.objects.get().created_at
    time_machine.move_to(start, tick=False)

    assert token_expiry_notify_task() == 1
    assert token_expiry_notify_task() == 0
    time_machine.move_to(start + dt.timedelta(days=4, hours=1), tick=False)
    assert token_expiry_notify_task() == 1
    assert token_expiry_notify_task() == 0

    events = WebhookEvent.objects.filter(type="token.expiring").order_by("created_at")
    assert [event.payload["data"]["threshold_days"] for event in events] == [7, 1]
    assert {event.payload["data"]["id"] for event in events} == {created["id"]}
    assert created["token"] not in str([event.payload for event in events])
    assert len(mailoutbox) == 2
    assert WebhookDelivery.objects.count() == 2


def test_a_provider_state_change_reaches_every_subscribed_organization(
    org: Any, other_org: Any
) -> None:
    endpoint_for(org, event_types=["classifier.provider_state_changed"])
    endpoint_for(other_org, event_types=["classifier.provider_state_changed"])
    endpoint_for(OrganizationFactory(), event_types=["job.failed"])
    trackers_forget()
    tracker = provider_health("remote")

    for _ in range(3):
        tracker.record_failure(12.0, "the remote provider timed out")
    trackers_forget()

    events = WebhookEvent.objects.filter(type="classifier.provider_state_changed")
    assert {event.organization_id for event in events} == {org.id, other_org.id}
    data = events[0].payload["data"]
    assert (data["name"], data["state"], data["previous_state"]) == (
        "remote",
        "degraded",
        "healthy",
    )
    # The organization's view: no installation-wide counters, no upstream error text.
    assert set(data) == {"name", "state", "previous_state", "ejected", "changed_at"}
    assert "timed out" not in str(events[0].payload)


def test_ids_and_times_in_the_data_are_carried_as_json_strings(org: Any) -> None:
    endpoint_for(org, event_types=["job.failed"])
    job_id = uuid.uuid4()
    moment = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)

    webhook_event_emit(
        organization_id=org.id, type="job.failed", data={"id": job_id, "finished_at": moment}
    )

    data = _only_event("job.failed")["data"]
    assert data == {"id": str(job_id), "finished_at": "2026-05-01T12:00:00Z"}
