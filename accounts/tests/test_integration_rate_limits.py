"""Rate limits across real processes: gunicorn workers sharing Redis, and Redis going away.

The servers (`server_processes`) share this test's PostgreSQL database; they
inherit its environment, so also its CACHE_KEY_PREFIX (config/settings_test.py
sets it in os.environ) and METRICS_TOKEN. The Redis outage uses a redis-server
of the test's own: the machine's shared Redis is never stopped.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from django.test import Client
from django_redis import get_redis_connection

from accounts.models import Organization
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from config.testing.processes import ServerProcess

LIMITS = "/api/v1/images/limits"  # any principal; cheap

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def service_token(org: Organization) -> str:
    """Create a service token of `org` with the command; return its secret."""
    MembershipFactory(organization=org, role="admin")
    out = io.StringIO()
    call_command(
        "create_service_token",
        "--org",
        org.slug,
        "--name",
        "load-test",
        "--scopes",
        "image:read",
        stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("sk_")
    return secret


def fire(server: ServerProcess, secret: str, count: int, threads: int) -> list[httpx.Response]:
    """Make `count` GETs with the token from `threads` threads at once, each on its own id.

    Each request comes on a connection of its own, as from that many clients, so
    the server's workers share them out (kept-alive connections, all accepted by
    one fast worker, could leave the other idle).
    """
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=0)
    headers = {"Authorization": f"Bearer {secret}", "Connection": "close"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30, limits=limits) as client:

        def one(index: int) -> httpx.Response:
            return client.get(LIMITS, headers={"X-Request-ID": f"rl-{index}"})

        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(one, range(count)))


def server_log(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return lines


def assert_refused(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit"].startswith('"principal";r=0;t=')


# --- A. One token, fifty clients, two workers, one Redis window -------------------------
def test_fifty_concurrent_clients_of_one_token_get_exactly_the_quota_across_workers(
    server_processes,
):
    secret = service_token(OrganizationFactory(tier="pro"))
    (server,) = server_processes(count=1, workers=2, RATE_LIMIT_ENABLED="true")

    responses = fire(server, secret, count=100, threads=50)

    assert Counter(r.status_code for r in responses) == {200: 60, 429: 40}
    allowed = [r for r in responses if r.status_code == 200]
    # Counted atomically: each allowed request saw a different count, 1 to 60.
    remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in allowed)
    assert remaining == list(range(60))
    assert {r.headers["X-RateLimit-Limit"] for r in allowed} == {"60"}
    for response in responses:
        if response.status_code == 429:
            assert_refused(response, limit=60)
    served_by = {
        line["pid"]
        for line in server_log(server)
        if line.get("event") == "request_finished" and str(line.get("request_id")).startswith("rl-")
    }
    assert len(served_by) == 2, served_by


# --- B. Redis unreachable: each process counts alone, with a share of the limit ----------
def test_with_redis_down_requests_are_still_answered_and_limited_per_process(
    server_processes, throwaway_redis
):
    secret = service_token(OrganizationFactory(tier="pro"))
    (server,) = server_processes(
        count=1,
        workers=1,
        RATE_LIMIT_ENABLED="true",
        REDIS_URL=throwaway_redis.url,
        RATE_LIMIT_FALLBACK_PROCESSES="2",
    )
    headers = {"Authorization": f"Bearer {secret}"}
    before = httpx.get(f"{server.url}{LIMITS}", headers=headers, timeout=30)
    assert before.status_code == 200, before.text
    assert (before.headers["X-RateLimit-Limit"], before.headers["X-RateLimit-Remaining"]) == (
        "60",
        "59",
    )

    throwaway_redis.kill()
    responses = fire(server, secret, count=40, threads=4)

    assert Counter(r.status_code for r in responses) == {200: 30, 429: 10}
    allowed = [r for r in responses if r.status_code == 200]
    assert {r.headers["X-RateLimit-Limit"] for r in allowed} == {"30"}
    for response in responses:
        if response.status_code == 429:
            assert_refused(response, limit=30)
    warnings = [
        line for line in server_log(server) if line.get("event") == "rate_limit_store_unreachable"
    ]
    assert warnings, server.log_path.read_text()[-4000:]
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["fallback_processes"] == 2


# --- One round trip to Redis per authenticated request --------------------------------
@pytest.fixture
def round_trips(monkeypatch):
    """Count the round trips this process makes to Redis (a pipeline is one)."""
    from redis.connection import AbstractConnection

    sent = []
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def test_a_warm_request_costs_one_round_trip_to_redis(settings, round_trips):
    from rest_framework.test import APIClient

    from config.testing.http import login_client

    settings.RATE_LIMIT_ENABLED = True
    org = OrganizationFactory(tier="pro")
    user = MembershipFactory(organization=org, role="admin").user
    person = login_client(user)
    machine = APIClient(HTTP_AUTHORIZATION=f"Bearer {service_token(org)}")
    for client in (person, machine):
        for _ in range(3):  # the first calls learn the caller's limits and permissions
            assert client.get(LIMITS).status_code == 200
        round_trips.clear()

        answer = client.get(LIMITS)

        assert answer.status_code == 200
        assert answer["X-RateLimit-Remaining"] == "56"
        assert len(round_trips) == 1, round_trips


def test_a_redis_that_has_forgotten_the_window_script_still_counts_each_request(
    settings, log_lines
):
    """Redis restarted (or its scripts flushed): the script is sent whole, and nothing is lost."""
    settings.RATE_LIMIT_ENABLED = True
    secret = service_token(OrganizationFactory())
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    redis = get_redis_connection("default")
    remaining = []
    # The first request is counted on its own, the next ones in the credential's round trip.
    for _ in range(3):
        redis.script_flush()
        response = client.get(LIMITS)
        assert response.status_code == 200
        remaining.append(int(response["X-RateLimit-Remaining"]))

    limit = int(response["X-RateLimit-Limit"])
    assert remaining == [limit - 1, limit - 2, limit - 3]
    # Answered in the credential's round trip, not taken for an outage of the cache.
    assert not [line for line in log_lines() if line["event"] == "auth_cache_unreachable"]
