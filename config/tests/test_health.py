"""GET /health and GET /api/v1/health: each dependency checked, with its latency."""

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from config import __version__
from config.health import last_report


@contextmanager
def _database_unreachable() -> Iterator[None]:
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-directory/down.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def database_down(transactional_db: None) -> Iterator[None]:
    """Point the default connection at a database that cannot be reached."""
    with _database_unreachable():
        yield


@pytest.fixture
def cache_down(settings) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


@pytest.fixture
def broker_down(settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"


def _assert_check(result: dict, status: str) -> None:
    assert result["status"] == status
    assert isinstance(result["latency_ms"], float)
    assert result["latency_ms"] >= 0


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/api/v1/health"])
def test_healthy_when_every_dependency_answers(api_client, path):
    response = api_client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for result in body["checks"].values():
        _assert_check(result, "ok")


@pytest.mark.django_db
def test_api_health_reports_the_version(api_client):
    assert api_client.get("/api/v1/health").json()["version"] == __version__
    assert "version" not in api_client.get("/health").json()


def test_unhealthy_503_when_the_database_is_down(api_client, database_down):
    response = api_client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    _assert_check(body["checks"]["database"], "error")
    assert body["checks"]["database"]["error"] == "OperationalError"
    _assert_check(body["checks"]["cache"], "ok")
    _assert_check(body["checks"]["broker"], "ok")


@pytest.mark.django_db
def test_degraded_200_when_the_cache_is_down(api_client, cache_down):
    response = api_client.get("/api/v1/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    _assert_check(body["checks"]["cache"], "error")
    _assert_check(body["checks"]["database"], "ok")
    # The error names the failure's class, never the address or credentials.
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_degraded_200_when_the_broker_is_down(api_client, broker_down):
    response = api_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    _assert_check(body["checks"]["broker"], "error")
    _assert_check(body["checks"]["database"], "ok")
    _assert_check(body["checks"]["cache"], "ok")


def test_unhealthy_wins_over_degraded(api_client, database_down, cache_down):
    response = api_client.get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


@pytest.mark.django_db
def test_health_needs_no_credentials_and_ignores_bad_ones(api_client):
    response = api_client.get("/health", HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert response.status_code == 200


@pytest.fixture
def cached_reports(settings) -> Iterator[None]:
    settings.HEALTH_CACHE_SECONDS = 0.5
    last_report.forget()
    yield
    last_report.forget()


@pytest.mark.django_db(transaction=True)
def test_a_report_is_reused_until_it_is_older_than_the_setting(api_client, cached_reports):
    assert api_client.get("/health").status_code == 200
    with _database_unreachable():
        # Within the window the dependencies are not asked again.
        assert api_client.get("/health").status_code == 200
        time.sleep(0.6)
        response = api_client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "error"


def test_a_browser_is_answered_json_even_in_debug_mode_where_the_api_is_browsable(
    server_processes,
):
    # Debug mode offers DRF's browsable pages, chosen when they start: a real server in it.
    (server,) = server_processes(count=1, DJANGO_DEBUG="true")

    for path in ("/health", "/api/v1/health"):
        for accept in ("text/html,application/xhtml+xml,*/*;q=0.8", "text/html"):
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.port}{path}", headers={"Accept": accept}
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local)
                assert response.status == 200, (path, accept)
                assert response.headers["Content-Type"] == "application/json", (path, accept)
                assert json.loads(response.read())["status"] == "healthy"
