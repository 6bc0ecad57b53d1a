"""Decisions asked of another deployment's decision point, behind a shared circuit breaker.

The breaker (pybreaker) keeps its state in the cache, so with Redis every
process sees the same state: it opens after AUTH_BREAKER_FAILURES consecutive
failures, refuses at once while open, lets one call probe once
AUTH_BREAKER_RESET_SECONDS have passed and closes on its success. A denial is
an answer, not a failure. While the cache is unreachable each process keeps
its own state.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pybreaker
import structlog
from django.conf import settings
from django.core.cache import cache

from accounts import metrics
from accounts.authz.decision_cache import Decision, decision_cached, decision_key, decision_remember
from accounts.errors import AuthorizationUnavailable, DecisionPointError
from accounts.identity.principal import Principal
from config.request_context import current_request_id

logger = structlog.get_logger("vantage.authz")

STATE_VALUE = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class SharedBreakerStorage(pybreaker.CircuitBreakerStorage):
    """A breaker's state in the cache; in this process's memory while the cache fails."""

    def __init__(self, namespace: str) -> None:
        super().__init__("cache")
        self._prefix = f"authz:breaker:{namespace}"
        self._memory = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)

    def _shared(self, operation: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
        try:
            return operation()
        except Exception:
            metrics.CACHE_FAILURES.labels(operation="breaker").inc()
            return fallback()

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    def _get(self, name: str, default: Any) -> Any:
        value = cache.get(self._key(name))
        return default if value is None else value

    def _incr(self, name: str) -> None:
        cache.add(self._key(name), 0, None)
        cache.incr(self._key(name))

    @property
    def state(self) -> str:
        return str(
            self._shared(
                lambda: self._get("state", pybreaker.STATE_CLOSED), lambda: self._memory.state
            )
        )

    @state.setter
    def state(self, state: str) -> None:
        self._memory.state = state
        self._shared(lambda: cache.set(self._key("state"), state, None), lambda: None)

    def increment_counter(self) -> None:
        self._shared(lambda: self._incr("failures"), self._memory.increment_counter)

    def reset_counter(self) -> None:
        self._shared(lambda: cache.set(self._key("failures"), 0, None), self._memory.reset_counter)

    def increment_success_counter(self) -> None:
        self._shared(lambda: self._incr("successes"), self._memory.increment_success_counter)

    def reset_success_counter(self) -> None:
        self._shared(
            lambda: cache.set(self._key("successes"), 0, None), self._memory.reset_success_counter
        )

    @property
    def counter(self) -> int:
        return int(self._shared(lambda: self._get("failures", 0), lambda: self._memory.counter))

    @property
    def success_counter(self) -> int:
        return int(
            self._shared(lambda: self._get("successes", 0), lambda: self._memory.success_counter)
        )

    @property
    def opened_at(self) -> datetime | None:
        stamp = self._shared(lambda: self._get("opened_at", None), lambda: None)
        if stamp is None:
            return self._memory.opened_at
        return datetime.fromtimestamp(float(stamp), tz=UTC)

    @opened_at.setter
    def opened_at(self, when: datetime) -> None:
        self._memory.opened_at = when
        self._shared(
            lambda: cache.set(self._key("opened_at"), when.timestamp(), None), lambda: None
        )


class BreakerEvents(pybreaker.CircuitBreakerListener):
    """Log and count every state change this process makes or notices."""

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        metrics.AUTHZ_BREAKER_STATE.set(STATE_VALUE[new_state.name])
        metrics.AUTHZ_BREAKER_TRANSITIONS.labels(state=new_state.name).inc()
        logger.warning(
            "authz_breaker_state_changed",
            previous=old_state.name if old_state is not None else None,
            state=new_state.name,
            url=settings.AUTH_API_URL,
        )


class SharedCircuitBreaker(pybreaker.CircuitBreaker):
    """A breaker other processes change too.

    A state another process entered is adopted as it is in the storage: only
    the process that makes a transition resets the shared counters.
    """

    @property
    def state(self) -> Any:
        current = self.current_state
        if current != self._state.name:
            with self._lock:
                previous = self._state
                self._state = self._create_new_state(current, prev_state=previous)
            for listener in self.listeners:
                listener.state_change(self, previous, self._state)
        return self._state

    @state.setter
    def state(self, state_str: str) -> None:
        with self._lock:
            self._state = self._create_new_state(state_str, prev_state=self._state, notify=True)


_breakers: dict[str, tuple[SharedCircuitBreaker, SharedBreakerStorage]] = {}
_breakers_lock = threading.Lock()


def decision_breaker() -> tuple[SharedCircuitBreaker, SharedBreakerStorage]:
    """Return the breaker guarding the configured decision point, and its storage."""
    namespace = hashlib.sha256(settings.AUTH_API_URL.encode()).hexdigest()[:16]
    with _breakers_lock:
        if namespace not in _breakers:
            storage = SharedBreakerStorage(namespace)
            breaker = SharedCircuitBreaker(
                state_storage=storage, listeners=[BreakerEvents()], name="authorization"
            )
            _breakers[namespace] = (breaker, storage)
        breaker, storage = _breakers[namespace]
    breaker.fail_max = settings.AUTH_BREAKER_FAILURES
    breaker.reset_timeout = settings.AUTH_BREAKER_RESET_SECONDS
    return breaker, storage


def breaker_status() -> dict[str, Any]:
    """Return the breaker's state as the health endpoint reports it."""
    breaker, storage = decision_breaker()
    state = storage.state
    opened_at = storage.opened_at if state != pybreaker.STATE_CLOSED else None
    metrics.AUTHZ_BREAKER_STATE.set(STATE_VALUE[state])
    return {
        "state": state,
        "failures": storage.counter,
        "threshold": breaker.fail_max,
        "timeout_seconds": breaker.reset_timeout,
        "opened_at": opened_at,
    }


@functools.cache
def _client() -> httpx.Client:
    # One pooled client per process: connections to the decision point are reused.
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=8))


def _ask(organization_id: str, user_id: str, permission: str) -> dict[str, Any]:
    response = _client().post(
        settings.AUTH_API_URL,
        json={"org_id": organization_id, "user_id": user_id, "permission": permission},
        headers={
            "Authorization": f"Bearer {settings.AUTH_API_TOKEN}",
            "X-Request-ID": current_request_id() or "",
        },
        timeout=settings.AUTH_API_TIMEOUT,
    )
    if response.status_code != 200:
        raise DecisionPointError(f"the decision point answered HTTP {response.status_code}")
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("allowed"), bool):
        raise DecisionPointError("the decision point's answer holds no decision")
    return body


def remote_decision(*, principal: Principal, permission: str, organization_id: str) -> Decision:
    """Ask the remote decision point (or a still-valid cached answer of it)."""
    if principal.scopes is not None and permission not in principal.scopes:
        return Decision(False, (), f"the token's scopes do not include {permission}", "db")
    subject = principal.person_id
    key = decision_key(organization_id, subject, permission)
    cached = decision_cached(key, principal.generation)
    if cached is not None:
        return cached
    try:
        # calling() runs the request outside the breaker's lock: concurrent
        # decisions of one process do not wait for each other.
        with decision_breaker()[0].calling():
            answer = _ask(organization_id, str(subject), permission)
    except Exception as exc:
        return _unavailable(exc)
    metrics.AUTHZ_REMOTE_REQUESTS.labels(outcome="answered").inc()
    groups = tuple(str(name) for name in answer.get("groups") or ())
    decision = Decision(answer["allowed"], groups, str(answer.get("reason", "")), "remote")
    decision_remember(key, principal.generation, permission=permission, decision=decision)
    return decision


def _unavailable(exc: Exception) -> Decision:
    rejected = isinstance(exc, pybreaker.CircuitBreakerError) and "still open" in str(exc)
    metrics.AUTHZ_REMOTE_REQUESTS.labels(outcome="rejected" if rejected else "failed").inc()
    log = logger.info if rejected else logger.warning
    log(
        "authz_remote_unavailable",
        error_type=type(exc).__name__,
        error=str(exc)[:200],
        fail_open=settings.AUTH_FAIL_OPEN,
    )
    if settings.AUTH_FAIL_OPEN:
        return Decision(
            True, (), "the decision point is unavailable; AUTH_FAIL_OPEN allows", "remote"
        )
    raise AuthorizationUnavailable(_retry_after())


def _retry_after() -> int:
    breaker, storage = decision_breaker()
    opened_at = storage.opened_at
    if storage.state != pybreaker.STATE_OPEN or opened_at is None:
        return 1
    elapsed = (datetime.now(UTC) - opened_at).total_seconds()
    return max(1, math.ceil(breaker.reset_timeout - elapsed))
