"""Throughput of the project's secured requests against a bare DRF application, over loopback.

Two gunicorn servers with the same flags (2 sync workers, one thread each):
the project, on the benchmark's database with rate limits on and Redis when it
answers, and a minimal Django + DRF application with no middleware at all
(bench/baseline). wrk (2 threads, 8 keep-alive connections) drives each case
in turn for a few seconds; the cases take turns in every cycle, and each is
compared with the baseline of its own cycle, so a change in the machine's load
weighs on the baseline and the case alike. Only 2xx answers count as
throughput (the unknown path's 404s for its own case).

With Redis, two more cases of the bare application give the floor under a
secured request: the bare view plus one Redis round trip, and plus the round
trip a warm secured request makes (its reads and the rate limiter's script).
No secured request can be cheaper than its floor, whatever the project does.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from bench.bench_authz import REDIS_URL, _redis_reachable
from config.testing.processes import ServerProcess, database_url_for_subprocess, free_port

CYCLES = 5
SECONDS = 4
GUNICORN_FLAGS = ["--workers", "2", "--worker-class", "sync", "--threads", "1"]
WRK_SCRIPT = Path(__file__).with_name("wrk_count.lua")


@dataclass(frozen=True)
class Case:
    name: str
    server: str  # "baseline" or "project"
    path: str
    headers: dict[str, str]
    goal: float | None = None  # the least share of the baseline's throughput it must keep
    counted: str = "2"  # the first digit of the statuses that count as answered


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


def _gunicorn(module: str, env: dict[str, str], log: Path) -> ServerProcess:
    """Start gunicorn with the benchmark's flags on `module`; it is not ready yet."""
    port = free_port()
    flags = [*GUNICORN_FLAGS, "--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", module, *flags],
            cwd=settings.BASE_DIR,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(process, port, log)


def _servers(redis: bool) -> dict[str, ServerProcess]:
    var = settings.VAR_DIR
    project = _gunicorn(
        "config.wsgi",
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": database_url_for_subprocess(),
            "RATE_LIMIT_ENABLED": "true",
            "REDIS_URL": REDIS_URL if redis else "",
            "LOG_LEVEL": "INFO",
            # As in production: the test settings probe every request.
            "HEALTH_CACHE_SECONDS": "1",
        },
        var / "bench-throughput-project.log",
    )
    baseline = _gunicorn(
        "bench.baseline.wsgi",
        {"DJANGO_SETTINGS_MODULE": "bench.baseline.settings", "BENCH_REDIS_URL": REDIS_URL},
        var / "bench-throughput-baseline.log",
    )
    project.wait_until_ready()
    baseline.wait_until_ready(path="/bare", ready=(200,))
    return {"project": project, "baseline": baseline}


def _cases(credentials: dict[str, str], redis: bool) -> list[Case]:
    jwt = {"Authorization": f"Bearer {credentials['access']}"}
    token = {"Authorization": f"Bearer {credentials['secret']}"}
    # The floor under a secured request: the bare view plus the one round trip it needs.
    floors = [
        Case("floor: bare DRF + one Redis read round trip", "baseline", "/bare+read", {}),
        Case("floor: bare DRF + reads and limiter script", "baseline", "/bare+limiter", {}),
    ]
    return [
        Case("bare DRF application, no middleware (baseline)", "baseline", "/bare", {}),
        *(floors if redis else []),
        Case("GET /api/v1/auth/me, JWT", "project", "/api/v1/auth/me", jwt, goal=0.5),
        Case(
            "GET /api/v1/images/limits, service token",
            "project",
            "/api/v1/images/limits",
            token,
            goal=0.5,
        ),
        Case("GET /health", "project", "/health", {}, goal=0.3),
        Case(
            "unknown API path, no credential (404)",
            "project",
            "/api/v1/no-such-path",
            {},
            goal=0.7,
            counted="4",
        ),
        Case("bare DRF view inside the project's middleware", "project", "/bench/bare", {}),
    ]


def _wrk(url: str, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    command = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(WRK_SCRIPT)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, url], check=False, capture_output=True, text=True, timeout=seconds + 30
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result for {url}: {out.stdout[-500:]} {out.stderr[-500:]}")
    result: dict[str, Any] = json.loads(line[4:])
    return result


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


@dataclass
class Sample:
    rate: float
    p99_ms: float
    cpu_ms: float | None


def _measure(case: Case, server: ServerProcess, seconds: float) -> Sample:
    before = _workers_cpu(server.process.pid)
    result = _wrk(server.url + case.path, case.headers, seconds)
    after = _workers_cpu(server.process.pid)
    statuses = {int(status): n for status, n in result["statuses"].items()}
    answered = sum(n for status, n in statuses.items() if str(status).startswith(case.counted))
    if answered < sum(statuses.values()):
        raise AssertionError(f"{case.name}: unexpected statuses {statuses}")
    cpu = None
    if before.keys() == after.keys() and answered:  # no worker was replaced meanwhile
        cpu = (sum(after.values()) - sum(before.values())) / answered * 1000
    return Sample(answered / result["seconds"], result["p99_ms"], cpu)


def run() -> None:
    if shutil.which("wrk") is None:
        print("  wrk is not installed (`make test-tools` installs it): throughput not measured")
        return
    credentials = _setup()
    redis = _redis_reachable()
    servers = _servers(redis)
    cases = _cases(credentials, redis)
    samples: dict[str, list[Sample]] = {case.name: [] for case in cases}
    try:
        for cycle in range(CYCLES + 1):  # the first cycle warms up and is not counted
            for case in cases:
                sample = _measure(case, servers[case.server], 1 if cycle == 0 else SECONDS)
                if cycle:
                    samples[case.name].append(sample)
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            server.process.wait(timeout=20)
    _report(cases, samples, redis)


def _report(cases: list[Case], samples: dict[str, list[Sample]], redis: bool) -> None:
    store = f"Redis ({REDIS_URL})" if redis else "in-process cache and limiter"
    print(
        f"\n== throughput over loopback against a bare DRF application: gunicorn 2 sync workers "
        f"each, wrk 2 threads and 8 connections, {CYCLES} interleaved cycles of {SECONDS} s; "
        f"{store}; {os.cpu_count()} CPUs =="
    )
    baseline = samples[cases[0].name]
    missed = []
    for case in cases:
        mine = samples[case.name]
        ratios = [s.rate / b.rate for s, b in zip(mine, baseline, strict=True)]
        p99 = statistics.median(s.p99_ms / b.p99_ms for s, b in zip(mine, baseline, strict=True))
        cpus = [s.cpu_ms for s in mine if s.cpu_ms is not None]
        cpu = f"{statistics.median(cpus):5.2f} ms CPU" if cpus else "CPU n/a"
        ratio = statistics.median(ratios)
        verdict = ""
        if case.goal is not None:
            verdict = f"goal {case.goal}x: {'meets' if ratio >= case.goal else 'MISSES'}"
            if ratio < case.goal:
                missed.append(case.name)
        print(
            f"  {case.name:<50} {statistics.median(s.rate for s in mine):7.0f} req/s "
            f"{ratio:5.2f}x (cycles {min(ratios):.2f}-{max(ratios):.2f})  "
            f"p99 {statistics.median(s.p99_ms for s in mine):6.2f} ms ({p99:4.1f}x)  "
            f"{cpu}  {verdict}"
        )
    print(f"  {'every goal met' if not missed else 'goals missed: ' + '; '.join(missed)}")
