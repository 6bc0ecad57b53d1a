"""Requests per minute by tier: a moving window, atomic across processes and hosts.

Every request is counted in windows of the last 60 seconds: one for its
principal (a user or a token) and one for its whole organization (so one
noisy token cannot take more than its own share, and all of them together no
more than the organization's), or one for its client address when anonymous.
Each route group has its own windows. A request is counted only if every one
of its windows has room, in one atomic step: a Lua script in Redis, or a lock
in process memory in the embedded default. When Redis cannot be reached, each
process counts on its own, with the limits divided by the number of processes.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches
from django_redis import get_redis_connection
from redis.exceptions import NoScriptError

from accounts import metrics
from accounts.errors import RateLimitExceeded
from accounts.identity.principal import Principal
from accounts.ratelimits.tiers import tier_limits, tier_pages_per_minute

logger = structlog.get_logger("vantage.ratelimit")

WINDOW_SECONDS = 60

# The moving-window script (its file says what it does). `bench.baseline` sends
# the same file, to measure what the round trip alone costs.
MOVING_WINDOW_LUA = (Path(__file__).parent / "moving_window.lua").read_text()
_MOVING_WINDOW_SHA = hashlib.sha1(MOVING_WINDOW_LUA.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class RateLimitRule:
    """A view's rate limit: its route group, and a figure of its own or a share of the tier's."""

    group: str = "api"
    per_minute: int | None = None
    share: float = 1.0


DEFAULT_RULE = RateLimitRule()


@dataclass(frozen=True)
class Window:
    name: str  # principal, organization or client
    key: str
    limit: int


@dataclass(frozen=True)
class WindowState:
    window: Window
    count: int
    reset: int  # seconds until its oldest counted request leaves it

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.count)


@dataclass(frozen=True)
class RateLimitOutcome:
    allowed: bool
    tier: str
    states: tuple[WindowState, ...]

    @property
    def binding(self) -> WindowState:
        """The window that decides: the one that refused, else the one with least room."""
        full = [state for state in self.states if state.remaining == 0]
        if not self.allowed and full:
            return max(full, key=lambda state: state.reset)
        return min(self.states, key=lambda state: state.remaining)

    def refusal(self) -> RateLimitExceeded:
        """Return the 429 that refuses a request over its binding window."""
        binding = self.binding
        return RateLimitExceeded(
            window=binding.window.name,
            limit=binding.window.limit,
            reset=binding.reset,
            headers=self.headers(),
        )

    def headers(self) -> dict[str, str]:
        binding = self.binding
        headers = {
            "X-RateLimit-Limit": str(binding.window.limit),
            "X-RateLimit-Remaining": str(binding.remaining),
            "X-RateLimit-Reset": str(binding.reset),
            "RateLimit-Policy": ", ".join(
                f'"{state.window.name}";q={state.window.limit};w={WINDOW_SECONDS}'
                for state in self.states
            ),
            "RateLimit": f'"{binding.window.name}";r={binding.remaining};t={binding.reset}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, binding.reset))
        return headers


def request_windows(
    *, rule: RateLimitRule, principal: Principal | None, client_ip: str | None
) -> tuple[str, list[Window]]:
    """Return the tier and the windows a request is counted in."""
    if principal is None:
        per_minute = rule.per_minute or _share(tier_limits("anonymous"), rule)
        return "anonymous", [Window("client", f"rl:{rule.group}:ip:{client_ip}", per_minute)]
    return principal.organization_tier, principal_windows(
        rule,
        kind=principal.kind,
        principal_id=principal.id,
        organization_id=principal.organization_id,
        limits=principal.limits or tier_limits(principal.organization_tier),
    )


def principal_windows(
    rule: RateLimitRule,
    *,
    kind: str,
    principal_id: str,
    organization_id: str,
    limits: dict[str, int],
) -> list[Window]:
    """Return the principal's and its organization's windows for `rule` under `limits`."""
    per_minute = rule.per_minute or _share(limits, rule)
    org_limit = per_minute * settings.RATE_LIMIT_ORGANIZATION_FACTOR
    return [
        Window("principal", f"rl:{rule.group}:{kind}:{principal_id}", per_minute),
        Window("organization", f"rl:{rule.group}:org:{organization_id}", org_limit),
    ]


def page_windows(principal: Principal) -> list[Window]:
    """Return the windows of a dashboard page load: the tier's page figure, apart from the API's."""
    rule = RateLimitRule(
        group="pages", per_minute=tier_pages_per_minute(principal.organization_tier)
    )
    return principal_windows(
        rule,
        kind=principal.kind,
        principal_id=principal.id,
        organization_id=principal.organization_id,
        limits=principal.limits,
    )


def _share(limits: dict[str, int], rule: RateLimitRule) -> int:
    return max(1, math.floor(limits["requests_per_minute"] * rule.share))


def rate_limit_hit(
    *, tier: str, windows: list[Window], member: str | None = None
) -> RateLimitOutcome:
    """Count one request (named `member`) in `windows` if each has room; say if it was allowed."""
    if settings.REDIS_URL:
        try:
            return _redis_hit(tier, windows, member)
        except Exception as exc:
            return _fallback_hit(tier, windows, exc)
    return _local.hit(tier, windows, int(time.time() * 1000))


def _redis_hit(tier: str, windows: list[Window], member: str | None) -> RateLimitOutcome:
    client = get_redis_connection("default")
    try:
        reply = window_script_queue(client, windows, member)
    except NoScriptError:
        reply = window_script_queue(client, windows, member, by_digest=False)
    return window_script_outcome(tier, windows, reply)


def window_script_queue(
    client: Any, windows: list[Window], member: str | None = None, *, by_digest: bool = True
) -> Any:
    """Run the moving-window script on `client` (a connection, or a pipeline to queue it on).

    `member` names the request in the windows: counting it again under the same
    name (against corrected limits) does not count it twice. The script is
    named by its digest (Redis keeps it once loaded); `by_digest=False` sends
    it whole, for a Redis that does not know it yet (`NoScriptError`).
    """
    make_key = caches["default"].make_key  # one lookup, not one per window
    keys = [make_key(window.key) for window in windows]
    args = [WINDOW_SECONDS * 1000, member or uuid.uuid4().hex, *(w.limit for w in windows)]
    if by_digest:
        return client.evalsha(_MOVING_WINDOW_SHA, len(keys), *keys, *args)
    return client.eval(MOVING_WINDOW_LUA, len(keys), *keys, *args)


def window_script_outcome(tier: str, windows: list[Window], reply: Any) -> RateLimitOutcome:
    """Read the moving-window script's reply."""
    return _outcome(tier, windows, bool(reply[0]), reply[2:], int(reply[1]))


def _fallback_hit(tier: str, windows: list[Window], exc: Exception) -> RateLimitOutcome:
    """Count in this process alone, the limits divided by the processes, Redis being down."""
    _fallback_noticed(exc)
    divisor = max(1, settings.RATE_LIMIT_FALLBACK_PROCESSES)
    windows = [Window(w.name, w.key, max(1, w.limit // divisor)) for w in windows]
    return _local.hit(tier, windows, int(time.time() * 1000))


def _outcome(
    tier: str, windows: list[Window], allowed: bool, pairs: list[Any], now_ms: int
) -> RateLimitOutcome:
    states = []
    for index, window in enumerate(windows):
        count, oldest_ms = int(pairs[2 * index]), float(pairs[2 * index + 1])
        reset_ms = oldest_ms + WINDOW_SECONDS * 1000 - now_ms if count else 0
        states.append(WindowState(window, count, max(0, math.ceil(reset_ms / 1000))))
    return RateLimitOutcome(allowed, tier, tuple(states))


class LocalWindows:
    """The same moving windows in this process's memory, for at most `size` keys."""

    def __init__(self, size: int = 100_000) -> None:
        self._windows: OrderedDict[str, deque[int]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def hit(self, tier: str, windows: list[Window], now_ms: int) -> RateLimitOutcome:
        horizon = now_ms - WINDOW_SECONDS * 1000
        with self._lock:
            stamps = [self._stamps(window.key, horizon) for window in windows]
            allowed = all(len(s) < w.limit for s, w in zip(stamps, windows, strict=True))
            pairs: list[Any] = []
            for timestamps in stamps:
                if allowed:
                    timestamps.append(now_ms)
                pairs += [len(timestamps), timestamps[0] if timestamps else now_ms]
        return _outcome(tier, windows, allowed, pairs, now_ms)

    def _stamps(self, key: str, horizon: int) -> deque[int]:
        timestamps = self._windows.get(key)
        if timestamps is None:
            timestamps = self._windows[key] = deque()
            if len(self._windows) > self._size:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        while timestamps and timestamps[0] <= horizon:
            timestamps.popleft()
        return timestamps

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


_local = LocalWindows()


def local_windows_clear() -> None:
    """Forget this process's counts (each test starts with none)."""
    _local.clear()


_last_fallback_log = 0.0


def _fallback_noticed(exc: Exception) -> None:
    global _last_fallback_log  # noqa: PLW0603 (one warning per process per 10 s, not per request)
    metrics.RATE_LIMIT_FALLBACKS.inc()
    now = time.monotonic()
    if now - _last_fallback_log >= 10:
        _last_fallback_log = now
        logger.warning(
            "rate_limit_store_unreachable",
            error_type=type(exc).__name__,
            fallback_processes=settings.RATE_LIMIT_FALLBACK_PROCESSES,
        )
