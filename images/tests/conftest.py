"""Fixtures shared by the images tests: an S3 server and bucket, real workers."""

from __future__ import annotations

import copy
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from config.testing.processes import (
    WorkerProcess,
    free_port,
    worker_spawn,
)
from images.tests.factories import (
    ACCESS_KEY,
    BUCKET,
    REGION,
    SECRET_KEY,
    _group_signal,
    storages_from_environment,
)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """Start moto's S3 server on a free loopback port for this module; stop it after."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    # start() waits for the server without a limit; a server that cannot bind never answers.
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(timeout=15)
    if starting.is_alive():
        pytest.fail(
            f"moto's S3 server did not start on 127.0.0.1:{port} within 15 s", pytrace=False
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.get(f"{endpoint}/moto-api/", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        server.stop()
        pytest.fail(f"moto's S3 server on {endpoint} does not answer: {exc}", pytrace=False)
    yield endpoint
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> Iterator[Any]:
    """An empty bucket on the server, and an S3 client of its own to look into it."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    httpx.post(f"{s3_endpoint}/moto-api/reset", timeout=5).raise_for_status()


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """A MEDIA_ROOT of the test's own, to show that nothing is written there."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def s3_storage(
    request: pytest.FixtureRequest, settings: Any, s3_endpoint: str, bucket: Any, media_root: Path
) -> str:
    """Store files in the bucket, as the settings do when STORAGE_S3_* are set; return the prefix.

    Changing STORAGES through the `settings` fixture sends `setting_changed`, on which
    Django empties its storage handler's cache and `default_storage`; the fixture sets
    the old value back after the test, which empties them again.
    """
    prefix = getattr(request, "param", "")
    built = storages_from_environment(
        STORAGE_S3_BUCKET=BUCKET,
        STORAGE_S3_ENDPOINT_URL=s3_endpoint,
        STORAGE_S3_REGION=REGION,
        STORAGE_S3_ACCESS_KEY_ID=ACCESS_KEY,
        STORAGE_S3_SECRET_ACCESS_KEY=SECRET_KEY,
        STORAGE_S3_ADDRESSING_STYLE="path",
        STORAGE_S3_PREFIX=prefix,
    )
    settings.STORAGES = copy.deepcopy(built)
    assert default_storage.bucket_name == BUCKET
    assert isinstance(default_storage._wrapped, S3Storage)
    assert default_storage.location == prefix
    return prefix


@pytest.fixture
def worker_processes(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real Celery workers on this test's database, each leading a process group."""
    started: list[WorkerProcess] = []

    def start(**env_overrides: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = worker_spawn(log_path=log_path, name="jobs", own_session=True, **env_overrides)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        _group_signal(worker, signal.SIGTERM)
    for worker in started:
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _group_signal(worker, signal.SIGKILL)
            worker.process.wait(timeout=10)
