"""Counting each API request against its limits: early, once, and in the credential's round trip.

A request is counted while it is authenticated, before its permissions are
checked, so calls refused 401 or 403 count as well: a credential's calls
against its windows, a failed or missing credential's against its client
address. When this process already knows the caller's limits (its copy of the
member view), the count rides in the same Redis pipeline as the credential's
cache read (and a service token's usage counter): one round trip per request.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import NoScriptError
from rest_framework import authentication
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts import metrics
from accounts.caching.invalidations import cache_get_many, cache_read_failed, cache_read_settled
from accounts.identity.principal import Principal, member_view_known
from accounts.ratelimits.limits import (
    DEFAULT_RULE,
    RateLimitOutcome,
    RateLimitRule,
    Window,
    page_windows,
    principal_windows,
    rate_limit_hit,
    request_windows,
    window_script_outcome,
    window_script_queue,
)
from accounts.ratelimits.tiers import tier_limits
from config.request_context import client_ip


def cache_prefetched(request: Request) -> dict[str, Any]:
    """What the credential's round trip read for the view (its `cache_prefetch` keys)."""
    return getattr(request._request, "cache_prefetched", {})


def request_counted(request: Request) -> bool:
    """Tell whether `request` has been counted against its limits already."""
    return bool(getattr(request._request, "rate_limit_counted", False))


def view_rule(request: Request) -> RateLimitRule | None:
    """Return the rule of the view answering `request` (None: exempt or limits off)."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    view = (request.parser_context or {}).get("view")
    rule: RateLimitRule | None = getattr(view, "rate_limit", DEFAULT_RULE)
    return rule


class RequestCounter:
    """Counts one request once, folding the count into the credential's cache read if it can."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.rule = view_rule(request)
        self.planned: tuple[str, list[Window]] | None = None
        self.outcome: RateLimitOutcome | None = None
        # Counters (key, ttl) to add one to in the same round trip.
        self.increments: list[tuple[str, int]] = []
        self.incremented = False
        self.organization_id: str | None = None

    @functools.cached_property
    def member(self) -> str:
        """The request's name in its windows (made once it is counted)."""
        return uuid.uuid4().hex

    @property
    def settled(self) -> bool:
        return request_counted(self.request)

    def plan(self, *, kind: str, principal_id: str, organization_id: str, user_id: str) -> None:
        """Guess the caller's windows from this process's copy of its member view."""
        self.organization_id = organization_id
        if self.rule is None or self.settled:
            return
        view = member_view_known(organization_id=organization_id, user_id=user_id)
        if view is None:  # first call in this process: counted after the read
            return
        org = view["organization"]
        limits = org.get("limits") or tier_limits(org["tier"])
        windows = principal_windows(
            self.rule,
            kind=kind,
            principal_id=principal_id,
            organization_id=organization_id,
            limits=limits,
        )
        self.planned = (org["tier"], windows)

    def read(self, keys: list[str]) -> dict[str, Any] | None:
        """Read `keys` from the cache, with the planned count and increments in the same trip."""
        wanted = self._view_keys()
        if (self.planned is None and not self.increments and not wanted) or not settings.REDIS_URL:
            return cache_get_many(keys)
        try:
            replies = self._round_trip(keys + wanted)
        except Exception as exc:
            cache_read_failed(exc)  # the request is counted by the fallback when settled
            return None
        self.incremented = bool(self.increments)
        if self.planned is not None:
            self.outcome = window_script_outcome(*self.planned, replies[1])
        decode = caches["default"].client.decode  # type: ignore[attr-defined]
        found = {
            key: decode(value)
            for key, value in zip(keys + wanted, replies[0], strict=True)
            if value is not None
        }
        self.request._request.cache_prefetched = {  # type: ignore[attr-defined]
            key: found.pop(key) for key in wanted if key in found
        }
        return cache_read_settled(keys, found)

    def _view_keys(self) -> list[str]:
        """The cache keys the answering view reads for the caller's organization, if any."""
        view = (self.request.parser_context or {}).get("view")
        keys_for = getattr(view, "cache_prefetch", None)
        if keys_for is None or self.organization_id is None:
            return []
        return list(keys_for(self.organization_id))

    def _round_trip(self, keys: list[str]) -> list[Any]:
        """Send the read, the planned count and the increments in one pipeline; return replies."""
        # The cache itself, once: each attribute of the `cache` proxy looks it up again.
        backend = caches["default"]
        client = get_redis_connection("default")
        pipe = client.pipeline(transaction=False)
        pipe.mget([backend.make_key(key) for key in keys])
        if self.planned is not None:
            window_script_queue(pipe, self.planned[1], self.member)
        for key, ttl in self.increments:
            counter = backend.make_key(key)
            pipe.incr(counter)
            pipe.expire(counter, ttl)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        if self.planned is not None and isinstance(replies[1], NoScriptError):
            # A Redis that has not run the script yet (restarted, say): sent whole, once.
            replies[1] = window_script_queue(client, self.planned[1], self.member, by_digest=False)
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            raise failed
        return replies

    def increments_undo(self) -> None:
        """Take back what the read counted for the credential, which was then refused.

        Its use counters go back down, and the request leaves the principal's
        rate-limit windows it was planned into: a refused request (a revoked
        token, one presented from an address not allowed) is counted by its
        client address only, never against the credential's owner.
        """
        outcome, self.outcome = self.outcome, None
        counted_windows = self.planned is not None and outcome is not None and outcome.allowed
        if not self.incremented and not counted_windows:
            return
        try:
            if counted_windows and self.planned is not None:
                client = get_redis_connection("default")
                pipe = client.pipeline(transaction=False)
                for window in self.planned[1]:
                    pipe.zrem(cache.make_key(window.key), self.member)
                pipe.execute()
            if self.incremented:
                for key, _ in self.increments:
                    cache.decr(key)
        except Exception as exc:
            cache_read_failed(exc)
        finally:
            self.incremented = False

    def settle(self, principal: Principal | None) -> None:
        """Count the request (unless counted already) and raise `RateLimitExceeded` past a limit."""
        if self.settled:
            return
        self.request._request.rate_limit_counted = True  # type: ignore[attr-defined]
        if self.rule is None:
            return
        tier, windows = request_windows(
            rule=self.rule, principal=principal, client_ip=client_ip(self.request._request)
        )
        outcome = self.outcome if principal is not None else None
        # Counted against stale limits (changed since): counted again, under the
        # same name, against the real ones.
        if outcome is None or self.planned != (tier, windows):
            outcome = rate_limit_hit(tier=tier, windows=windows, member=self.member)
        self.request._request.rate_limit = outcome  # type: ignore[attr-defined]
        if not outcome.allowed:
            metrics.RATE_LIMIT_REJECTIONS.labels(
                tier=tier, reason=outcome.binding.window.name
            ).inc()
            raise outcome.refusal()


class AnonymousRateLimit(authentication.BaseAuthentication):
    """The last authentication step: a request without credentials is counted by its address."""

    def authenticate(self, request: Request) -> None:
        RequestCounter(request).settle(None)


class TierRateLimit(BaseThrottle):
    """DRF's throttle step: counts what authentication did not (views without authentication).

    A view sets `rate_limit` to a `RateLimitRule` of its own, or to None to be
    exempt (health and metrics). The outcome is kept on the request so its
    headers go out with the response, whatever the response.
    """

    def allow_request(self, request: Request, view: Any) -> bool:
        if not request_counted(request):  # authentication counts most requests
            principal = request.auth if isinstance(request.auth, Principal) else None
            RequestCounter(request).settle(principal)
        return True


def page_load_count(request: HttpRequest, principal: Principal) -> RateLimitOutcome | None:
    """Count a dashboard page load in the principal's page windows (None: limits are off).

    Its outcome is kept on the request, so its headers go out with the page.
    """
    if not settings.RATE_LIMIT_ENABLED:
        return None
    windows = page_windows(principal)
    outcome = rate_limit_hit(tier=principal.organization_tier, windows=windows)
    request.rate_limit = outcome  # type: ignore[attr-defined]
    if not outcome.allowed:
        reason = f"pages_{outcome.binding.window.name}"
        metrics.RATE_LIMIT_REJECTIONS.labels(tier=principal.organization_tier, reason=reason).inc()
    return outcome
