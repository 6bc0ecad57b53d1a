"""Refusing sign-in after repeated failures, per username and per client address.

Failures are rows in the database, so every process sees the same count.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.errors import TooManyLoginAttempts
from accounts.models import LoginFailure
from accounts.selectors import user_by_login


def _normalized(username: str) -> str:
    """Count failures per account, whether it was named by username or email."""
    login = username.strip()
    user = user_by_login(login)
    return (user.username if user is not None else login).lower()[:254]


def _retry_after(failures: QuerySet[LoginFailure], threshold: int) -> int | None:
    """Seconds until fewer than `threshold` failures remain in the window, or None if already."""
    window = timedelta(seconds=settings.AUTH_LOCKOUT_WINDOW_SECONDS)
    since = timezone.now() - window
    recent = list(
        failures.filter(created_at__gt=since)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:threshold]
    )
    if len(recent) < threshold:
        return None
    # The lock lifts when the threshold-th newest failure leaves the window.
    remaining = (recent[-1] + window - timezone.now()).total_seconds()
    return max(1, math.ceil(remaining))


def lockout_check(*, username: str, ip: str | None) -> None:
    """Raise TooManyLoginAttempts when this username or address is locked out."""
    waits = [
        _retry_after(
            LoginFailure.objects.filter(username=_normalized(username)),
            settings.AUTH_LOCKOUT_USERNAME_FAILURES,
        )
    ]
    if ip:
        waits.append(
            _retry_after(LoginFailure.objects.filter(ip=ip), settings.AUTH_LOCKOUT_IP_FAILURES)
        )
    longest = max((wait for wait in waits if wait is not None), default=None)
    if longest is not None:
        raise TooManyLoginAttempts(retry_after=longest)


def login_failure_record(*, username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=_normalized(username), ip=ip)


def login_failures_clear(*, username: str) -> None:
    """Forget a username's failures after it signs in successfully."""
    LoginFailure.objects.filter(username=_normalized(username)).delete()


def login_failures_prune() -> int:
    """Delete failures older than the window; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.AUTH_LOCKOUT_WINDOW_SECONDS)
    deleted, _ = LoginFailure.objects.filter(created_at__lt=cutoff).delete()
    return deleted
