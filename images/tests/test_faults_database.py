"""PostgreSQL restarted while a real Celery worker runs jobs: every job still finishes at once.

The database is a PostgreSQL cluster of the test's own (initdb, on a free port,
in a temporary folder, run as the postgres user), so restarting it disturbs
nobody else; a gunicorn server and a worker of the test's own use it, with a
redis-server of the test's own as their broker. The stuck-job check never
runs and JOB_RUNNING_TIMEOUT stays at ten minutes: a job the restart left
`running` would wait for it, past the test's patience.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from PIL import Image as Picture

from config.testing.processes import WorkerProcess, free_port
from config.testing.redis import ThrowawayRedis
from images.tests.factories import http_upload
from images.tests.factories import job_run_starts as job_run_lines

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
JOBS = 4
RESTARTS = 2
# Every job's work and one retry backoff fit well within this; ten minutes do not.
FINISH_SECONDS = 60
MAKE_MEMBER = """
import django; django.setup()
from accounts.services.tokens import token_create
from accounts.tests.factories import MembershipFactory
member = MembershipFactory(role="user")
issued = token_create(organization=member.organization, name="restart test",
                      scopes=["image:upload", "image:read"], created_by=member.user)
print("SECRET=" + issued.secret)
"""


class PrivatePostgres:
    """A PostgreSQL cluster of one test's own, which it may restart at will."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/vantage"

    def _as_postgres(self, program: str, *arguments: str) -> None:
        # Into a file: the server started inherits the output, and a pipe would never close.
        with (self.directory / "commands.log").open("ab") as log:
            subprocess.run(
                [RUNUSER, "-u", "postgres", "--", str(POSTGRES_BIN / program), *arguments],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
            )

    def _ctl(self, *arguments: str) -> None:
        self._as_postgres(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-w",
            "-l",
            str(self.directory / "postgres.log"),
            *arguments,
        )

    def create(self) -> None:
        self._as_postgres(
            "initdb",
            "-D",
            str(self.directory / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c shared_buffers=16MB"
        )
        self._ctl("-o", options, "start")
        subprocess.run(
            [
                str(POSTGRES_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE vantage",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def restart(self) -> None:
        """Stop the server as an operator's restart does (clients cut off), and start it again."""
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


def _subprocess_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
    }


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A migrated PostgreSQL cluster of this test's own; never the machine's shared one."""
    if not (POSTGRES_BIN / "initdb").exists() or not Path(RUNUSER).exists():
        pytest.skip(f"PostgreSQL's server programs are not in {POSTGRES_BIN}")
    # Not under pytest's own folder, which the postgres user may not enter.
    directory = Path(tempfile.mkdtemp(prefix="vantage-pg-"))
    shutil.chown(directory, user="postgres")
    cluster = PrivatePostgres(directory)
    try:
        cluster.create()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=settings.BASE_DIR,
            env=_subprocess_env(cluster.url),
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # it may never have started
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def member_token(database_url: str) -> str:
    """Create a member and a service token of theirs in the database; return the secret."""
    made = subprocess.run(
        [sys.executable, "-c", MAKE_MEMBER],
        cwd=settings.BASE_DIR,
        env=_subprocess_env(database_url),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return next(line[7:] for line in made.stdout.splitlines() if line.startswith("SECRET="))


@functools.cache
def noisy_png() -> bytes:
    """A 1600x1600 PNG of noise: quick to send, a second or two of a worker's time."""
    size = (1600, 1600)
    channels = [Picture.effect_noise(size, 40 + angle).rotate(angle) for angle in (0, 90, 180)]
    buffer = io.BytesIO()
    Picture.merge("RGB", channels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def finished_jobs(client: httpx.Client, urls: list[str], *, timeout: float) -> dict[str, Any]:
    """Poll each job until it has finished; a 503 while the database restarts is waited out."""
    last: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            answer = client.get(url)
            if answer.status_code == 503:
                continue
            assert answer.status_code == 200, answer.text
            last[url] = answer.json()
            if last[url]["status"] in ("succeeded", "failed"):
                pending.remove(url)
        time.sleep(0.25)
    left = {url: last.get(url, {}).get("status") for url in pending}
    assert not left, f"{len(left)} job(s) unfinished {timeout}s after the restarts: {left}"
    return last


def job_run_starts(worker: WorkerProcess) -> int:
    return len(job_run_lines(worker))


def restart_during_a_job(cluster: PrivatePostgres, worker: WorkerProcess, started: int) -> int:
    """Restart PostgreSQL once the worker is past its claim of a new job; return the starts."""
    deadline = time.monotonic() + 60
    while job_run_starts(worker) <= started:
        assert time.monotonic() < deadline, "the worker began no job"
        time.sleep(0.05)
    time.sleep(0.3)  # past the claim, in the image's decoding
    cluster.restart()
    return job_run_starts(worker)


def test_jobs_cut_off_by_a_database_restart_finish_within_a_retry_backoff(
    private_postgres: PrivatePostgres,
    server_processes: Any,
    worker_processes: Any,
    throwaway_redis: ThrowawayRedis,
) -> None:
    env = {"DATABASE_URL": private_postgres.url, "CELERY_BROKER_URL": throwaway_redis.url}
    (server,) = server_processes(count=1, **env)
    worker = worker_processes(**env, JOB_RUNNING_TIMEOUT="600", JOB_MAX_ATTEMPTS="5")
    secret = member_token(private_postgres.url)
    with httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {secret}"}
    ) as client:
        uploads = [http_upload(client, f"noise-{index}.png", noisy_png()) for index in range(JOBS)]

        started = 0
        for _ in range(RESTARTS):
            started = restart_during_a_job(private_postgres, worker, started)
        finished = finished_jobs(
            client, [body["status_url"] for body in uploads], timeout=FINISH_SECONDS
        )

    bodies = list(finished.values())
    assert [body["status"] for body in bodies] == ["succeeded"] * JOBS, bodies
    # The restarts cut off jobs mid-way; each cut was mended by the next attempt.
    attempts = sorted(body["attempts"] for body in bodies)
    assert attempts[-1] > 1, "no job was running when PostgreSQL restarted"
    assert sum(attempts) - JOBS <= RESTARTS, attempts
    assert not [line for line in worker.log_lines() if line.get("event") == "jobs_requeued"]
