"""Refusing sign-in after repeated failures, per username and per client address.

Failures are rows in the database, so every process sees the same count. An
attempt is counted before its password is checked (`login_attempt_reserve`)
and uncounted if the password was right (`login_attempt_release`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
    user = user_by_login(login=login)
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


@dataclass(frozen=True)
class LoginAttempt:
    """A sign-in attempt counted as a failure before its password is checked."""

    id: int


def _past_threshold(failures: QuerySet[LoginFailure], threshold: int, attempt: LoginFailure) -> int:
    """Seconds to wait if this attempt is past `threshold` in the window, else 0."""
    since = timezone.now() - timedelta(seconds=settings.AUTH_LOCKOUT_WINDOW_SECONDS)
    if failures.filter(created_at__gt=since).count() <= threshold:
        return 0
    return _retry_after(failures.exclude(id=attempt.id), threshold) or 1


def login_attempt_reserve(*, username: str, ip: str | None) -> LoginAttempt:
    """Count an attempt for this username and address, or raise TooManyLoginAttempts.

    The attempt is written (and committed) as a failure before the count, so
    however many run at once, the k-th to count sees at least k rows: at most
    the threshold are ever let through to a password check per window.
    """
    attempt = LoginFailure.objects.create(username=_normalized(username), ip=ip)
    waits = [
        _past_threshold(
            LoginFailure.objects.filter(username=attempt.username),
            settings.AUTH_LOCKOUT_USERNAME_FAILURES,
            attempt,
        )
    ]
    if ip:
        waits.append(
            _past_threshold(
                LoginFailure.objects.filter(ip=ip), settings.AUTH_LOCKOUT_IP_FAILURES, attempt
            )
        )
    if max(waits):
        # A refused attempt checked no password: it does not prolong the lockout.
        LoginFailure.objects.filter(id=attempt.id).delete()
        raise TooManyLoginAttempts(retry_after=max(waits))
    return LoginAttempt(id=attempt.id)


def login_attempt_release(attempt: LoginAttempt) -> None:
    """Uncount an attempt whose password was right (or that must not count as a failure)."""
    LoginFailure.objects.filter(id=attempt.id).delete()


def login_failures_clear(*, username: str) -> None:
    """Forget a username's failures after it signs in successfully."""
    LoginFailure.objects.filter(username=_normalized(username)).delete()


def login_failures_prune() -> int:
    """Delete failures older than the window; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.AUTH_LOCKOUT_WINDOW_SECONDS)
    deleted, _ = LoginFailure.objects.filter(created_at__lt=cutoff).delete()
    return deleted
