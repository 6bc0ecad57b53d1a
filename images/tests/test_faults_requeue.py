"""The stuck-job check and a worker's claim racing: a job is handed again only while stale,
and an attempt whose claim was taken over writes nothing and says so.

The check is held between reading the stale jobs and updating each one by a
wrapper on its own database connection (Django's `execute_wrapper`); the
worker is held mid-job by a classifier provider chosen through settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from images.models import Job
from images.pipeline import job_run, jobs_requeue_stuck
from images.tests.factories import IMAGES, accepted, jpeg_bytes, upload
from images.tests.gated_provider import GatedProvider

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30


@pytest.fixture
def gated(settings: Any) -> Iterator[type[GatedProvider]]:
    settings.CLASSIFIER_PROVIDERS = ["images.tests.gated_provider.GatedProvider"]
    GatedProvider.reset()
    yield GatedProvider
    GatedProvider.gate.set()  # never leave a thread waiting


def in_thread(work: Callable[[], Any], outcome: list[Any]) -> threading.Thread:
    """Start `work` on a thread with a database connection of its own; append what it returns."""

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # the test asserts on it
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def paused_before_job_updates(
    at_update: threading.Event, go: threading.Event
) -> Callable[..., Any]:
    """Return an execute wrapper that holds each UPDATE of a job until `go` is set."""

    def pause(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith('UPDATE "images_job"'):
            at_update.set()
            go.wait(WAIT)
        return execute(sql, params, many, context)

    return pause


def test_a_job_claimed_while_the_stuck_check_runs_is_left_to_the_worker_that_claimed_it(
    member_client, gated
):
    body = accepted(upload(member_client, jpeg_bytes(), "car.jpg"))
    # Its message was lost: the job has waited in the queue long enough to be handed again.
    Job.objects.filter(id=body["job_id"]).update(enqueued_at=timezone.now() - timedelta(hours=1))
    at_update, go = threading.Event(), threading.Event()

    def check() -> int:
        with connection.execute_wrapper(paused_before_job_updates(at_update, go)):
            return jobs_requeue_stuck()

    handed: list[Any] = []
    checker = in_thread(check, handed)
    assert at_update.wait(WAIT)  # the check found the job stale and is about to update it
    ran: list[Any] = []
    worker = in_thread(lambda: job_run(body["job_id"]), ran)
    assert gated.entered.wait(WAIT)  # meanwhile a worker claimed it and is classifying it
    go.set()
    checker.join(WAIT)
    gated.gate.set()
    worker.join(WAIT)

    assert handed == [0]
    assert ran == [None]
    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert job["result"]["classification"]["top_label"] == "truck"


def test_an_attempt_whose_claim_was_taken_over_writes_nothing_and_is_recorded(
    member_client, gated, settings, log_lines
):
    body = accepted(upload(member_client, jpeg_bytes(), "car.jpg"))
    first: list[Any] = []
    worker = in_thread(lambda: job_run(body["job_id"]), first)
    assert gated.entered.wait(WAIT)  # attempt 1 is classifying
    # Attempt 1 has run past the timeout: the check takes it for dead, and attempt 2 runs.
    settings.JOB_RUNNING_TIMEOUT = 0
    assert jobs_requeue_stuck() == 1
    job_run(body["job_id"])
    gated.gate.set()  # attempt 1 wakes up with its result
    worker.join(WAIT)

    assert first == [None]
    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    image = member_client.get(f"{IMAGES}/{body['image_id']}").json()
    assert image["classification"] == job["result"]["classification"]
    assert image["classification"]["top_label"] == "car"  # attempt 2's, not overwritten
    discarded = [line for line in log_lines() if line["event"] == "job_outcome_discarded"]
    assert [(line["job_id"], line["reason"], line["attempts"]) for line in discarded] == [
        (body["job_id"], "claim_lost", 1)
    ]


def test_a_failure_of_an_attempt_whose_claim_was_taken_over_leaves_the_job_and_is_recorded(
    member_client, gated, settings, log_lines
):
    gated.first_refused = True  # attempt 1 ends in a permanent failure
    body = accepted(upload(member_client, jpeg_bytes(), "car.jpg"))
    first: list[Any] = []
    worker = in_thread(lambda: job_run(body["job_id"]), first)
    assert gated.entered.wait(WAIT)
    settings.JOB_RUNNING_TIMEOUT = 0
    assert jobs_requeue_stuck() == 1
    job_run(body["job_id"])  # attempt 2 succeeds
    gated.gate.set()
    worker.join(WAIT)

    assert first == [None]
    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"], job["error"]) == ("succeeded", 2, None)
    assert member_client.get(f"{IMAGES}/{body['image_id']}").json()["status"] == "ready"
    discarded = [line for line in log_lines() if line["event"] == "job_outcome_discarded"]
    assert [(line["reason"], line["attempts"]) for line in discarded] == [("finish_unmatched", 1)]
