"""Each provider's health: recent failures degrade it, then eject it for a while.

Failures are counted over a sliding window (CLASSIFIER_HEALTH_FAILURE_WINDOW,
an hour by default; 0 counts failures in a row only, a success starting the
count again). Three failures make a provider `degraded`, five `unhealthy`:
it is then ejected, skipped by the chain, for the ejection time (300 s),
doubled for each further ejection up to MAX_EJECTION_FACTOR times (as Envoy's
outlier detection does); each ejection time spent in service since the last
ejection ended forgets one doubling. When an ejection ends the provider is
tried again: one more failure ejects it again, three successes in a row make
it `healthy` and start the failure count afresh. The figures are settings
(`CLASSIFIER_HEALTH_*`, see docs/operations.md). The record is shared by all
processes through the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from audit.services import audit_record
from classifier import metrics
from classifier.health_store import HealthStore
from config.request_context import SYSTEM
from webhooks.services.events import webhook_event_broadcast

logger = structlog.get_logger("vantage.classifier")

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
STATE_VALUE = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

MAX_EJECTION_FACTOR = 8
# The ejection level whose time is MAX_EJECTION_FACTOR x the ejection time.
MAX_EJECTION_LEVEL = MAX_EJECTION_FACTOR.bit_length()
# The failure window is counted in this many slices: a failure leaves the
# count within a slice's length (a minute of an hour's window) of its age.
WINDOW_SLICES = 60


@dataclass(frozen=True)
class Thresholds:
    """When failures degrade and eject a provider and successes bring it back."""

    degraded_after: int
    unhealthy_after: int
    healthy_after: int
    ejection_seconds: int
    failure_window_seconds: int

    @property
    def slice_seconds(self) -> int:
        return max(1, -(-self.failure_window_seconds // WINDOW_SLICES))


def thresholds() -> Thresholds:
    """Return the thresholds the settings give now."""
    return Thresholds(
        degraded_after=settings.CLASSIFIER_HEALTH_DEGRADED_AFTER,
        unhealthy_after=settings.CLASSIFIER_HEALTH_UNHEALTHY_AFTER,
        healthy_after=settings.CLASSIFIER_HEALTH_HEALTHY_AFTER,
        ejection_seconds=settings.CLASSIFIER_HEALTH_EJECTION_SECONDS,
        failure_window_seconds=settings.CLASSIFIER_HEALTH_FAILURE_WINDOW,
    )


def _moment(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, tz=UTC) if stamp is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


@dataclass(frozen=True)
class ProviderStatus:
    """A provider's health as all processes see it."""

    name: str
    state: str
    consecutive_failures: int
    consecutive_successes: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    avg_response_ms: float | None
    requests: int
    failures: int
    ejected_at: datetime | None
    ejected_until: datetime | None
    ejections: int
    last_error: str
    # The failures that count towards degrading and ejecting it: those of the
    # failure window since it was last healthy again, or those in a row.
    counted_failures: int = 0

    @property
    def ejected(self) -> bool:
        """Tell whether the chain skips the provider right now."""
        return self.ejected_until is not None and timezone.now() < self.ejected_until

    def to_dict(self) -> dict[str, Any]:
        """Return the status as the providers endpoint and command show it."""
        return {
            "name": self.name,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "last_success_at": _iso(self.last_success_at),
            "last_failure_at": _iso(self.last_failure_at),
            "avg_response_ms": self.avg_response_ms,
            "requests": self.requests,
            "failures": self.failures,
            "ejected": self.ejected,
            "ejected_until": _iso(self.ejected_until) if self.ejected else None,
            "last_error": self.last_error,
        }


def _status(name: str, record: dict[str, Any], counted_failures: int = 0) -> ProviderStatus:
    requests = int(record.get("requests", 0))
    response_us = int(record.get("response_us", 0))
    ejected_until = record.get("ejected_until")
    return ProviderStatus(
        name=name,
        state=str(record.get("state", HEALTHY)),
        consecutive_failures=int(record.get("consecutive_failures", 0)),
        consecutive_successes=int(record.get("consecutive_successes", 0)),
        last_success_at=_moment(record.get("last_success_at")),
        last_failure_at=_moment(record.get("last_failure_at")),
        avg_response_ms=round(response_us / requests / 1000, 2) if requests else None,
        requests=requests,
        failures=int(record.get("failures", 0)),
        ejected_at=_moment(record.get("ejected_at")),
        ejected_until=_moment(ejected_until),
        ejections=int(record.get("ejections", 0)),
        last_error=str(record.get("last_error", "")),
        counted_failures=counted_failures,
    )


def ejection_seconds(level: int) -> int:
    """Return how long the `level`-th ejection in a row lasts."""
    return thresholds().ejection_seconds * min(2 ** (level - 1), MAX_EJECTION_FACTOR)


def _next_level(before: ProviderStatus, now: float) -> int:
    """Return the level of a new ejection: one above the last, less the doublings forgotten."""
    level = before.ejections
    if level and before.ejected_until is not None:
        in_service = max(0.0, now - before.ejected_until.timestamp())
        level = max(0, level - int(in_service // thresholds().ejection_seconds))
    return min(level + 1, MAX_EJECTION_LEVEL)


def _after_success(status: ProviderStatus) -> str | None:
    """Return the state enough successes in a row lead to, or None if already there."""
    return HEALTHY if status.state != HEALTHY else None


def _after_failure(status: ProviderStatus, *, may_eject: bool) -> str | None:
    """Return the state a failure leads to, or None to stay as it is."""
    if status.state == UNHEALTHY:
        # Back in service after an ejection, or kept as the last provider: one
        # more failure ejects it (again), unless it must stay.
        return UNHEALTHY if may_eject and not status.ejected else None
    limits = thresholds()
    if status.counted_failures >= limits.unhealthy_after:
        return UNHEALTHY
    if status.counted_failures >= limits.degraded_after and status.state == HEALTHY:
        return DEGRADED
    return None


class ProviderHealth:
    """Records one provider's outcomes and moves it between healthy, degraded and unhealthy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._store = HealthStore(name)

    def status(self) -> ProviderStatus:
        """Return the provider's current health."""
        record = self._store.read()
        limits = thresholds()
        if limits.failure_window_seconds > 0:
            counted = self._store.window_count(
                timezone.now().timestamp(), limits.failure_window_seconds, limits.slice_seconds
            )
        else:
            counted = int(record.get("consecutive_failures", 0))
        return _status(self.name, record, counted)

    def record_success(self, elapsed_ms: float) -> None:
        """Count a successful call; enough in a row make the provider healthy."""
        self._count(elapsed_ms)
        self._store.write(last_success_at=timezone.now().timestamp(), consecutive_failures=0)
        in_a_row = self._store.increment("consecutive_successes")
        if in_a_row >= thresholds().healthy_after and self.status().state != HEALTHY:
            self._transition(_after_success, eject=False)

    def record_failure(self, elapsed_ms: float, error: str, *, may_eject: bool = True) -> None:
        """Count a failed call and degrade or eject the provider as its record demands.

        `may_eject` is False when the provider is the last one the chain could
        still use: it is then marked unhealthy but kept in service.
        """
        self._count(elapsed_ms)
        self._store.increment("failures")
        self._store.write(
            last_failure_at=timezone.now().timestamp(),
            consecutive_successes=0,
            last_error=error[:200],
        )
        self._store.increment("consecutive_failures")
        limits = thresholds()
        if limits.failure_window_seconds > 0:
            self._store.window_add(
                timezone.now().timestamp(), limits.failure_window_seconds, limits.slice_seconds
            )
        self._transition(
            lambda status: _after_failure(status, may_eject=may_eject), eject=may_eject
        )

    def _count(self, elapsed_ms: float) -> None:
        self._store.increment("requests")
        self._store.increment("response_us", max(0, round(elapsed_ms * 1000)))

    def _transition(self, decide: Callable[[ProviderStatus], str | None], *, eject: bool) -> None:
        """Enter the state `decide(status)` names, as the one process holding the claim."""
        if not self._store.claim():
            return  # another process is deciding now; the next outcome decides again
        try:
            before = self.status()
            state = decide(before)
            if state is None:
                return
            changes = self._changes(before, state, eject=eject)
        finally:
            self._store.release()
        self._announce(before, state, changes)

    def _changes(self, before: ProviderStatus, state: str, *, eject: bool) -> dict[str, Any]:
        now = timezone.now().timestamp()
        changes: dict[str, Any] = {"state": state}
        if state == UNHEALTHY and eject:
            level = _next_level(before, now)
            changes.update(
                ejections=level, ejected_at=now, ejected_until=now + ejection_seconds(level)
            )
        if state == HEALTHY and before.ejected:
            changes["ejected_until"] = now  # recovered early (probes): the ejection ends here
        if state == HEALTHY:
            # Recovered: the failures before it no longer count.
            limits = thresholds()
            self._store.window_clear(now, limits.failure_window_seconds, limits.slice_seconds)
        self._store.write(**changes)
        return changes

    def _announce(self, before: ProviderStatus, state: str, changes: dict[str, Any]) -> None:
        metrics.PROVIDER_STATE.labels(provider=self.name).set(STATE_VALUE[state])
        metrics.PROVIDER_TRANSITIONS.labels(provider=self.name, state=state).inc()
        details = {
            "provider": self.name,
            "previous": before.state,
            "state": state,
            "consecutive_failures": before.consecutive_failures,
            "consecutive_successes": before.consecutive_successes,
            "last_error": before.last_error,
            "ejection": changes.get("ejections"),
            "ejected_until": _iso(_moment(changes["ejected_until"]))
            if "ejections" in changes
            else None,
        }
        logger.warning("classifier_provider_state_changed", **details)
        _audit(details)
        _webhooks_announce(self.status(), previous=before.state)


def _audit(details: dict[str, Any]) -> None:
    try:
        audit_record(
            action="classifier.provider_state_changed",
            actor=SYSTEM,
            resource_type="classifier_provider",
            resource_id=details["provider"],
            details=details,
        )
    except DatabaseError:
        # A provider's health must not fail the classification that revealed it.
        logger.exception("classifier_provider_state_audit_failed", provider=details["provider"])


def _webhooks_announce(status: ProviderStatus, *, previous: str) -> None:
    try:
        webhook_event_broadcast(
            type="classifier.provider_state_changed",
            # The organization's view: the provider's state, never the installation's
            # counters or an upstream error's text (which may name internal hosts).
            data={
                "name": status.name,
                "state": status.state,
                "previous_state": previous,
                "ejected": status.ejected,
                "changed_at": timezone.now().isoformat(),
            },
        )
    except DatabaseError:
        # As with the audit: the classification that revealed the change must not fail.
        logger.exception("classifier_provider_state_webhook_failed", provider=status.name)


_trackers: dict[str, ProviderHealth] = {}
_trackers_lock = threading.Lock()


def provider_health(name: str) -> ProviderHealth:
    """Return this process's tracker of the named provider."""
    with _trackers_lock:
        if name not in _trackers:
            _trackers[name] = ProviderHealth(name)
        return _trackers[name]


def trackers_forget() -> None:
    """Forget this process's trackers and their in-memory copies (each test starts afresh)."""
    with _trackers_lock:
        _trackers.clear()
