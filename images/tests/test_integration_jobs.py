"""Image jobs across real processes: PostgreSQL, Redis, gunicorn and Celery workers.

The hundred uploads go through the in-process API client and are run by the
run's shared worker (`celery_worker_process`). The other tests need a worker
they may kill and a broker they may stop, so they use a redis-server of their
own (`throwaway_redis`) as the broker of a gunicorn server (`server_processes`)
and of workers they start themselves; the machine's shared Redis stays up.

Where a stuck job has to be handed again, the test sends `images.jobs_requeue_stuck`
to the broker exactly as beat does every 30 seconds, so it runs in a worker,
with the worker's settings (the timeouts shortened through its environment),
and the job goes back through the broker. Only the wait for beat's next tick
is skipped.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image as Picture
from PIL import ImageDraw

from accounts.services.tokens import token_create
from classifier.categories import LABELS
from config.testing.processes import ServerProcess, WorkerProcess
from config.testing.redis import ThrowawayRedis
from images.models import Image, Job
from images.tests.factories import _group_signal, job_run_starts
from images.tests.factories import http_upload as upload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

UPLOAD = "/api/v1/images/upload"
# With the broker gone, an upload still answers once connecting to it has timed out.
PROMPT_SECONDS = settings.CELERY_BROKER_CONNECTION_TIMEOUT + 1.5


# --- Files, clients and waiting ---------------------------------------------------------


def picture(index: int, *, kind: str = "JPEG") -> bytes:
    """Return a small picture, different for each index, encoded as `kind`."""
    width, height = 160 + (index * 37) % 480, 120 + (index * 53) % 360
    image = Picture.new("RGB", (width, height), ((index * 67) % 256, (index * 29) % 256, 140))
    draw = ImageDraw.Draw(image)
    draw.rectangle(
        (width // 5, height // 4, width * 4 // 5, height * 3 // 4),
        fill=(255 - (index * 13) % 256, 90, (index * 101) % 256),
    )
    draw.ellipse((width // 4, height // 2, width // 2, height * 7 // 8), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def slow_png() -> bytes:
    """Return a 3000x3000 PNG of photographic noise: seconds of work for one job."""
    size = (3000, 3000)
    gradient = Picture.linear_gradient("L").resize(size)
    channels = [
        Picture.blend(gradient.rotate(angle), Picture.effect_noise(size, 24), 0.3)
        for angle in (0, 90, 180)
    ]
    buffer = io.BytesIO()
    Picture.merge("RGB", channels).save(buffer, "PNG")
    return buffer.getvalue()


def api_client_for(server: ServerProcess, member: Any) -> httpx.Client:
    """Return an HTTP client of the server, holding a service token the member created."""
    organization = member.memberships.get().organization
    issued = token_create(
        organization=organization,
        name="jobs test",
        scopes=["image:upload", "image:read"],
        created_by=member,
    )
    return httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {issued.secret}"}
    )


def jobs_wait(
    get: Callable[[str], Any], status_urls: list[str], *, timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll each job's status URL until every job has finished; return their last bodies."""
    last: dict[str, dict[str, Any]] = {}
    pending = list(status_urls)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            response = get(url)
            assert response.status_code == 200, response.content
            last[url] = response.json()
            if last[url]["status"] in ("succeeded", "failed"):
                pending.remove(url)
        if pending:
            time.sleep(0.25)
    unfinished = {url: last.get(url, {}).get("status") for url in pending}
    assert not unfinished, f"{len(unfinished)} job(s) unfinished after {timeout}s: {unfinished}"
    return last


def server_log(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return lines


def job_status_wait(job_id: str, status: str, *, timeout: float) -> Job:
    """Read the job's row until it has `status`; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(id=job_id)
        if job.status == status:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} is {Job.objects.get(id=job_id).status}, not {status}")


def assert_classified_once(job_body: dict[str, Any], *, attempts: int) -> None:
    """Check the job succeeded in `attempts` attempts, leaving one original and one thumbnail."""
    assert job_body["status"] == "succeeded", job_body
    assert job_body["attempts"] == attempts, job_body
    assert job_body["error"] is None
    assert job_body["result"]["thumbnail"] is True
    assert job_body["result"]["classification"]["top_label"] in LABELS
    image = Image.objects.get(id=job_body["image_id"])
    assert image.status == Image.Status.READY
    assert image.label == job_body["result"]["classification"]["top_label"]
    folder = f"images/{image.organization_id}/{image.id}"
    assert image.thumbnail_path == f"{folder}/thumbnail.jpg"
    extension = image.original_path.rsplit(".", 1)[-1]
    # Each attempt overwrote the same names: nothing an attempt left behind remains.
    assert sorted(default_storage.listdir(folder)[1]) == sorted(
        [f"original.{extension}", "thumbnail.jpg"]
    )
    with default_storage.open(image.thumbnail_path, "rb") as stored:
        thumbnail = Picture.open(stored)
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= 256


# --- Workers of the test's own -------------------------------------------------------


def worker_kill(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool processes at once, as when its host dies."""
    _group_signal(worker, signal.SIGKILL)
    worker.process.wait(timeout=10)


def requeue_stuck_send(broker_url: str) -> None:
    """Send the periodic re-queue task to a worker through `broker_url`, as beat does."""
    from config.celery import app
    from images.tasks import jobs_requeue_stuck_task

    with app.connection_for_write(broker_url) as connection:
        app.send_task(jobs_requeue_stuck_task.name, connection=connection)


def job_logs(worker: WorkerProcess, job_id: str) -> list[dict[str, Any]]:
    return [line for line in worker.log_lines() if line.get("job_id") == job_id]


# --- Many uploads ------------------------------------------------------------------


def test_a_hundred_uploads_all_succeed_with_a_classification(
    member_client: Any, celery_worker_process: WorkerProcess
) -> None:
    uploads = []
    for index in range(100):
        kind, extension = ("PNG", "png") if index % 2 else ("JPEG", "jpg")
        file = io.BytesIO(picture(index, kind=kind))
        file.name = f"picture-{index}.{extension}"
        response = member_client.post(UPLOAD, {"file": file}, format="multipart")
        assert response.status_code == 202, response.content
        uploads.append(response.json())

    finished = jobs_wait(member_client.get, [body["status_url"] for body in uploads], timeout=240)

    for body in uploads:
        job = finished[body["status_url"]]
        assert (job["id"], job["image_id"]) == (body["job_id"], body["image_id"])
        assert_classified_once(job, attempts=1)
    images = Image.objects.filter(id__in=[body["image_id"] for body in uploads])
    assert sorted(images.values_list("content_type", flat=True).distinct()) == [
        "image/jpeg",
        "image/png",
    ]
    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == 100
    assert not Job.objects.exclude(status=Job.Status.SUCCEEDED).exists()


# --- A worker killed mid-job ---------------------------------------------------------


def _slow_job_running(
    server_processes: Any,
    worker_processes: Any,
    broker: dict[str, str],
    member: Any,
    worker_env: dict[str, str] | None = None,
) -> tuple[httpx.Client, WorkerProcess, dict[str, Any]]:
    """Start a server and a worker on `broker`, upload a slow image; return once it runs."""
    (server,) = server_processes(count=1, **broker)
    worker = worker_processes(**broker, **(worker_env or {}))
    client = api_client_for(server, member)
    body = upload(client, "large.png", slow_png())
    job_status_wait(body["job_id"], Job.Status.RUNNING, timeout=60)
    return client, worker, body


def test_a_worker_killed_mid_job_has_the_job_delivered_again_to_the_next_worker(
    server_processes: Any,
    worker_processes: Any,
    throwaway_redis: ThrowawayRedis,
    member: Any,
) -> None:
    """The message, never acknowledged, comes back once the visibility timeout has passed."""
    broker = {"CELERY_BROKER_URL": throwaway_redis.url, "CELERY_VISIBILITY_TIMEOUT": "3"}
    client, first, body = _slow_job_running(server_processes, worker_processes, broker, member)

    worker_kill(first)

    killed = Job.objects.get(id=body["job_id"])
    assert (killed.status, killed.attempts) == (Job.Status.RUNNING, 1)
    assert not job_logs(first, body["job_id"])  # it never finished
    # The next worker takes back what the broker holds unacknowledged past the timeout.
    assert killed.started_at is not None
    time.sleep(max(0.0, killed.started_at.timestamp() + 3.5 - time.time()))
    second = worker_processes(**broker)
    finished = jobs_wait(client.get, [body["status_url"]], timeout=90)

    assert_classified_once(finished[body["status_url"]], attempts=2)
    logged = [line["event"] for line in job_logs(second, body["job_id"])]
    assert logged == ["job_finished"], logged
    # The very message the killed worker held, not a new one.
    (killed_run,), (second_run,) = job_run_starts(first), job_run_starts(second)
    assert second_run["task_id"] == killed_run["task_id"]


def test_a_worker_killed_mid_job_has_the_job_requeued_by_the_stuck_job_check(
    server_processes: Any,
    worker_processes: Any,
    throwaway_redis: ThrowawayRedis,
    member: Any,
) -> None:
    """Long before the visibility timeout, the periodic check hands the job to the queue again."""
    broker = {"CELERY_BROKER_URL": throwaway_redis.url}
    timeouts = {"JOB_RUNNING_TIMEOUT": "2"}
    client, first, body = _slow_job_running(
        server_processes, worker_processes, broker, member, worker_env=timeouts
    )

    worker_kill(first)

    killed = Job.objects.get(id=body["job_id"])
    assert (killed.status, killed.attempts) == (Job.Status.RUNNING, 1)
    second = worker_processes(**broker, **timeouts)
    assert killed.started_at is not None
    time.sleep(max(0.0, killed.started_at.timestamp() + 2.5 - time.time()))
    requeue_stuck_send(throwaway_redis.url)
    finished = jobs_wait(client.get, [body["status_url"]], timeout=90)

    assert_classified_once(finished[body["status_url"]], attempts=2)
    requeued = second.wait_for_log(lambda line: line.get("event") == "jobs_requeued")
    assert requeued["count"] == 1
    # A new message: the killed worker's stays unacknowledged until the visibility timeout.
    (killed_run,), (second_run,) = job_run_starts(first), job_run_starts(second)
    assert second_run["task_id"] != killed_run["task_id"]


def test_a_pool_process_killed_mid_job_has_the_job_run_again_by_its_worker(
    server_processes: Any,
    worker_processes: Any,
    throwaway_redis: ThrowawayRedis,
    member: Any,
) -> None:
    """As when the kernel's OOM killer ends the process running the task, not the worker."""
    broker = {"CELERY_BROKER_URL": throwaway_redis.url}
    client, worker, body = _slow_job_running(server_processes, worker_processes, broker, member)
    (started,) = job_run_starts(worker)
    assert started["pid"] != worker.pid

    os.kill(started["pid"], signal.SIGKILL)

    finished = jobs_wait(client.get, [body["status_url"]], timeout=90)
    assert_classified_once(finished[body["status_url"]], attempts=2)
    assert worker.process.poll() is None
    # The worker gave the message back and ran it again in a new pool process.
    killed_run, second_run = job_run_starts(worker)
    assert second_run["task_id"] == killed_run["task_id"]
    assert second_run["pid"] != killed_run["pid"]


# --- The broker down ------------------------------------------------------------------


def test_uploads_while_the_broker_is_down_are_accepted_and_run_once_it_is_back(
    server_processes: Any,
    worker_processes: Any,
    throwaway_redis: ThrowawayRedis,
    member: Any,
) -> None:
    broker = {"CELERY_BROKER_URL": throwaway_redis.url}
    (server,) = server_processes(count=1, **broker)
    worker = worker_processes(**broker, JOB_QUEUED_TIMEOUT="1")
    client = api_client_for(server, member)
    before = upload(client, "before.jpg", picture(0))
    assert_classified_once(
        jobs_wait(client.get, [before["status_url"]], timeout=60)[before["status_url"]], attempts=1
    )

    throwaway_redis.kill()
    answered, uploads = [], []
    for index in range(1, 11):
        name = f"outage-{index}.png" if index % 2 else f"outage-{index}.jpg"
        kind = "PNG" if index % 2 else "JPEG"
        started = time.monotonic()
        uploads.append(upload(client, name, picture(index, kind=kind)))
        answered.append(time.monotonic() - started)

    assert max(answered) < PROMPT_SECONDS, answered
    job_ids = [body["job_id"] for body in uploads]
    waiting = Job.objects.filter(id__in=job_ids)
    assert sorted(waiting.values_list("status", "attempts")) == [(Job.Status.QUEUED, 0)] * 10
    unsent = {
        line["job_id"] for line in server_log(server) if line.get("event") == "job_enqueue_failed"
    }
    assert unsent == set(job_ids)

    throwaway_redis.start()
    requeue_stuck_send(throwaway_redis.url)
    finished = jobs_wait(client.get, [body["status_url"] for body in uploads], timeout=120)

    for body in uploads:
        assert_classified_once(finished[body["status_url"]], attempts=1)
    requeued = worker.wait_for_log(lambda line: line.get("event") == "jobs_requeued")
    assert requeued["count"] == 10
