"""Deliveries to a real HTTPS receiver: signed, retried, logged, disabled when failing."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import time
import uuid
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from audit.models import AuditEvent
from config.testing.webhook_receiver import Answer, WebhookReceiver
from webhooks.models import (
    WebhookAttempt,
    WebhookCallback,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.services.callbacks import job_callback_register
from webhooks.services.deliveries import (
    deliveries_due_enqueue,
    delivery_attempt,
    log_purge,
    retry_delay,
)
from webhooks.services.endpoints import endpoint_secret_rotate, url_origin
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import RECEIVER_HOST, EndpointFactory, deliveries_run, endpoint_for

pytestmark = pytest.mark.django_db


def _endpoint(org: Any, receiver: WebhookReceiver, **fields: Any) -> WebhookEndpoint:
    return endpoint_for(org, url=f"https://{RECEIVER_HOST}:{receiver.port}/hooks", **fields)


def _next_attempt(delivery: WebhookDelivery) -> dt.datetime:
    delivery.refresh_from_db()
    assert delivery.next_attempt_at is not None
    return delivery.next_attempt_at


def _emit(org: Any, type: str = "job.succeeded", **data: Any) -> WebhookEvent | None:
    return webhook_event_emit(
        organization_id=org.id, type=type, data={"id": "job-1", "status": "succeeded", **data}
    )


def test_an_event_reaches_the_receiver_signed_as_the_specification_verifies(
    org: Any, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(org, receiver)
    event = _emit(org)
    assert event is not None

    assert deliveries_run() == ["succeeded"]

    [request] = receiver.received
    assert request.path == "/hooks"
    assert request.headers["host"] == f"{RECEIVER_HOST}:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == str(event.id)
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload == {
        "id": str(event.id),
        "type": "job.succeeded",
        "timestamp": payload["timestamp"],
        "organization": {"id": str(org.id), "slug": org.slug, "name": org.name},
        "data": {"id": "job-1", "status": "succeeded"},
    }
    assert payload["timestamp"].endswith("Z")
    assert endpoint.secret not in request.body.decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(EndpointFactory.build().secret).verify(request.body, request.headers)
    delivery = WebhookDelivery.objects.get(event=event)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 204)
    [logged] = WebhookAttempt.objects.filter(delivery=delivery)
    assert (logged.outcome, logged.status_code, logged.next_attempt_at) == ("succeeded", 204, None)


def test_only_enabled_endpoints_subscribed_to_the_type_get_a_delivery(
    org: Any, other_org: Any, receiver: WebhookReceiver
) -> None:
    wanted = _endpoint(org, receiver)
    _endpoint(org, receiver, event_types=["image.deleted"])
    _endpoint(org, receiver, is_enabled=False)
    _endpoint(other_org, receiver)

    event = _emit(org)

    assert event is not None
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [wanted.id]
    assert _emit(org, type="member.removed") is None
    assert WebhookEvent.objects.count() == 1


def test_each_event_has_its_own_id(org: Any, receiver: WebhookReceiver) -> None:
    _endpoint(org, receiver)
    for number in range(5):
        _emit(org, id=f"job-{number}")

    assert deliveries_run() == ["succeeded"] * 5

    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(set(ids)) == 5
    assert {json.loads(request.body)["id"] for request in receiver.received} == set(ids)


def test_a_500_is_retried_with_backoff_until_the_endpoint_accepts(
    org: Any, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(org, receiver)
    receiver.answers = [Answer(500, body=b"boom"), Answer(503), Answer(200)]
    event = _emit(org)
    delivery = WebhookDelivery.objects.get(event=event)

    before = timezone.now()
    assert delivery_attempt(delivery.id) == "failed"
    after = timezone.now()
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    first_retry = _next_attempt(delivery)
    assert before + dt.timedelta(seconds=5) <= first_retry <= after + dt.timedelta(seconds=6)
    assert delivery_attempt(delivery.id) == "not_due"
    assert WebhookEndpoint.objects.get(id=endpoint.id).failing_since is not None

    attempted = first_retry + dt.timedelta(seconds=1)
    with time_machine.travel(attempted, tick=False):
        assert delivery_attempt(delivery.id) == "failed"
    second_retry = _next_attempt(delivery)
    assert dt.timedelta(minutes=5) <= second_retry - attempted <= dt.timedelta(minutes=6)
    with time_machine.travel(second_retry + dt.timedelta(seconds=1), tick=False):
        assert delivery_attempt(delivery.id) == "succeeded"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert WebhookEndpoint.objects.get(id=endpoint.id).failing_since is None
    log = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("attempt"))
    assert [(row.attempt, row.outcome, row.status_code) for row in log] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "succeeded", 200),
    ]
    assert log[0].response_body == "boom"
    assert log[0].next_attempt_at is not None
    assert len({request.headers["webhook-id"] for request in receiver.received}) == 1


def test_an_endpoint_that_does_not_answer_in_time_is_retried(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    _endpoint(org, receiver)
    receiver.answers = [Answer(200, delay=1.5), Answer(200)]
    event = _emit(org)
    delivery = WebhookDelivery.objects.get(event=event)

    assert delivery_attempt(delivery.id) == "failed"

    [logged] = WebhookAttempt.objects.filter(delivery=delivery)
    assert logged.status_code is None
    assert "No answer within 0.5 s" in logged.error
    with time_machine.travel(_next_attempt(delivery) + dt.timedelta(seconds=1), tick=False):
        assert delivery_attempt(delivery.id) == "succeeded"


def test_an_answer_dripping_a_line_at_a_time_is_cut_off_at_the_deadline(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    _endpoint(org, receiver)
    # Each line comes well within the timeout, but the whole answer would take 4 s.
    receiver.answers = [Answer(200, trickle=0.2)]
    _emit(org)

    started = time.monotonic()
    assert deliveries_run() == ["failed"]

    assert time.monotonic() - started < 2.5
    logged = WebhookAttempt.objects.get()
    assert (logged.status_code, logged.error) == (None, "No answer within 1 s.")


def test_the_answer_read_is_capped(org: Any, receiver: WebhookReceiver, settings: Any) -> None:
    settings.WEBHOOK_RESPONSE_BODY_MAX_BYTES = 100
    _endpoint(org, receiver)
    receiver.answers = [Answer(200, body=b"x" * 100_000)]
    _emit(org)

    assert deliveries_run() == ["succeeded"]

    assert WebhookAttempt.objects.get().response_body == "x" * 100


def test_a_compressed_answer_is_kept_as_sent_and_never_inflated(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_RESPONSE_BODY_MAX_BYTES = 100
    _endpoint(org, receiver)
    # 5 MB of zeros in about 5 KB: inflated, it would pass any cap in memory.
    bomb = gzip.compress(b"\0" * 5_000_000)
    receiver.answers = [Answer(200, body=bomb, headers={"Content-Encoding": "gzip"})]
    _emit(org)

    assert deliveries_run() == ["succeeded"]

    assert receiver.received[0].headers["accept-encoding"] == "identity"
    kept = WebhookAttempt.objects.get().response_body
    assert len(kept) <= 100
    assert kept.startswith("\x1f")  # gzip's own first byte: kept as sent, never inflated


def test_a_redirect_is_not_followed(org: Any, receiver: WebhookReceiver) -> None:
    _endpoint(org, receiver)
    receiver.answers = [Answer(302, headers={"Location": "https://169.254.169.254/latest"})]
    _emit(org)

    assert deliveries_run() == ["failed"]

    assert len(receiver.received) == 1
    assert "redirects are not followed" in WebhookAttempt.objects.get().error


def test_tries_run_out_after_the_schedule(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = (5, 60)
    _endpoint(org, receiver)
    receiver.answers = [Answer(500)]
    delivery = WebhookDelivery.objects.get(event=_emit(org))

    now = timezone.now()
    for step in (0, 10, 100):
        with time_machine.travel(now + dt.timedelta(seconds=step), tick=False):
            assert delivery_attempt(delivery.id) == "failed"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert delivery.finished_at is not None


def test_the_retry_schedule_spreads_over_about_a_day_with_jitter(settings: Any) -> None:
    delays = [retry_delay(attempt) for attempt in range(1, 9)]

    assert delays[-1] is None
    spread = [d for d in delays if d is not None]
    assert all(a < b for a, b in itertools.pairwise(spread))
    assert dt.timedelta(hours=24) < dt.timedelta(seconds=sum(spread)) < dt.timedelta(hours=40)
    assert len({retry_delay(1) for _ in range(20)}) > 1


def test_an_endpoint_failing_for_three_days_is_disabled_with_mail_and_audit(
    org: Any, admin: Any, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint = _endpoint(org, receiver)
    receiver.answers = [Answer(500)]
    start = timezone.now()
    _emit(org)
    assert deliveries_run() == ["failed"]

    with time_machine.travel(start + dt.timedelta(days=2, hours=23), tick=False):
        _emit(org)
        assert "failed" in deliveries_run()
    endpoint.refresh_from_db()
    assert endpoint.is_enabled

    with (
        time_machine.travel(start + dt.timedelta(days=3, minutes=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _emit(org)
        deliveries_run()

    endpoint = WebhookEndpoint.objects.get(id=endpoint.id)
    assert not endpoint.is_enabled
    assert "Every delivery failed since" in endpoint.disabled_reason
    [message] = mail.outbox
    assert message.to == [admin.email]
    assert url_origin(endpoint.url) in message.body
    assert endpoint.url not in message.body  # its path may hold the receiver's credential
    assert AuditEvent.objects.filter(
        action="webhook.endpoint_disabled", resource_id=str(endpoint.id)
    ).exists()
    assert _emit(org) is None  # a disabled endpoint is owed nothing new


def test_during_a_rotation_both_secrets_sign_then_only_the_new_one(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_SECRET_OVERLAP_SECONDS = 3600
    endpoint = _endpoint(org, receiver)
    old_secret = endpoint.secret
    new_secret = endpoint_secret_rotate(endpoint=endpoint).secret
    _emit(org)
    assert deliveries_run() == ["succeeded"]

    with time_machine.travel(timezone.now() + dt.timedelta(seconds=3601), tick=False):
        _emit(org)
        assert deliveries_run() == ["succeeded"]

    during, after = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(during.body, during.headers)
    Webhook(new_secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after.body, after.headers)
    assert AuditEvent.objects.filter(action="webhook.secret_rotated").exists()


def test_a_delivery_whose_worker_died_is_handed_again_once_its_lease_ends(
    org: Any, receiver: WebhookReceiver, django_capture_on_commit_callbacks: Any
) -> None:
    _endpoint(org, receiver)
    delivery = WebhookDelivery.objects.get(event=_emit(org))
    # A worker claimed it and died before recording anything: the lease is all that is left.
    WebhookDelivery.objects.filter(id=delivery.id).update(
        attempts=1, leased_until=timezone.now() + dt.timedelta(seconds=40)
    )
    assert delivery_attempt(delivery.id) == "not_pending"
    assert deliveries_due_enqueue() == 0

    with time_machine.travel(timezone.now() + dt.timedelta(seconds=41), tick=False):
        assert deliveries_due_enqueue() == 1
        assert delivery_attempt(delivery.id) == "succeeded"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert len(receiver.received) == 1


def test_a_message_lost_on_its_way_is_handed_again_but_not_before(
    org: Any, receiver: WebhookReceiver
) -> None:
    _endpoint(org, receiver)
    delivery = WebhookDelivery.objects.get(event=_emit(org))  # its message went to the queue
    now = timezone.now()

    assert deliveries_due_enqueue() == 0  # on its way: not handed twice
    with time_machine.travel(now + dt.timedelta(seconds=61), tick=False):
        assert deliveries_due_enqueue() == 1  # never reached a worker: handed again
        assert deliveries_due_enqueue() == 0
    with time_machine.travel(now + dt.timedelta(seconds=122), tick=False):
        assert deliveries_due_enqueue() == 1
        assert delivery_attempt(delivery.id) == "succeeded"
        assert deliveries_due_enqueue() == 0


def test_a_retry_beyond_a_countdowns_reach_is_handed_when_due(
    org: Any, receiver: WebhookReceiver
) -> None:
    _endpoint(org, receiver)
    receiver.answers = [Answer(500), Answer(500), Answer(200)]
    delivery = WebhookDelivery.objects.get(event=_emit(org))
    assert delivery_attempt(delivery.id) == "failed"
    with time_machine.travel(_next_attempt(delivery) + dt.timedelta(seconds=1), tick=False):
        assert delivery_attempt(delivery.id) == "failed"
    later = _next_attempt(delivery)  # 5 minutes on: no countdown, the periodic check's turn

    with time_machine.travel(later - dt.timedelta(seconds=1), tick=False):
        assert deliveries_due_enqueue() == 0
    with time_machine.travel(later + dt.timedelta(seconds=1), tick=False):
        assert deliveries_due_enqueue() == 1
        assert delivery_attempt(delivery.id) == "succeeded"


def test_an_endpoint_at_its_in_flight_cap_makes_the_next_delivery_wait(
    org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = 1
    endpoint = _endpoint(org, receiver)
    other = _endpoint(org, receiver)
    first, second = (
        WebhookDelivery.objects.get(event=_emit(org), endpoint=endpoint) for _ in range(2)
    )
    WebhookDelivery.objects.filter(id=first.id).update(
        leased_until=timezone.now() + dt.timedelta(seconds=30)
    )

    assert delivery_attempt(second.id) == "busy"
    # Another endpoint's deliveries do not wait for this one.
    assert "succeeded" in deliveries_run()
    assert WebhookDelivery.objects.filter(endpoint=other, status="succeeded").count() == 2
    assert _next_attempt(second) > timezone.now()
    assert second.status == "pending"


def test_an_organization_at_its_in_flight_cap_waits_while_another_is_delivered(
    org: Any, other_org: Any, receiver: WebhookReceiver, settings: Any
) -> None:
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ORGANIZATION = 2
    slow = [_endpoint(org, receiver) for _ in range(3)]
    elsewhere = _endpoint(other_org, receiver)
    event = _emit(org)
    held, waiting = (
        WebhookDelivery.objects.filter(event=event, endpoint__in=slow[:2]),
        WebhookDelivery.objects.get(event=event, endpoint=slow[2]),
    )
    held.update(leased_until=timezone.now() + dt.timedelta(seconds=30))
    other = WebhookDelivery.objects.get(event=_emit(other_org), endpoint=elsewhere)

    # Its third endpoint waits, although that endpoint has nothing in flight.
    assert delivery_attempt(waiting.id) == "busy"
    assert delivery_attempt(other.id) == "succeeded"


def test_events_and_their_log_are_purged_after_the_retention(
    org: Any, receiver: WebhookReceiver
) -> None:
    endpoint = _endpoint(org, receiver)
    _emit(org)
    deliveries_run()
    job_callback_register(job_id=uuid.uuid4(), endpoint=endpoint)

    assert log_purge(now=timezone.now() + dt.timedelta(days=29)) == 0
    assert WebhookCallback.objects.exists()
    assert log_purge(now=timezone.now() + dt.timedelta(days=31)) == 1

    assert not WebhookDelivery.objects.exists()
    assert not WebhookAttempt.objects.exists()
    assert not WebhookCallback.objects.exists()


def _scraped(api_client: Any) -> dict[tuple[str, str], float]:
    response = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token")
    assert response.status_code == 200
    return {
        (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name.startswith("vantage_webhook_")
    }


def test_attempts_latency_and_backlog_are_measured(
    org: Any, receiver: WebhookReceiver, api_client: Any
) -> None:
    _endpoint(org, receiver)
    receiver.answers = [Answer(500), Answer(200)]
    before = _scraped(api_client)
    _emit(org)
    _emit(org)

    deliveries_due_enqueue()
    backlog = _scraped(api_client)[("vantage_webhook_backlog", "")]
    deliveries_run()

    after = _scraped(api_client)
    moved = {key: after[key] - before.get(key, 0.0) for key in after}
    assert backlog == 2
    assert moved[("vantage_webhook_attempts_total", "outcome=failed")] == 1
    assert moved[("vantage_webhook_attempts_total", "outcome=succeeded")] == 1
    assert moved[("vantage_webhook_deliveries_total", "status=succeeded")] == 1
    assert moved[("vantage_webhook_attempt_seconds_count", "")] == 2
