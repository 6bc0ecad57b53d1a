"""Throughput of the whole stack on a GET against a bare DRF view, over loopback.

One gunicorn server (2 workers, the project's gthread configuration) on the
benchmark's database, with rate limits on and Redis when it answers. Client
processes, each on one keep-alive connection, send requests back to back for
a few seconds per case; the cases take turns in every cycle, and each case is
compared with the baseline of its own cycle, so a change in the machine's load
weighs on the baseline and the full stack alike.
"""

from __future__ import annotations

import http.client
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings

from bench.bench_authz import REDIS_URL, _redis_reachable

# As many clients as server workers: the clients run on the same machine, and
# more of them only take CPU time from the server (and from Redis) they measure.
CLIENTS = 2
CYCLES = 15
SECONDS = 1.0
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
    from config.testing.processes import server_spawn

    server = server_spawn(
        log_path=settings.VAR_DIR / "bench-throughput.log",
        workers=2,
        DJANGO_SETTINGS_MODULE="bench.settings",
        RATE_LIMIT_ENABLED="true",
        REDIS_URL=REDIS_URL if redis else "",
        LOG_LEVEL="INFO",
        # A worker replaced mid-cycle (after its 5,000th request by default) would pause
        # the server for its start-up and blur the cycles it falls in.
        GUNICORN_MAX_REQUESTS="0",
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
    cpu: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
    try:
        with ProcessPoolExecutor(max_workers=CLIENTS) as pool:
            for cycle in range(CYCLES + 1):  # the first cycle warms up and is not counted
                for name, (path, headers) in cases.items():
                    before = _workers_cpu(server.process.pid)
                    done = [pool.submit(_hammer, server.port, path, headers, SECONDS)
                            for _ in range(CLIENTS)]  # fmt: skip
                    answers = [future.result() for future in done]
                    after = _workers_cpu(server.process.pid)
                    if any(other for _, other in answers):
                        raise AssertionError(f"{name}: not every answer was 200: {answers}")
                    if cycle:
                        answered = sum(ok for ok, _ in answers)
                        rates[name].append(answered / SECONDS)
                        if before.keys() == after.keys():  # no worker was replaced meanwhile
                            spent = sum(after.values()) - sum(before.values())
                            cpu[name].append((spent, answered))
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
    _report(rates, redis)
    _report_cpu(cpu)


def _workers_cpu(master_pid: int) -> dict[int, float]:
    """CPU seconds (user + system) each gunicorn worker of the master has used so far."""
    proc = Path("/proc")
    children = (proc / str(master_pid) / "task" / str(master_pid) / "children").read_text()
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in map(int, children.split()):
        # The fields after the command's closing parenthesis start at the state (field 3):
        # utime and stime are fields 14 and 15.
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def _report_cpu(cpu: dict[str, list[tuple[float, int]]]) -> None:
    """The servers' CPU time per answered request: what bounds throughput on a busy host.

    Unlike requests per second it does not move with other load on the machine.
    """
    print("  server CPU per request (both workers, user + system, all counted cycles):")
    per_request = {
        name: sum(spent for spent, _ in samples) / max(1, sum(n for _, n in samples))
        for name, samples in cpu.items()
    }
    baseline = next(iter(per_request.values()))
    for name, value in per_request.items():
        bound = baseline / value if value else float("nan")
        print(f"  {name:<66} {value * 1e3:6.2f} ms  CPU-bound throughput {bound:5.2f}x")


def _report(rates: dict[str, list[float]], redis: bool) -> None:
    store = f"Redis ({REDIS_URL})" if redis else "in-process cache and limiter"
    print(
        f"\n== throughput over loopback: gunicorn 2 workers, {CLIENTS} keep-alive clients, "
        f"{CYCLES} interleaved cycles of {SECONDS:.0f} s; {store}; {os.cpu_count()} CPUs =="
    )
    # Each cycle measures every case back to back, so a case's rate is compared with the
    # baseline's of the same cycle: a burst of load from elsewhere on the machine then
    # weighs on both sides of a ratio instead of on one case's median alone.
    baseline = next(iter(rates.values()))
    worst = 1.0
    for name, values in rates.items():
        ratios = [value / base for value, base in zip(values, baseline, strict=True)]
        ratio = statistics.median(ratios)
        worst = min(worst, ratio)
        print(f"  {name:<66} {statistics.median(values):8.0f} req/s  "
              f"(min {min(values):.0f}, max {max(values):.0f})  {ratio:5.2f}x  "
              f"(cycles {min(ratios):.2f}-{max(ratios):.2f}x)")  # fmt: skip
    verdict = "meets" if worst >= GOAL else "MISSES"
    print(
        f"  full stack keeps {worst:.2f}x of the bare view's throughput (median of the cycles' "
        f"ratios): {verdict} the {GOAL}x goal"
    )
