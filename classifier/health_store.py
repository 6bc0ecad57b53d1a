"""A provider's health record in the shared cache, in process memory while the cache fails.

The shared cache (`CACHES["shared"]`) is Redis when one is configured, else files
under var/: either way the web processes and the workers count into one record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from django.core.cache import BaseCache, caches

from classifier import metrics

logger = structlog.get_logger("vantage.classifier")

T = TypeVar("T")

SHARED_CACHE = "shared"

# Counters change with the cache's atomic increment, so processes never lose
# each other's counts; the other fields are plain values.
COUNTERS = (
    "requests",
    "failures",
    "consecutive_failures",
    "consecutive_successes",
    "response_us",
)
FIELDS = (
    *COUNTERS,
    "state",
    "last_success_at",
    "last_failure_at",
    "last_error",
    "ejected_at",
    "ejected_until",
    "ejections",
)
# Longer than any transition takes; a process that died holding the claim
# blocks the others' transitions no longer than this.
CLAIM_SECONDS = 5


class HealthStore:
    """The fields of one provider's health, shared by every process through the cache.

    Every write also goes to this process's memory, which answers whenever the
    cache raises: during an outage each process goes on from what it last knew.
    """

    def __init__(self, provider: str) -> None:
        self._prefix = f"classifier:health:{provider}"
        self._memory: dict[str, Any] = {}
        # The failure window's slices while the cache fails: slice index -> failures.
        self._memory_window: dict[int, int] = {}
        self._lock = threading.Lock()
        self._claimed = False

    @property
    def _cache(self) -> BaseCache:
        return caches[SHARED_CACHE]

    def _key(self, field: str) -> str:
        return f"{self._prefix}:{field}"

    def _shared(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        try:
            return operation()
        except Exception as exc:
            metrics.HEALTH_CACHE_FAILURES.inc()
            logger.warning("classifier_health_cache_failed", error_type=type(exc).__name__)
            return fallback()

    def read(self) -> dict[str, Any]:
        """Return every field that has a value."""

        def shared() -> dict[str, Any]:
            values = self._cache.get_many([self._key(field) for field in FIELDS])
            return {
                field: values[self._key(field)] for field in FIELDS if self._key(field) in values
            }

        def memory() -> dict[str, Any]:
            with self._lock:
                return dict(self._memory)

        return self._shared(shared, memory)

    def increment(self, field: str, delta: int = 1) -> int:
        """Add `delta` to a counter and return its new value."""

        def shared() -> int:
            try:
                value = int(self._cache.incr(self._key(field), delta))
            except ValueError:  # the first count: the key does not exist yet
                self._cache.add(self._key(field), 0, None)
                value = int(self._cache.incr(self._key(field), delta))
            with self._lock:
                self._memory[field] = value
            return value

        def memory() -> int:
            with self._lock:
                self._memory[field] = int(self._memory.get(field, 0)) + delta
                return int(self._memory[field])

        return self._shared(shared, memory)

    def write(self, **values: Any) -> None:
        """Set fields to the given values."""
        with self._lock:
            self._memory.update(values)
        shared = {self._key(name): value for name, value in values.items()}
        self._shared(lambda: self._cache.set_many(shared, None), list)

    def claim(self) -> bool:
        """Take the right to change the provider's state; False while another process has it."""

        def memory() -> bool:
            with self._lock:
                if self._claimed:
                    return False
                self._claimed = True
                return True

        return self._shared(
            lambda: bool(self._cache.add(self._key("claim"), 1, CLAIM_SECONDS)), memory
        )

    def release(self) -> None:
        """Give the claim back."""
        with self._lock:
            self._claimed = False
        self._shared(lambda: self._cache.delete(self._key("claim")), lambda: False)

    # --- The failure window: failures counted in slices of time --------------

    def _slices(self, now: float, window: int, slice_seconds: int) -> range:
        """The slices whose failures are in the window: the current one and older ones."""
        current = int(now // slice_seconds)
        return range(current - window // slice_seconds + 1, current + 1)

    def window_add(self, now: float, window: int, slice_seconds: int) -> None:
        """Count a failure at `now` in the failure window."""
        index = int(now // slice_seconds)
        key = self._key(f"window:{index}")

        def remember(value: int) -> None:
            with self._lock:
                oldest = self._slices(now, window, slice_seconds).start
                for stale in [i for i in self._memory_window if i < oldest]:
                    del self._memory_window[stale]
                self._memory_window[index] = value

        def shared() -> None:
            # The slice outlives the window, then the cache forgets it.
            self._cache.add(key, 0, window + slice_seconds)
            remember(int(self._cache.incr(key)))

        def memory() -> None:
            remember(self._memory_window.get(index, 0) + 1)

        self._shared(shared, memory)

    def window_count(self, now: float, window: int, slice_seconds: int) -> int:
        """Return the failures counted in the window that ends at `now`."""
        slices = self._slices(now, window, slice_seconds)

        def shared() -> int:
            keys = [self._key(f"window:{index}") for index in slices]
            return sum(int(value) for value in self._cache.get_many(keys).values())

        def memory() -> int:
            with self._lock:
                return sum(self._memory_window.get(index, 0) for index in slices)

        return self._shared(shared, memory)

    def window_clear(self, now: float, window: int, slice_seconds: int) -> None:
        """Forget the failures of the window (the provider has recovered)."""
        slices = self._slices(now, window, slice_seconds) if window > 0 else range(0)
        with self._lock:
            self._memory_window.clear()
        keys = [self._key(f"window:{index}") for index in slices]
        if keys:
            self._shared(lambda: self._cache.delete_many(keys), lambda: None)
