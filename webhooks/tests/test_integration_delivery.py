"""Deliveries through a real broker and workers: a worker killed mid-delivery loses no event."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from config.testing.processes import WorkerProcess, worker_spawn
from config.testing.webhook_receiver import Answer, WebhookReceiver, tls_certificate
from webhooks.models import WebhookDelivery
from webhooks.services.deliveries import deliveries_due_enqueue
from webhooks.services.events import webhook_event_emit
from webhooks.tests.factories import RECEIVER_HOST, endpoint_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def _group_kill(worker: WorkerProcess, signum: int) -> None:
    try:
        os.killpg(worker.pid, signum)
    except ProcessLookupError:
        return
    try:
        worker.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)


@pytest.fixture
def hooks_queue(settings: Any) -> str:
    """A queue of this test's own, so only its workers (with its settings) take deliveries."""
    settings.WEBHOOK_QUEUE = f"webhooks-test-{uuid.uuid4().hex[:12]}"
    return str(settings.WEBHOOK_QUEUE)


@pytest.fixture
def https_receiver(tmp_path: Path) -> Iterator[tuple[WebhookReceiver, Path]]:
    cert, key = tls_certificate(tmp_path, RECEIVER_HOST)
    receiver = WebhookReceiver(cert, key)
    receiver.start()
    yield receiver, cert
    receiver.stop()


def test_a_worker_killed_mid_delivery_loses_no_event(
    org: Any, tmp_path: Path, hooks_queue: str, https_receiver: tuple[WebhookReceiver, Path]
) -> None:
    receiver, cert = https_receiver
    # The first attempt is held until its worker is killed; the second is answered at once.
    receiver.answers = [Answer(204, delay=60), Answer(204)]
    env = {
        "CELERY_DEFAULT_QUEUE": hooks_queue,
        "WEBHOOK_QUEUE": hooks_queue,
        "WEBHOOK_CA_BUNDLE": str(cert),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    endpoint = endpoint_for(org, url=f"https://127.0.0.1:{receiver.port}/hooks")
    first = worker_spawn(log_path=tmp_path / "first.log", name="hooks", own_session=True, **env)
    second = None
    try:
        with transaction.atomic():
            event = webhook_event_emit(organization_id=org.id, type="job.failed", data={"id": "j"})
        assert event is not None
        _until(lambda: len(receiver.received) == 1, 60, "the first attempt")
        _group_kill(first, signal.SIGKILL)

        delivery = WebhookDelivery.objects.get(event=event)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.leased_until is not None
        second = worker_spawn(
            log_path=tmp_path / "second.log", name="hooks", own_session=True, **env
        )
        # Beat's periodic task hands the delivery again once the dead worker's lease ends.
        _until(lambda: deliveries_due_enqueue() == 1, 60, "the lease's end")
        _until(
            lambda: WebhookDelivery.objects.get(id=delivery.id).status == "succeeded",
            60,
            "the second attempt",
        )
    finally:
        for worker in (first, second):
            if worker is not None:
                _group_kill(worker, signal.SIGTERM)

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert [request.headers["webhook-id"] for request in receiver.received] == [str(event.id)] * 2
    last = receiver.received[-1]
    assert Webhook(endpoint.secret).verify(last.body, last.headers)["id"] == str(event.id)
