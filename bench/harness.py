"""Timing requests through the whole middleware stack, in-process, against a baseline."""

from __future__ import annotations

import itertools
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
    rounds_us: tuple[float, ...]  # the mean latency of each round, in the order they ran
    run: int  # which call of compare() measured it


_runs = itertools.count()


def ratio(result: Result, baseline: Result) -> float:
    """How much longer the case takes than the baseline.

    Measured in the same rounds, it is the median of the rounds' ratios, so a
    burst of load from elsewhere weighs on both sides of each; measured apart
    (the data changed in between), it is the ratio of the medians.
    """
    if result.run == baseline.run:
        pairs = zip(result.rounds_us, baseline.rounds_us, strict=True)
        return statistics.median(value / base for value, base in pairs)
    return result.median_us / baseline.median_us


def compare(
    cases: dict[str, Callable[[], Any]],
    *,
    warmup: int = 100,
    rounds: int = 15,
    per_round: int = 50,
) -> list[Result]:
    """Time each case, the first being the baseline, in interleaved rounds.

    Each round runs every case in turn, every other round in reverse order, so
    a change in the machine's load during the run weighs on the baseline and
    the cases alike, and no case always follows another. A result is the
    median and 95th percentile of the per-round mean latencies, which `ratio`
    sets against the baseline's round by round.
    """
    for call in cases.values():
        for _ in range(warmup):
            call()
    means: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases.items())
    for number in range(rounds):
        for name, call in order if number % 2 == 0 else reversed(order):
            started = time.perf_counter_ns()
            for _ in range(per_round):
                call()
            means[name].append((time.perf_counter_ns() - started) / per_round / 1000)
    run = next(_runs)
    results = []
    for name, values in means.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        results.append(
            Result(name, statistics.median(ordered), p95, rounds * per_round, tuple(values), run)
        )
    return results


def request(client: Client, path: str, *, status: int = 200, **headers: Any) -> Callable[[], Any]:
    """Return a callable making one GET request and checking its status."""

    def call() -> Any:
        response = client.get(path, **headers)
        if response.status_code != status:
            raise AssertionError(f"GET {path} answered {response.status_code}, not {status}")
        return response

    return call


def report(title: str, results: list[Result]) -> None:
    """Print each result with its ratio to the first, the baseline."""
    baseline = results[0]
    print(f"\n{title}")
    print(f"{'case':<52}{'median':>12}{'p95':>12}{'ratio':>9}")
    for result in results:
        print(
            f"{result.name:<44}{result.median_us:>10.1f}us{result.p95_us:>10.1f}us"
            f"{ratio(result, baseline):>8.2f}x"
        )
