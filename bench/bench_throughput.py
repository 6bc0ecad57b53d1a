"""Throughput of the whole stack on a GET against a bare DRF view, over loopback.

One gunicorn server (2 workers, the project's gthread configuration) on the
benchmark's database, with rate limits on and Redis when it answers. Client
processes, each on one keep-alive connection, send requests back to back for
a few seconds per case; the cases take turns in every cycle, so a change in
the machine's load weighs on the baseline and the full stack alike.
"""

from __future__ import annotations

import http.client
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from django.conf import settings

from bench.bench_authz import REDIS_URL, _redis_reachable

# As many clients as server workers: the clients run on the same machine, and
# more of them only take CPU time from the server (and from Redis) they measure.
CLIENTS = 2
CYCLES = 5
SECONDS = 3.0
GOAL = 0.5


def _hammer(port: int, path: str, headers: dict[str, str], seconds: float) -> tuple[int, int]:
    """Send GETs on one connection for `seconds`; return (answered 200, anything else)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok = other = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            ok += 1
        else:
            other += 1
    connection.close()
    return ok, other


def _setup() -> dict[str, str]:
    from accounts.services.organizations import (
        member_add,
        organization_create,
        organization_limits_set,
        user_create,
    )
    from accounts.services.sessions import auth_login
    from accounts.services.tokens import token_create

    org = organization_create(name="Bench load", slug="bench-load", tier="enterprise")
    # The highest override: the bench measures the limiter's cost, not its refusals.
    organization_limits_set(organization=org, requests_per_minute=1_000_000)
    user = user_create(username="load", email="load@example.com", password="bench-pass-12345")
    member_add(organization=org, user=user, role="admin")
    token = token_create(organization=org, name="load", scopes=["image:read"], created_by=user)
    access = auth_login(login="load", password="bench-pass-12345").tokens["access"]
    return {"access": access, "secret": token.secret}


def _server(redis: bool) -> Any:
    from conftest import server_spawn

    server = server_spawn(
        log_path=settings.VAR_DIR / "bench-throughput.log",
        workers=2,
        DJANGO_SETTINGS_MODULE="bench.settings",
        RATE_LIMIT_ENABLED="true",
        REDIS_URL=REDIS_URL if redis else "",
        LOG_LEVEL="INFO",
    )
    server.wait_until_ready()
    return server


def run() -> None:
    credentials = _setup()
    redis = _redis_reachable()
    server = _server(redis)
    cases = {
        "bare DRF view (baseline)": ("/bench/bare", {}),
        "full stack, JWT (auth + decision + rate limit + metrics + logs)": (
            "/bench/authenticated", {"Authorization": f"Bearer {credentials['access']}"}),
        "full stack, service token": (
            "/bench/authenticated", {"Authorization": f"Bearer {credentials['secret']}"}),
    }  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in cases}
    try:
        with ProcessPoolExecutor(max_workers=CLIENTS) as pool:
            for cycle in range(CYCLES + 1):  # the first cycle warms up and is not counted
                for name, (path, headers) in cases.items():
                    done = [pool.submit(_hammer, server.port, path, headers, SECONDS)
                            for _ in range(CLIENTS)]  # fmt: skip
                    answers = [future.result() for future in done]
                    if any(other for _, other in answers):
                        raise AssertionError(f"{name}: not every answer was 200: {answers}")
                    if cycle:
                        rates[name].append(sum(ok for ok, _ in answers) / SECONDS)
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
    _report(rates, redis)


def _report(rates: dict[str, list[float]], redis: bool) -> None:
    store = f"Redis ({REDIS_URL})" if redis else "in-process cache and limiter"
    print(
        f"\n== throughput over loopback: gunicorn 2 workers, {CLIENTS} keep-alive clients, "
        f"{CYCLES} interleaved cycles of {SECONDS:.0f} s; {store}; {os.cpu_count()} CPUs =="
    )
    baseline = statistics.median(next(iter(rates.values())))
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:<66} {median:8.0f} req/s  (min {min(values):.0f}, max {max(values):.0f})"
              f"  {median / baseline:5.2f}x")  # fmt: skip
    worst = min(statistics.median(values) for values in rates.values()) / baseline
    verdict = "meets" if worst >= GOAL else "MISSES"
    print(
        f"  full stack keeps {worst:.2f}x of the bare view's throughput: {verdict} the {GOAL}x goal"
    )
