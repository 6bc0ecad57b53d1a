"""Redis Sentinel: the cache, the rate limiter and the broker follow a failover.

The test's own Redis master and replica and three real `redis-sentinel`
processes (Debian's redis-sentinel) watch the master. A real gunicorn server
and a real Celery worker find the master through the sentinels only
(REDIS_SENTINELS, a sentinel:// broker URL). The master is killed; the
sentinels promote the replica, and every request made meanwhile is still
answered, /health comes back healthy, and a new upload's job runs through the
new master. The machine's shared Redis is never touched.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from PIL import Image as Picture

from accounts.services.tokens import token_create
from config.testing.processes import WorkerProcess, free_port, worker_spawn
from config.testing.redis import redis_answers

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SERVICE = "vantage-ha"


def _binary(name: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.exists()), None
    )
    if path is None:
        message = f"{name} is missing: `make test-tools` installs Debian's package"
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class SentinelGroup:
    """A master, its replica and three sentinels, all of this test's own, on free ports."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server = _binary("redis-server")
        self.sentinel = _binary("redis-sentinel")
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    def _start(self, port: int, command: list[str]) -> None:
        with (self.directory / f"{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _redis(self, port: int, *extra: str) -> None:
        data = self.directory / str(port)
        data.mkdir()
        command = [
            self.server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            *extra,
        ]
        self._start(port, command)

    def start(self) -> None:
        self._redis(self.master_port)
        self._wait(lambda: redis_answers(self.master_port), "the master did not start")
        self._redis(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        self._wait(self._replica_in_sync, "the replica did not catch up")
        for port in self.sentinel_ports:
            config = self.directory / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._start(port, [self.sentinel, str(config)])
        self._wait(self._sentinels_see_everyone, "the sentinels did not find each other")

    def _replica_in_sync(self) -> bool:
        if not redis_answers(self.replica_port):
            return False
        info = redis.Redis(port=self.replica_port).info("replication")
        return info.get("master_link_status") == "up"

    def _sentinels_see_everyone(self) -> bool:
        for port in self.sentinel_ports:
            if not redis_answers(port):
                return False
            state: Any = redis.Redis(port=port, decode_responses=True).sentinel_master(SERVICE)
            if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                return False
        return True

    def master(self) -> int:
        """Return the master's port as the sentinels name it now."""
        sentinel = redis.Redis(port=self.sentinel_ports[0])
        address: Any = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(address[1])

    def kill(self, port: int) -> None:
        self.processes[port].kill()
        self.processes[port].wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    @staticmethod
    def _wait(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(message)
            time.sleep(0.1)


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path)
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def worker_on(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**env_overrides: str) -> WorkerProcess:
        worker = worker_spawn(
            log_path=tmp_path / "worker.log", name="sentinel", solo=True, **env_overrides
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _jpeg(index: int) -> bytes:
    buffer = io.BytesIO()
    Picture.new("RGB", (200 + index, 160), (30 * index % 256, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


def _job_succeeds(client: httpx.Client, index: int, timeout: float = 60) -> None:
    photo = {"file": (f"{index}.jpg", _jpeg(index), "image/jpeg")}
    accepted = client.post("/api/v1/images/upload", files=photo)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/images/jobs/{job_id}").json()
        if body["status"] == "succeeded":
            return
        assert body["status"] != "failed", body
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} unfinished after {timeout}s: {body}")


def _healthy(server: Any) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/health", timeout=10).json())


def test_cache_limiter_and_broker_follow_a_sentinel_failover(
    server_processes: Any, worker_on: Any, sentinels: SentinelGroup, member: Any
) -> None:
    addresses = [f"127.0.0.1:{port}" for port in sentinels.sentinel_ports]
    services = {
        "REDIS_URL": f"redis://{SERVICE}/0",
        "REDIS_SENTINELS": ",".join(addresses),
        "CELERY_BROKER_URL": ";".join(f"sentinel://{address}/1" for address in addresses),
        "CELERY_BROKER_SENTINEL_MASTER": SERVICE,
        "RATE_LIMIT_ENABLED": "true",
    }
    (server,) = server_processes(count=1, workers=1, **services)
    worker_on(**services)
    organization = member.memberships.get().organization
    issued = token_create(
        organization=organization,
        name="sentinel test",
        scopes=["image:upload", "image:read"],
        created_by=member,
    )
    client = httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {issued.secret}"}
    )

    report = _healthy(server)
    assert report["status"] == "healthy", report
    _job_succeeds(client, 0)
    first = client.get("/api/v1/images")
    second = client.get("/api/v1/images")
    assert first.status_code == second.status_code == 200
    # Counted in Redis: one shared window, one request apart.
    remaining = int(second.headers["X-RateLimit-Remaining"])
    assert remaining == int(first.headers["X-RateLimit-Remaining"]) - 1
    old_master = sentinels.master()
    assert old_master == sentinels.master_port
    master = redis.Redis(port=old_master)
    assert master.dbsize() > 0  # the cache and the limiter wrote there
    assert redis.Redis(port=old_master, db=1).dbsize() > 0  # and the broker its bindings

    sentinels.kill(old_master)
    answers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answers.append(client.get("/api/v1/images").status_code)
        if sentinels.master() != old_master and _healthy(server)["status"] == "healthy":
            break
        time.sleep(0.2)
    new_master = sentinels.master()

    assert new_master == sentinels.replica_port, "the sentinels did not promote the replica"
    # Served all along: identity from the database, limits counted in the process.
    assert set(answers) == {200}, answers
    report = _healthy(server)
    assert report["status"] == "healthy", report
    # The new master holds the window the old one had (replicated), and counts on.
    counted = [client.get("/api/v1/images") for _ in range(2)]
    counts = [int(response.headers["X-RateLimit-Remaining"]) for response in counted]
    assert counts[1] == counts[0] - 1, counts
    assert redis.Redis(port=new_master).dbsize() > 0
    # The broker too: a new upload's job reaches the worker through the new master.
    _job_succeeds(client, 1)
