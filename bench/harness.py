"""Timing requests through the whole middleware stack, in-process, against a baseline."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.test import Client


@dataclass(frozen=True)
class Result:
    name: str
    median_us: float
    p95_us: float
    samples: int


def measure(
    name: str,
    call: Callable[[], Any],
    *,
    warmup: int = 200,
    rounds: int = 15,
    per_round: int = 100,
) -> Result:
    """Time `call`: the median and 95th percentile of per-round mean latencies."""
    for _ in range(warmup):
        call()
    means = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(per_round):
            call()
        means.append((time.perf_counter_ns() - started) / per_round / 1000)
    means.sort()
    p95 = means[min(len(means) - 1, round(0.95 * (len(means) - 1)))]
    return Result(name, statistics.median(means), p95, rounds * per_round)


def request(client: Client, path: str, *, status: int = 200, **headers: Any) -> Callable[[], Any]:
    """Return a callable making one GET request and checking its status."""

    def call() -> Any:
        response = client.get(path, **headers)
        if response.status_code != status:
            raise AssertionError(f"GET {path} answered {response.status_code}, not {status}")
        return response

    return call


def report(title: str, baseline: Result, results: list[Result]) -> None:
    """Print each result with its ratio to the baseline."""
    print(f"\n{title}")
    print(f"{'case':<44}{'median':>12}{'p95':>12}{'ratio':>9}")
    for result in [baseline, *results]:
        ratio = result.median_us / baseline.median_us
        print(f"{result.name:<44}{result.median_us:>10.1f}us{result.p95_us:>10.1f}us{ratio:>8.2f}x")
