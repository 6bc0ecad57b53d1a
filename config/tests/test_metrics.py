"""GET /metrics: Prometheus text for every process on the host, behind the scrape token."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from redis.connection import Connection

from config import metrics, redis_guard

SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def _sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_scrape_with_the_token_returns_prometheus_text(api_client):
    response = api_client.get("/metrics", **SCRAPE)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert "django_http_requests_before_middlewares" in names


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "NOT_AUTHENTICATED"),
        ("Basic dGVzdC1tZXRyaWNzLXRva2Vu", "NOT_AUTHENTICATED"),
        ("Bearer", "NOT_AUTHENTICATED"),
        ("test-metrics-token", "NOT_AUTHENTICATED"),
        # Not the scrape token, so it is taken for a JWT, and is not one.
        ("Bearer wrong-token", "AUTHENTICATION_FAILED"),
    ],
)
def test_scrape_without_the_right_token_is_401(api_client, authorization, code):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = api_client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert b"vantage_" not in response.content


@pytest.mark.django_db
def test_no_token_configured_means_no_anonymous_scrape(api_client, settings):
    settings.METRICS_TOKEN = ""
    assert api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert api_client.get("/metrics", **SCRAPE).status_code == 401


def test_metrics_of_other_processes_add_up(api_client):
    labels = {"code": "CROSS_PROCESS_CHECK", "status": "499"}
    metrics.ERRORS.labels(**labels).inc(2)
    code = (
        "import django; django.setup();"
        "from config import metrics;"
        "metrics.ERRORS.labels(code='CROSS_PROCESS_CHECK', status='499').inc(3)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=settings.BASE_DIR)

    text = api_client.get("/metrics", **SCRAPE).content.decode()

    assert _sample(text, "vantage_http_errors_total", labels) == 5.0


def test_an_organization_admin_may_not_scrape_the_installation(admin_client):
    response = admin_client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED"


def test_member_without_metrics_read_is_403(member_client):
    response = member_client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED"


class _OfflineConnection(Connection):
    """A connection that never reaches a server: the pool's bookkeeping alone."""

    def connect(self) -> None:
        pass

    def can_read(self, timeout: float = 0) -> bool:
        return False

    def disconnect(self, *args: object, **kwargs: object) -> None:
        pass


def test_the_pool_gauge_shows_connections_made_and_given_back_within_a_second():
    pool = redis_guard.GuardedConnectionPool(connection_class=_OfflineConnection)
    pool.release(pool.get_connection())
    redis_guard._pool_gauges_set(settled=True)  # shown: one more idle, none in use
    first, second = pool.get_connection(), pool.get_connection()  # the pool grows
    pool.release(first)
    pool.release(second)

    idle = sum(len(each._available_connections) for each in list(redis_guard._pools))
    in_use = sum(len(each._in_use_connections) for each in list(redis_guard._pools))
    assert redis_guard._POOL_IDLE._value.get() == idle
    assert redis_guard._POOL_IN_USE._value.get() == in_use
