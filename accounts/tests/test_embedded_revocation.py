"""The embedded default (no Redis: each process caches in its own memory) refuses at once
what another process revoked: a command, or another web process.

A real gunicorn server runs apart from the test, with the project's gunicorn
settings, the test database and no REDIS_URL; the commands run as processes
of their own, as an operator runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from accounts.caching.invalidations import invalidations_catch_up
from accounts.models import CacheInvalidation
from accounts.services.tokens import token_create, token_revoke
from accounts.tasks import cache_invalidations_replay_task
from accounts.tests.factories import PASSWORD, MembershipFactory, OrganizationFactory
from accounts.tokens.records import record_key, token_record_cache, token_record_load
from config.testing.processes import database_url_for_subprocess

EMBEDDED = {"REDIS_URL": ""}
LIMITS = "/api/v1/images/limits"
ME = "/api/v1/auth/me"


def manage(*args: str) -> str:
    """Run a management command in a process of its own; return what it printed."""
    env = {
        **os.environ,
        **EMBEDDED,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def call(server: Any, path: str, secret: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}{path}", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )


def sign_in(server: Any, username: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def warm(server: Any, path: str, secret: str) -> httpx.Response:
    """Call twice, so the server answers the second from its own memory; return the second."""
    assert call(server, path, secret).status_code == 200
    response = call(server, path, secret)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def embedded_server(server_processes: Any) -> Any:
    def start(**env: str) -> Any:
        return server_processes(count=1, **EMBEDDED, **env)[0]

    return start


@pytest.fixture
def team(transactional_db: None) -> Any:
    org = OrganizationFactory(slug="embedded")
    return MembershipFactory(organization=org, role="admin", user__username="olga")


def test_a_token_revoked_by_the_command_is_refused_on_the_next_request(embedded_server, team):
    issued = token_create(
        organization=team.organization, name="ci", scopes=["image:read"], created_by=team.user
    )
    server = embedded_server()
    warm(server, LIMITS, issued.secret)

    manage("revoke_service_token", issued.token.prefix, "--reason", "leaked")

    refused = call(server, LIMITS, issued.secret)
    assert refused.status_code == 401
    assert refused.json()["code"] == "TOKEN_REVOKED"


def test_the_emergency_revocation_refuses_every_token_on_the_next_request(embedded_server, team):
    secrets = [
        token_create(
            organization=team.organization, name=name, scopes=["image:read"], created_by=team.user
        ).secret
        for name in ("ci", "backup", "export")
    ]
    server = embedded_server()
    for secret in secrets:
        warm(server, LIMITS, secret)

    manage("revoke_all_service_tokens", "--org", "embedded", "--reason", "breach", "--yes")

    assert [call(server, LIMITS, secret).status_code for secret in secrets] == [401] * 3


def test_sessions_revoked_by_the_command_are_refused_on_the_next_request(embedded_server, team):
    server = embedded_server()
    laptop, phone = sign_in(server, "olga"), sign_in(server, "olga")
    warm(server, ME, laptop["access"])
    warm(server, ME, phone["access"])

    manage("revoke_user_sessions", "olga", "--reason", "stolen_laptop")

    for tokens in (laptop, phone):
        refused = call(server, ME, tokens["access"])
        assert refused.status_code == 401
        assert refused.json()["code"] == "TOKEN_REVOKED"


def test_limits_set_by_the_command_apply_on_the_next_request(embedded_server, team):
    server = embedded_server(RATE_LIMIT_ENABLED="true")
    access = sign_in(server, "olga")["access"]
    assert warm(server, ME, access).headers["X-RateLimit-Limit"] == "60"  # the pro tier's

    manage("set_org_limits", "embedded", "--requests-per-minute", "2")

    # Two requests are in the window already: the third of the minute is refused.
    response = call(server, ME, access)
    assert response.status_code == 429
    assert response.headers["X-RateLimit-Limit"] == "2"


def test_a_session_ended_through_one_web_process_is_refused_by_another(server_processes, team):
    first, second = server_processes(count=2, **EMBEDDED)
    laptop, phone = sign_in(first, "olga"), sign_in(first, "olga")
    warm(first, ME, laptop["access"])
    warm(second, ME, laptop["access"])

    ended = httpx.delete(
        f"{second.url}/api/v1/auth/sessions/{laptop['session_id']}",
        headers={"Authorization": f"Bearer {phone['access']}"},
        timeout=10,
    )
    assert ended.status_code == 204

    assert call(first, ME, laptop["access"]).status_code == 401
    assert call(first, ME, phone["access"]).status_code == 200


LOCAL_MEMORY = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "log-tests"}
}


def test_the_periodic_task_keeps_the_log_processes_follow_and_prunes_only_old_entries(
    settings, transactional_db
):
    settings.CACHES = LOCAL_MEMORY
    old = CacheInvalidation.objects.create(key="auth:gen:old")
    CacheInvalidation.objects.filter(id=old.id).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    recent = CacheInvalidation.objects.create(key="auth:gen:recent")

    assert cache_invalidations_replay_task() is True

    assert list(CacheInvalidation.objects.values_list("id", flat=True)) == [recent.id]


def test_a_revocation_in_this_process_is_logged_for_the_others(settings, transactional_db, team):
    settings.CACHES = LOCAL_MEMORY
    issued = token_create(
        organization=team.organization, name="ci", scopes=["image:read"], created_by=team.user
    )
    before = CacheInvalidation.objects.count()

    token_revoke(token=issued.token, reason="leaked")

    keys = list(CacheInvalidation.objects.order_by("id").values_list("key", flat=True))
    assert len(keys) == before + 1
    assert keys[-1] == record_key(issued.token.digest)


def test_what_a_request_read_before_a_drop_is_not_cached_after_it(settings, transactional_db, team):
    settings.CACHES = LOCAL_MEMORY
    issued = token_create(
        organization=team.organization, name="ci", scopes=["image:read"], created_by=team.user
    )
    key = record_key(issued.token.digest)
    invalidations_catch_up()  # a request of this thread begins...
    live = token_record_load(issued.secret, issued.token.digest)  # ...and reads the live token
    token_revoke(token=issued.token, reason="leaked")
    # Another request of this process catches up with the revocation meanwhile.
    other = threading.Thread(target=invalidations_catch_up)
    other.start()
    other.join()

    token_record_cache(issued.token.digest, live)

    assert cache.get(key) is None


def test_a_request_asks_nothing_of_sqlite_while_the_log_has_not_grown(
    settings, transactional_db, django_assert_num_queries
):
    if connection.vendor != "sqlite":
        pytest.skip("with a server database the log is read on every request")
    settings.CACHES = LOCAL_MEMORY
    invalidations_catch_up()

    with django_assert_num_queries(0):
        invalidations_catch_up()
