"""A Redis that hangs (stopped with SIGSTOP: alive, connected, silent) stalls nothing.

One redis-server of the test's own is the cache and the broker of a real
gunicorn server and of a real Celery worker. While it is stopped, `/health`
answers within 2 s naming what hangs, authenticated requests within 3 s and
an upload within 5 s; once it is resumed, the uploads' jobs run. The
machine's shared Redis is never touched.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from PIL import Image as Picture

from accounts.services.tokens import token_create
from accounts.tests.factories import PASSWORD
from config.testing.processes import WorkerProcess, worker_spawn
from config.testing.redis import ThrowawayRedis
from images.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HEALTH_SECONDS = 2.0
READ_SECONDS = 3.0
UPLOAD_SECONDS = 5.0


def jpeg(index: int) -> bytes:
    image = Picture.new("RGB", (320 + index, 240), (40 * index % 256, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def hung_redis(throwaway_redis: ThrowawayRedis) -> Iterator[ThrowawayRedis]:
    """The test's own Redis, always resumed at the end, whatever happened."""
    try:
        yield throwaway_redis
    finally:
        if throwaway_redis.process is not None and throwaway_redis.process.poll() is None:
            os.kill(throwaway_redis.process.pid, signal.SIGCONT)


def _signal(redis: ThrowawayRedis, signum: int) -> None:
    assert redis.process is not None
    os.kill(redis.process.pid, signum)


@pytest.fixture
def worker_on(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start one real Celery worker with the given environment; stop it at the end."""
    started: list[WorkerProcess] = []

    def start(**env_overrides: str) -> WorkerProcess:
        worker = worker_spawn(log_path=tmp_path / "worker.log", name="hang", **env_overrides)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def job_wait(client: httpx.Client, job_id: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/images/jobs/{job_id}").json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} unfinished after {timeout}s: {body}")


def requeue_stuck_send(broker_url: str) -> None:
    """Send the periodic re-queue task through `broker_url`, as beat does every 30 s."""
    from config.celery import app

    with app.connection_for_write(broker_url) as connection:
        app.send_task("images.jobs_requeue_stuck", connection=connection)


def assert_served_or_unavailable(response: httpx.Response) -> None:
    assert response.status_code in (200, 503), response.text
    if response.status_code == 503:
        assert int(response.headers["Retry-After"]) > 0


def bearer(server: Any, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {secret}"}
    )


def clients(server: Any, member: Any) -> tuple[httpx.Client, httpx.Client, httpx.Client, str]:
    """Return clients with a service token and with two login sessions, and the second's id."""
    organization = member.memberships.get().organization
    issued = token_create(
        organization=organization,
        name="hang test",
        scopes=["image:upload", "image:read"],
        created_by=member,
    )
    logins = []
    for _ in range(2):
        login = httpx.post(
            f"{server.url}/api/v1/auth/token",
            timeout=10,
            json={"username": member.username, "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        logins.append(login.json())
    return (
        bearer(server, issued.secret),
        bearer(server, logins[0]["access"]),
        bearer(server, logins[1]["access"]),
        logins[1]["session_id"],
    )


def upload(client: httpx.Client, index: int) -> httpx.Response:
    return client.post(
        "/api/v1/images/upload", files={"file": (f"{index}.jpg", jpeg(index), "image/jpeg")}
    )


def reads(tokens: httpx.Client, session: httpx.Client) -> list[tuple[httpx.Response, float]]:
    """Make authenticated reads with each credential; return each answer and how long it took."""
    answers = [timed(lambda: tokens.get("/api/v1/images")) for _ in range(3)]
    return answers + [timed(lambda: session.get("/api/v1/auth/me")) for _ in range(3)]


def assert_health_names_what_hangs(report: dict[str, Any]) -> None:
    assert report["status"] == "degraded", report
    assert report["checks"]["database"]["status"] == "ok"
    assert report["checks"]["cache"]["error"] == "TimeoutError", report
    assert report["checks"]["broker"]["error"] == "TimeoutError", report


def test_a_hung_redis_stalls_no_request_and_loses_no_upload(
    server_processes: Any, worker_on: Any, hung_redis: ThrowawayRedis, member: Any
) -> None:
    base = hung_redis.url.rsplit("/", 1)[0]
    services = {"REDIS_URL": f"{base}/0", "CELERY_BROKER_URL": f"{base}/1"}
    (server,) = server_processes(count=1, workers=1, RATE_LIMIT_ENABLED="true", **services)
    worker_on(**services, JOB_QUEUED_TIMEOUT="1")
    tokens, session, laptop, laptop_session = clients(server, member)
    before = upload(tokens, 0)
    assert before.status_code == 202, before.text
    assert job_wait(tokens, before.json()["job_id"], timeout=60)["status"] == "succeeded"
    assert laptop.get("/api/v1/auth/me").status_code == 200  # its live state now cached
    health = lambda: httpx.get(f"{server.url}/health", timeout=60)  # noqa: E731
    assert health().json()["status"] == "healthy"

    _signal(hung_redis, signal.SIGSTOP)
    probes = [timed(health)]
    answers = reads(tokens, session)
    uploads = [timed(lambda: upload(tokens, 1)), timed(lambda: upload(tokens, 2))]
    ended = timed(lambda: session.delete(f"/api/v1/auth/sessions/{laptop_session}"))
    revoked = timed(lambda: laptop.get("/api/v1/auth/me"))
    # Past the time a process leaves a failed Redis alone: each tries it again.
    time.sleep(settings.REDIS_COOLDOWN_SECONDS + 0.5)
    answers += reads(tokens, session)
    probes.append(timed(health))
    _signal(hung_redis, signal.SIGCONT)

    for response, took in probes:
        assert took < HEALTH_SECONDS, [took for _, took in probes]
        assert_health_names_what_hangs(response.json())
    for response, took in answers:
        assert took < READ_SECONDS, [took for _, took in answers]
        assert_served_or_unavailable(response)
    for accepted, took in uploads:
        assert took < UPLOAD_SECONDS, [took for _, took in uploads]
        assert accepted.status_code == 202, accepted.text
    # The first publish timed out: the next one, moments later, is not even tried.
    assert uploads[1][1] < 1, [took for _, took in uploads]
    # A revocation is enforced at once, from the database, while the cache hangs.
    assert (ended[0].status_code, revoked[0].status_code) == (204, 401), revoked[0].text
    assert max(ended[1], revoked[1]) < READ_SECONDS
    assert revoked[0].json()["code"] == "TOKEN_REVOKED"

    # Its message may never have reached the broker: the stuck-job check hands it again.
    requeue_stuck_send(services["CELERY_BROKER_URL"])
    for accepted, _ in uploads:
        job = job_wait(tokens, accepted.json()["job_id"], timeout=60)
        assert job["status"] == "succeeded", job
        assert Job.objects.get(id=job["id"]).status == Job.Status.SUCCEEDED
    assert health().json()["status"] == "healthy"
    # Redis is back holding the laptop's live state from before: it is never trusted again.
    time.sleep(settings.REDIS_COOLDOWN_SECONDS)
    assert laptop.get("/api/v1/auth/me").status_code == 401
