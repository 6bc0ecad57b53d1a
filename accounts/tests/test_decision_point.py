"""The decision point: TTL classes, negative caching, invalidation, org isolation, the remote
breaker, the authorization health report, start-up checks, logs and audit of denials."""

import json
import socket
import threading
import time
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.authz.decision_cache import decision_key
from accounts.identity.principal import session_key
from accounts.models import CacheInvalidation, Membership
from accounts.tasks import cache_invalidations_replay_task
from accounts.tests.factories import member_of
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

pytestmark = pytest.mark.django_db(transaction=True)

CHECK = "/api/v1/authorization/check"
HEALTH = "/api/v1/health/auth"
AUDIT = "/api/v1/audit/events"  # needs audit:read
SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def _check(client, org, user, permission, status=200):
    body = {"org_id": str(org.id), "user_id": str(user.id), "permission": permission}
    response = client.post(CHECK, body, format="json")
    assert response.status_code == status, response.content
    return response.json()


def _frozen():
    """Stop the wall clock here; `shift` moves it (member views and cache entries use it)."""
    return time_machine.travel(time.time(), tick=False)


def _scrape(path):
    return APIClient().get(path, **SCRAPE)


def _breaker():
    return _scrape(HEALTH).json()["auth_api"]["circuit_breaker"]


def _remote_requests(outcome):
    families = text_string_to_metric_families(_scrape("/metrics").content.decode())
    samples = (sample for family in families for sample in family.samples)
    return next(
        (
            sample.value
            for sample in samples
            if sample.name == "vantage_authz_remote_requests_total"
            and sample.labels == {"outcome": outcome}
        ),
        0.0,
    )


def _remote_settings(settings, url):
    settings.AUTHZ_BACKEND = "remote"
    settings.AUTH_API_URL = url
    settings.AUTH_API_TOKEN = "sk_anything"
    settings.AUTH_API_TIMEOUT = 1


# --- 1, 2. TTL classes and negative caching (local mode) ---------------------------


@pytest.mark.parametrize("moved", [False, True], ids=["default", "from-settings"])
@pytest.mark.parametrize(
    ("permission", "role", "ttl", "setting"),
    [
        ("image:read", "admin", 300, "AUTH_CACHE_TTL_READ"),
        ("image:upload", "admin", 60, "AUTH_CACHE_TTL_WRITE"),
        ("token:manage", "admin", 30, "AUTH_CACHE_TTL_ADMIN"),
        ("org:admin", "admin", 30, "AUTH_CACHE_TTL_ADMIN"),
        ("image:delete", "viewer", 120, "AUTH_CACHE_TTL_DENIED"),  # negative caching
        ("token:manage", "viewer", 120, "AUTH_CACHE_TTL_DENIED"),  # a denial keeps its own TTL
    ],
)
def test_a_decision_is_reused_until_its_class_ttl_then_read_again(
    admin_client, org, settings, *, permission, role, ttl, setting, moved
):
    if moved:
        ttl = 10
        setattr(settings, setting, ttl)
    subject = member_of(org, role, "erin")
    with _frozen() as clock:
        first = _check(admin_client, org, subject, permission)
        assert first["source"] == "db"
        assert _check(admin_client, org, subject, permission)["source"] == "l1"
        clock.shift(ttl)
        assert _check(admin_client, org, subject, permission)["source"] == "l1"
        clock.shift(1)
        again = _check(admin_client, org, subject, permission)

    assert again["source"] == "db"
    assert again["allowed"] is first["allowed"] is (role == "admin")


def test_at_the_same_moment_an_admin_permission_is_reread_while_a_read_is_not(admin_client, org):
    subject = member_of(org, "admin", "erin")
    with _frozen() as clock:
        _check(admin_client, org, subject, "image:read")
        clock.shift(31)
        read = _check(admin_client, org, subject, "image:read")
        admin_class = _check(admin_client, org, subject, "org:admin")

    assert read["source"] == "l1"
    assert admin_class["source"] == "db"


# --- 3, 4. Grants and revocations are seen on the next request --------------------


def test_a_role_grant_after_a_cached_denial_is_allowed_at_once(admin_client, org, viewer):
    assert _check(admin_client, org, viewer, "image:upload")["allowed"] is False
    assert _check(admin_client, org, viewer, "image:upload")["source"] == "l1"
    promote = admin_client.patch(
        f"/api/v1/orgs/current/members/{viewer.id}", {"role": "user"}, format="json"
    )
    assert promote.status_code == 200

    body = _check(admin_client, org, viewer, "image:upload")

    assert body == {"allowed": True, "groups": [], "reason": "granted by role user", "source": "db"}


def test_a_group_grant_after_a_cached_denial_lets_the_member_in_on_the_next_request(
    admin_client, org, viewer, viewer_client
):
    for _ in range(2):  # the second denial is answered from this process's memory
        assert_problem(viewer_client.get(AUDIT), status=403, code="PERMISSION_DENIED")
    assert _check(admin_client, org, viewer, "audit:read")["source"] == "l1"
    group = admin_client.post(
        "/api/v1/orgs/current/groups",
        {"name": "auditors", "permissions": ["audit:read"], "members": [str(viewer.id)]},
        format="json",
    )
    assert group.status_code == 201

    assert viewer_client.get(AUDIT).status_code == 200
    assert _check(admin_client, org, viewer, "audit:read")["reason"] == "granted by group auditors"


def test_a_demoted_member_is_refused_what_it_lost_on_the_next_request(admin_client, org):
    erin = member_of(org, "admin", "erin")
    erin_client = login_client(erin)
    for _ in range(2):  # warm: the second is answered from this process's memory
        assert erin_client.get("/api/v1/tokens").status_code == 200
    demote = admin_client.patch(
        f"/api/v1/orgs/current/members/{erin.id}", {"role": "user"}, format="json"
    )
    assert demote.status_code == 200

    assert_problem(erin_client.get("/api/v1/tokens"), status=403, code="PERMISSION_DENIED")
    assert erin_client.get("/api/v1/auth/me").json()["role"] == "user"


def test_a_removed_member_is_refused_on_the_next_request(admin_client, member, member_client):
    assert member_client.get("/api/v1/auth/me").status_code == 200
    assert member_client.get("/api/v1/auth/me").status_code == 200
    assert admin_client.delete(f"/api/v1/orgs/current/members/{member.id}").status_code == 204

    assert_problem(member_client.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")
    assert not Membership.objects.filter(user=member).exists()


def _redis_cache(settings, url):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "t",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }


def test_a_revocation_the_cache_missed_is_replayed_once_it_is_back(
    settings, throwaway_redis, member
):
    _redis_cache(settings, throwaway_redis.url)
    laptop, phone = login_client(member), login_client(member)
    for _ in range(2):  # the laptop's live session state is now in the shared cache
        assert laptop.get("/api/v1/auth/me").status_code == 200
    key = session_key(laptop.sign_in.session.id)
    assert cache.get(key) == {**cache.get(key), "revoked": False}
    throwaway_redis.kill()

    ended = phone.delete(f"/api/v1/auth/sessions/{laptop.sign_in.session.id}")
    assert ended.status_code == 204
    assert list(CacheInvalidation.objects.values_list("key", flat=True)) == [key]
    throwaway_redis.start()  # back, still holding the live state
    assert cache.get(key)["revoked"] is False

    assert cache_invalidations_replay_task() is True
    assert cache.get(key) is None
    assert not CacheInvalidation.objects.exists()
    assert_problem(laptop.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")


def test_a_process_that_saw_the_cache_fail_replays_before_trusting_it(
    settings, throwaway_redis, member
):
    _redis_cache(settings, throwaway_redis.url)
    laptop, phone = login_client(member), login_client(member)
    for _ in range(2):
        assert laptop.get("/api/v1/auth/me").status_code == 200
    throwaway_redis.kill()
    assert phone.delete(f"/api/v1/auth/sessions/{laptop.sign_in.session.id}").status_code == 204
    throwaway_redis.start()

    # The first read after the outage replays the missed revocation, then reads again.
    assert_problem(laptop.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")
    assert not CacheInvalidation.objects.exists()
    assert phone.get("/api/v1/auth/me").status_code == 200


# --- 5. Organization isolation --------------------------------------------------------


def test_what_a_user_may_do_in_one_organization_never_leaks_into_another(
    admin_client, outsider_client, org, other_org
):
    both = member_of(other_org, "admin", "trent")
    Membership.objects.create(user=both, organization=org, role="viewer")
    in_other = login_client(both, other_org)
    in_org = login_client(both, org)
    for _ in range(2):
        assert in_other.get(AUDIT).status_code == 200
        assert _check(outsider_client, other_org, both, "audit:read")["allowed"] is True

    assert_problem(in_org.get(AUDIT), status=403, code="PERMISSION_DENIED")
    assert _check(admin_client, org, both, "audit:read")["allowed"] is False
    assert in_other.get(AUDIT).status_code == 200
    # A caller may ask only about its own organization, whoever the subject is.
    mismatch = _check(admin_client, other_org, both, "audit:read", status=403)
    assert mismatch["code"] == "PERMISSION_DENIED"


@pytest.fixture
def decision_point(settings):
    """A stand-in for another deployment's decision point: answers `allowed`, records asks."""
    state = {"allowed": True, "asked": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state["asked"].append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            answer = {"allowed": state["allowed"], "groups": [], "reason": "stub"}
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(answer).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    _remote_settings(settings, f"http://127.0.0.1:{port}/api/v1/authorization/check")
    yield state
    server.shutdown()
    server.server_close()


def test_a_remote_answer_is_cached_under_its_organization_only(decision_point, org, other_org):
    both = member_of(org, "admin", "trent")
    Membership.objects.create(user=both, organization=other_org, role="admin")
    in_org, in_other = login_client(both, org), login_client(both, other_org)
    assert in_org.get(AUDIT).status_code == 200
    assert in_org.get(AUDIT).status_code == 200  # from the decision cache
    decision_point["allowed"] = False

    assert_problem(in_other.get(AUDIT), status=403, code="PERMISSION_DENIED")

    assert [ask["org_id"] for ask in decision_point["asked"]] == [str(org.id), str(other_org.id)]
    assert cache.get(decision_key(org.id, both.id, "audit:read"))["allowed"] is True
    assert cache.get(decision_key(other_org.id, both.id, "audit:read"))["allowed"] is False
    assert in_org.get(AUDIT).status_code == 200


# --- 6. Remote mode: the circuit breaker, without any server -------------------------


@pytest.fixture
def unreachable_decision_point(settings):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _remote_settings(settings, f"http://127.0.0.1:{port}/api/v1/authorization/check")
    return settings.AUTH_API_URL


def _refused(client, retry_after=None):
    response = client.get(AUDIT)
    assert_problem(response, status=503, code="AUTHORIZATION_UNAVAILABLE")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert retry_after in (None, int(response["Retry-After"]))


def _trip(client):
    for _ in range(5):
        _refused(client)


def test_an_unreachable_decision_point_refuses_with_503_and_opens_the_breaker(
    unreachable_decision_point, admin_client
):
    for attempt in range(1, 5):
        _refused(admin_client, retry_after=1)
        assert (_breaker()["state"], _breaker()["failures"]) == ("closed", attempt)

    with _frozen():
        _refused(admin_client, retry_after=60)  # the fifth failure opens it
        response = _scrape(HEALTH)

    body = response.json()
    assert (response.status_code, body["status"]) == (503, "unhealthy")
    assert body["auth_api"]["url"] == unreachable_decision_point
    breaker = body["auth_api"]["circuit_breaker"]
    assert (breaker["state"], breaker["threshold"], breaker["timeout_seconds"]) == ("open", 5, 60)
    assert breaker["failures"] >= 5
    assert breaker["opened_at"]


def test_while_open_requests_are_refused_without_trying_the_network(
    unreachable_decision_point, admin_client, log_lines
):
    with _frozen() as clock:
        _trip(admin_client)
        failed, rejected = _remote_requests("failed"), _remote_requests("rejected")
        clock.shift(20)
        _refused(admin_client, retry_after=40)
        _refused(admin_client, retry_after=40)

    assert _remote_requests("rejected") == rejected + 2
    assert _remote_requests("failed") == failed
    unavailable = [line for line in log_lines() if line["event"] == "authz_remote_unavailable"]
    assert [line["error_type"] for line in unavailable[-2:]] == ["CircuitBreakerError"] * 2


def test_after_the_reset_timeout_one_probe_is_made_and_a_failure_opens_it_again(
    unreachable_decision_point, admin_client, log_lines
):
    with _frozen() as clock:
        _trip(admin_client)
        first_opened = _breaker()["opened_at"]
        failed = _remote_requests("failed")
        clock.shift(61)
        _refused(admin_client, retry_after=60)
        breaker = _breaker()

    assert _remote_requests("failed") == failed + 1  # the probe went to the network
    assert breaker["state"] == "open"
    assert breaker["opened_at"] > first_opened
    states = [
        line["state"] for line in log_lines() if line["event"] == "authz_breaker_state_changed"
    ]
    assert states[-3:] == ["open", "half-open", "open"]


def test_with_fail_open_a_request_succeeds_while_the_breaker_is_open(
    unreachable_decision_point, admin_client, settings
):
    _trip(admin_client)
    settings.AUTH_FAIL_OPEN = True

    assert admin_client.get(AUDIT).status_code == 200
    health = _scrape(HEALTH)
    assert (health.status_code, health.json()["status"]) == (200, "degraded")
    assert health.json()["config"] == {"fail_open": True}
    settings.AUTH_FAIL_OPEN = False  # the fail-open grant was not kept as a decision
    _refused(admin_client)


def test_a_view_open_to_any_principal_works_while_the_breaker_is_open(
    unreachable_decision_point, admin_client, admin
):
    _trip(admin_client)
    rejected = _remote_requests("rejected")

    response = admin_client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response.json()["username"] == admin.username
    assert _remote_requests("rejected") == rejected  # no decision was asked of anyone


# --- 7. GET /api/v1/health/auth --------------------------------------------------------


def test_the_authorization_health_report_in_local_mode(settings):
    response = _scrape(HEALTH)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "status": "healthy",
        "backend": "local",
        "auth_api": {
            "url": None,
            "timeout_seconds": 2.0,
            "circuit_breaker": {
                "state": "closed",
                "failures": 0,
                "threshold": 5,
                "timeout_seconds": 60,
                "opened_at": None,
            },
        },
        "cache": {
            "enabled": True,
            "redis_connection": "connected" if settings.REDIS_URL else "not_configured",
            "redis_error": None,
            "ttl_config": {
                "read_seconds": 300,
                "write_seconds": 60,
                "admin_seconds": 30,
                "denied_seconds": 120,
            },
        },
        "config": {"fail_open": False},
    }


@pytest.mark.parametrize(
    ("client_fixture", "headers", "status", "code"),
    [
        ("admin_client", {}, 403, "PERMISSION_DENIED"),
        ("api_client", SCRAPE, 200, None),
        ("member_client", {}, 403, "PERMISSION_DENIED"),
        ("viewer_client", {}, 403, "PERMISSION_DENIED"),
        ("api_client", {}, 401, "NOT_AUTHENTICATED"),
        ("api_client", {"HTTP_AUTHORIZATION": "Bearer wrong-token"}, 401, "AUTHENTICATION_FAILED"),
    ],
)
def test_the_authorization_health_needs_the_scrape_token_or_staff(
    request, org, *, client_fixture, headers, status, code
):
    response = request.getfixturevalue(client_fixture).get(HEALTH, **headers)

    if code is None:
        assert (response.status_code, response.json()["status"]) == (status, "healthy")
    else:
        assert_problem(response, status=status, code=code)


def test_the_breaker_opening_time_is_utc_with_z(unreachable_decision_point, admin_client):
    _trip(admin_client)

    assert _breaker()["opened_at"].endswith("Z")


# --- 8. Start-up checks ---------------------------------------------------------------


REMOTE_OK = {
    "AUTHZ_BACKEND": "remote",
    "AUTH_API_URL": "http://pdp.example/check",
    "AUTH_API_TOKEN": "sk_anything",
}


@pytest.mark.parametrize(
    ("overrides", "check_id"),
    [
        ({"AUTHZ_BACKEND": "ldap"}, "accounts.E001"),
        ({**REMOTE_OK, "AUTH_API_URL": ""}, "accounts.E002"),
        ({**REMOTE_OK, "AUTH_API_TOKEN": ""}, "accounts.E002"),
        (REMOTE_OK, None),
    ],
)
def test_check_refuses_a_decision_point_that_cannot_work(settings, overrides, check_id):
    for name, value in overrides.items():
        setattr(settings, name, value)

    refused = pytest.raises(SystemCheckError, match=check_id) if check_id else nullcontext()
    with refused:
        call_command("check")


# --- 9. Logs and audit ----------------------------------------------------------------


def test_every_decision_logs_who_what_and_where_it_came_from(admin_client, org, viewer, log_lines):
    _check(admin_client, org, viewer, "image:delete")

    lines = [line for line in log_lines() if line["event"] == "authorization_decision"]
    line = next(line for line in lines if line["permission"] == "image:delete")
    assert (line["organization_id"], line["principal"]) == (str(org.id), f"user:{viewer.id}")
    assert (line["allowed"], line["source"]) == (False, "db")
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0


def test_a_repeated_denial_is_audited_once_a_minute(viewer, viewer_client):
    with _frozen():
        for _ in range(3):
            assert_problem(viewer_client.get(AUDIT), status=403, code="PERMISSION_DENIED")

    events = AuditEvent.objects.filter(action="authz.denied")
    assert events.count() == 1
    event = events.get()
    assert (event.actor_id, event.resource_id, event.outcome) == (
        str(viewer.id),
        "audit:read",
        "denied",
    )
    assert event.details["path"] == AUDIT
