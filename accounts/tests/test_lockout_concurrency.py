"""Concurrent wrong passwords against real servers: the lockout lets at most its threshold through.

Two gunicorn servers of two workers each take 16 sign-ins for one account at
once, each from its own client address, so only the per-account count can
stop them. Every answer is either 401 (the password was checked) or 429 (it
was not); never more than the threshold may be 401.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from accounts.models import LoginFailure
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS = 16
THRESHOLD = 5
LOGINS = ("bob", "BOB@example.com")


def _sign_in_all_at_once(urls: list[str]) -> list[int]:
    start = threading.Barrier(ATTEMPTS)

    def attempt(number: int) -> int:
        headers = {"X-Forwarded-For": f"198.51.100.{number + 1}"}
        with httpx.Client(base_url=urls[number % len(urls)], timeout=60) as client:
            start.wait(timeout=30)
            response = client.post(
                "/api/v1/auth/token",
                # The account named by username or by email is one account.
                json={"username": LOGINS[number % 2], "password": f"wrong-{number}"},
                headers=headers,
            )
        return response.status_code

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        return list(pool.map(attempt, range(ATTEMPTS)))


def test_concurrent_wrong_passwords_check_at_most_the_threshold(server_processes: Any, member: Any):
    servers = server_processes(
        count=2,
        workers=2,
        TRUSTED_PROXY_COUNT="1",
        AUTH_LOCKOUT_USERNAME_FAILURES=str(THRESHOLD),
        AUTH_LOCKOUT_IP_FAILURES="20",
    )

    statuses = _sign_in_all_at_once([server.url for server in servers])

    assert set(statuses) <= {401, 429}, statuses
    checked = statuses.count(401)
    # Attempts racing each other may all be refused; never may more than the threshold pass.
    assert checked <= THRESHOLD, statuses
    assert LoginFailure.objects.filter(username="bob").count() == checked
    failed = AuditEvent.objects.filter(action="auth.login_failed", resource_id=str(member.id))
    assert failed.count() == checked
