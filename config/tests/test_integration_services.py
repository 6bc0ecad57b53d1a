"""With DATABASE_URL, REDIS_URL and CELERY_BROKER_URL set, the app really uses those services."""

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config.celery import app as celery_app

pytestmark = pytest.mark.integration


@pytest.mark.django_db(transaction=True)
def test_database_is_postgresql_with_persistent_connections(api_client):
    assert connection.vendor == "postgresql"
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True

    api_client.get("/health")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        first = cursor.fetchone()[0]
    api_client.get("/health")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        second = cursor.fetchone()[0]

    # Both requests were served on one kept connection: no reconnect per request.
    assert first == second


def test_cache_is_redis_and_shared_across_processes():
    assert settings.CACHES["default"]["BACKEND"] == (
        "django_prometheus.cache.backends.redis.RedisCache"  # django-redis, counted
    )
    key, value = f"shared-{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=60)
    code = (
        "import django; django.setup(); from django.core.cache import cache;"
        f"print(cache.get({key!r}))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}

    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip().splitlines()[-1] == value


def test_broker_is_a_real_server():
    with celery_app.connection_for_write() as conn:
        assert conn.transport.driver_type in ("redis", "amqp")
        conn.ensure_connection(max_retries=0)


@pytest.mark.django_db
def test_health_reports_every_real_service_ok(api_client):
    body = api_client.get("/api/v1/health").json()
    assert body["status"] == "healthy"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
    }
