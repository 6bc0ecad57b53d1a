"""The decision point across real server processes: changes, remote decisions, outages.

Every test starts real gunicorn servers of this project (`server_processes`)
sharing the test's database and, unless said otherwise, its Redis. Local mode:
a change made through one process is enforced by another on the very next
request, even where that process had the decision cached. Remote mode
(AUTHZ_BACKEND=remote): a client server asks a decision point server, keeps
its answers, and behind the shared circuit breaker refuses fast (or allows,
with AUTH_FAIL_OPEN) while the decision point is away. With the cache's Redis
killed, decisions come from the database: still right.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from accounts.models import Group, Membership, Organization, User
from accounts.services.tokens import token_create
from accounts.tests.factories import PASSWORD, GroupFactory, MembershipFactory, OrganizationFactory
from config.testing.processes import ServerProcess, free_port

pytestmark = pytest.mark.integration

# config/settings_test.py sets it in this process's environment; servers inherit it.
SCRAPE_TOKEN = "test-metrics-token"
CHECK_PATH = "/api/v1/authorization/check"

# GET endpoints guarded by one permission each.
TOKENS = "/api/v1/tokens"  # token:manage
AUDIT = "/api/v1/audit/events"  # audit:read
GROUPS = "/api/v1/orgs/current/groups"  # org:admin


# --- Talking to the servers -------------------------------------------------------------


def _login(server: ServerProcess, username: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _headers(credential: str) -> dict[str, str]:
    if credential.startswith("sk_"):
        return {"X-API-Key": credential}
    return {"Authorization": f"Bearer {credential}"}


def _get(server: ServerProcess, path: str, credential: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=_headers(credential), timeout=30)


def _timed_get(server: ServerProcess, path: str, credential: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = _get(server, path, credential)
    return response, time.perf_counter() - started


def _send(
    server: ServerProcess, method: str, path: str, credential: str, body: Any = None
) -> httpx.Response:
    return httpx.request(
        method, f"{server.url}{path}", json=body, headers=_headers(credential), timeout=30
    )


def _auth_health(server: ServerProcess) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/health/auth",
        headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
        timeout=30,
    )


def _breaker(server: ServerProcess) -> dict[str, Any]:
    return _auth_health(server).json()["auth_api"]["circuit_breaker"]


def _assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def _served_twice(server: ServerProcess, path: str, credential: str, status: int = 200) -> None:
    """Have `server` answer the same request twice, so its decision is warm in its caches."""
    for _ in range(2):
        response = _get(server, path, credential)
        assert response.status_code == status, response.text


# --- What a server logged --------------------------------------------------------------


def _log(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in server.log_path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def _decisions(server: ServerProcess, permission: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _log(server)
        if line.get("event") == "authorization_decision" and line.get("permission") == permission
    ]


def _wait_for_log(
    server: ServerProcess, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5
) -> list[dict[str, Any]]:
    """Return the server's log once `predicate` holds for it (the log is written asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = _log(server)
        if predicate(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


# --- Fixtures: an organization, its people, and a service token for the client ----------


@dataclass
class Org:
    id: str
    admin: User  # alice: an admin, makes the changes
    member: User  # bob: a user, in group `auditors` (audit:read)
    auditors: Group


@pytest.fixture
def acme(transactional_db: None) -> Org:
    org = OrganizationFactory(slug="decision-point")
    admin = MembershipFactory(organization=org, role="admin", user__username="alice").user
    membership = MembershipFactory(organization=org, role="user", user__username="bob")
    auditors = GroupFactory(organization=org, name="auditors", permissions=["audit:read"])
    membership.groups.add(auditors)
    return Org(str(org.id), admin, membership.user, auditors)


def _check_token(org: Org) -> str:
    """A service token of an org admin holding only `authz:check`, as a client deployment keeps."""
    issued = token_create(
        organization=Organization.objects.get(id=org.id),
        name="decision-client",
        scopes=["authz:check"],
        created_by=org.admin,
    )
    return issued.secret


def _check_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{CHECK_PATH}"


def _remote_env(org: Org, url: str, **overrides: str) -> dict[str, str]:
    return {
        "AUTHZ_BACKEND": "remote",
        "AUTH_API_URL": url,
        "AUTH_API_TOKEN": _check_token(org),
        "AUTH_API_TIMEOUT": "2",
        **overrides,
    }


def _servers(server_processes: Any, name: str, count: int = 1, **env: str) -> list[ServerProcess]:
    """Start servers whose logs are named by their role: `<name>-<i>.log`."""
    servers = server_processes(count=count, PYTHONUNBUFFERED="1", **env)
    for index, server in enumerate(servers):
        renamed = server.log_path.with_name(f"{name}-{index}.log")
        server.log_path.rename(renamed)
        server.log_path = renamed
    return servers


def _start_on_port(server_processes: Any, name: str, port: int) -> ServerProcess:
    """Start one local-mode server on `port`."""
    (server,) = _servers(server_processes, name, port=port)
    return server


def _stop(server: ServerProcess) -> None:
    server.process.terminate()
    server.process.wait(timeout=20)


@pytest.fixture
def silent_socket() -> Iterator[int]:
    """A port that accepts connections (the kernel does), never answers: a hung decision point."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


# === 1. Local mode: a loss through one process is enforced by the other at once ==========


def test_demoted_admin_is_refused_on_the_next_request_by_the_other_process(server_processes, acme):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    _send(
        second, "PATCH", f"/api/v1/orgs/current/members/{acme.member.id}", admin, {"role": "admin"}
    ).raise_for_status()
    member = _login(first, acme.member.username)["access"]
    _served_twice(first, TOKENS, member)

    demote = _send(
        second, "PATCH", f"/api/v1/orgs/current/members/{acme.member.id}", admin, {"role": "user"}
    )
    assert demote.status_code == 200, demote.text
    assert demote.json()["role"] == "user"

    _assert_refused(_get(first, TOKENS, member), 403, "PERMISSION_DENIED")
    assert _get(first, AUDIT, member).status_code == 200  # the group's grant stays


def test_removed_member_is_refused_on_the_next_request_by_the_other_process(server_processes, acme):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    member = _login(first, acme.member.username)["access"]
    _served_twice(first, AUDIT, member)

    remove = _send(second, "DELETE", f"/api/v1/orgs/current/members/{acme.member.id}", admin)
    assert remove.status_code == 204, remove.text

    _assert_refused(_get(first, AUDIT, member), 401, "TOKEN_REVOKED")
    assert not Membership.objects.filter(user=acme.member).exists()


def test_token_of_a_removed_member_is_refused_on_the_next_request_by_the_other_process(
    server_processes, acme
):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    _send(
        second, "PATCH", f"/api/v1/orgs/current/members/{acme.member.id}", admin, {"role": "admin"}
    ).raise_for_status()
    member = _login(first, acme.member.username)["access"]
    token = _send(first, "POST", TOKENS, member, {"name": "ci", "scopes": ["audit:read"]})
    assert token.status_code == 201, token.text
    secret = token.json()["token"]
    _served_twice(first, AUDIT, secret)

    remove = _send(second, "DELETE", f"/api/v1/orgs/current/members/{acme.member.id}", admin)
    assert remove.status_code == 204, remove.text

    _assert_refused(_get(first, AUDIT, secret), 401, "TOKEN_REVOKED")


def test_scope_removed_from_a_token_is_refused_on_the_next_request_by_the_other_process(
    server_processes, acme
):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    created = _send(
        second,
        "POST",
        TOKENS,
        admin,
        {"name": "pipeline", "scopes": ["token:manage", "audit:read"]},
    )
    assert created.status_code == 201, created.text
    token = created.json()
    _served_twice(first, TOKENS, token["token"])

    narrow = _send(second, "PATCH", f"{TOKENS}/{token['id']}", admin, {"scopes": ["audit:read"]})
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["scopes"] == ["audit:read"]

    _assert_refused(_get(first, TOKENS, token["token"]), 403, "PERMISSION_DENIED")
    assert _get(first, AUDIT, token["token"]).status_code == 200


def test_token_of_a_demoted_creator_is_narrowed_on_the_next_request_by_the_other_process(
    server_processes, acme
):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    _send(
        second, "PATCH", f"/api/v1/orgs/current/members/{acme.member.id}", admin, {"role": "admin"}
    ).raise_for_status()
    member = _login(first, acme.member.username)["access"]
    created = _send(first, "POST", TOKENS, member, {"name": "ci", "scopes": ["token:manage"]})
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    _served_twice(first, TOKENS, secret)

    demote = _send(
        second, "PATCH", f"/api/v1/orgs/current/members/{acme.member.id}", admin, {"role": "user"}
    )
    assert demote.status_code == 200, demote.text

    _assert_refused(_get(first, TOKENS, secret), 403, "PERMISSION_DENIED")


def _leave_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    path = f"/api/v1/orgs/current/members/{org.member.id}"
    return _send(server, "PATCH", path, admin, {"groups": []})


def _empty_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    path = f"/api/v1/orgs/current/groups/{org.auditors.id}"
    return _send(server, "PATCH", path, admin, {"members": []})


def _strip_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    path = f"/api/v1/orgs/current/groups/{org.auditors.id}"
    return _send(server, "PATCH", path, admin, {"permissions": []})


def _delete_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    return _send(server, "DELETE", f"/api/v1/orgs/current/groups/{org.auditors.id}", admin)


@pytest.mark.parametrize(
    "change",
    [_leave_group, _empty_group, _strip_group, _delete_group],
    ids=["member-leaves-group", "group-emptied", "group-loses-permission", "group-deleted"],
)
def test_permission_lost_with_a_group_is_refused_on_the_next_request_by_the_other_process(
    server_processes, acme, change
):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    member = _login(first, acme.member.username)["access"]
    _served_twice(first, AUDIT, member)

    answer = change(second, admin, acme)
    assert answer.status_code in (200, 204), answer.text

    _assert_refused(_get(first, AUDIT, member), 403, "PERMISSION_DENIED")
    assert "audit:read" not in _get(first, "/api/v1/auth/me", member).json()["permissions"]


# === 2. Local mode: a grant after a cached denial is seen at once ========================


def _promote(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    path = f"/api/v1/orgs/current/members/{org.member.id}"
    return _send(server, "PATCH", path, admin, {"role": "admin"})


def _join_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    created = _send(
        server,
        "POST",
        "/api/v1/orgs/current/groups",
        admin,
        {"name": "token-keepers", "permissions": ["token:manage"]},
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/orgs/current/members/{org.member.id}"
    return _send(server, "PATCH", path, admin, {"groups": ["auditors", "token-keepers"]})


def _widen_group(server: ServerProcess, admin: str, org: Org) -> httpx.Response:
    path = f"/api/v1/orgs/current/groups/{org.auditors.id}"
    return _send(server, "PATCH", path, admin, {"permissions": ["audit:read", "token:manage"]})


@pytest.mark.parametrize(
    "grant",
    [_promote, _join_group, _widen_group],
    ids=["promoted", "joins-group", "group-gains-permission"],
)
def test_grant_after_a_cached_denial_is_allowed_on_the_next_request_by_the_other_process(
    server_processes, acme, grant
):
    first, second = server_processes(count=2)
    admin = _login(second, acme.admin.username)["access"]
    member = _login(first, acme.member.username)["access"]
    _served_twice(first, TOKENS, member, status=403)

    answer = grant(second, admin, acme)
    assert answer.status_code == 200, answer.text

    assert _get(first, TOKENS, member).status_code == 200


# === 3. Remote mode: a client server asks a decision point server ========================


def test_remote_decisions_are_asked_once_then_answered_from_the_client_cache(
    server_processes, acme
):
    # DEBUG: hits from the caches are logged at that level only.
    (point,) = _servers(server_processes, "point", LOG_LEVEL="DEBUG")
    (client,) = _servers(
        server_processes,
        "client",
        **_remote_env(acme, f"{point.url}{CHECK_PATH}", LOG_LEVEL="DEBUG"),
    )
    member = _login(client, acme.member.username)["access"]
    admin = _login(client, acme.admin.username)["access"]

    assert _get(client, AUDIT, member).status_code == 200  # granted by group auditors
    _assert_refused(_get(client, TOKENS, member), 403, "PERMISSION_DENIED")  # not by role user
    assert _get(client, TOKENS, admin).status_code == 200  # granted by role admin
    assert _get(client, AUDIT, member).status_code == 200
    _assert_refused(_get(client, TOKENS, member), 403, "PERMISSION_DENIED")

    _wait_for_log(client, lambda _: len(_decisions(client, "token:manage")) >= 3)
    bob, alice = (f"user:{user.id}" for user in (acme.member, acme.admin))
    asked = [
        (d["principal"], d["permission"], d["allowed"], d["source"], d["reason"])
        for d in _decisions(client, "audit:read") + _decisions(client, "token:manage")
    ]
    assert asked == [
        (bob, "audit:read", True, "remote", "granted by group auditors"),
        (bob, "audit:read", True, "l1", "granted by group auditors"),
        (bob, "token:manage", False, "remote", "role user does not grant token:manage"),
        (alice, "token:manage", True, "remote", "granted by role admin"),
        (bob, "token:manage", False, "l1", "role user does not grant token:manage"),
    ]
    # The decision point was asked once per member and permission, with the client's token.
    lines = _wait_for_log(point, lambda _: len(_decisions(point, "token:manage")) >= 2)
    assert [(d["principal"], d["allowed"]) for d in _decisions(point, "audit:read")] == [
        (bob, True)
    ]
    assert [(d["principal"], d["allowed"]) for d in _decisions(point, "token:manage")] == [
        (bob, False),
        (alice, True),
    ]
    checks = [
        line
        for line in lines
        if line.get("path") == CHECK_PATH and line.get("event") == "request_finished"
    ]
    assert [line["status"] for line in checks] == [200, 200, 200]
    assert {line["principal"].split(":")[0] for line in checks} == {"service_token"}
    health = _auth_health(client).json()
    assert health["backend"] == "remote"
    assert health["auth_api"]["url"] == f"{point.url}{CHECK_PATH}"
    assert health["auth_api"]["circuit_breaker"]["state"] == "closed"


def test_remote_mode_sees_a_revocation_and_a_grant_made_through_the_decision_point(
    server_processes, acme
):
    (point,) = _servers(server_processes, "point")
    (client,) = _servers(
        server_processes, "client", **_remote_env(acme, f"{point.url}{CHECK_PATH}")
    )
    admin = _login(point, acme.admin.username)["access"]
    member = _login(client, acme.member.username)["access"]
    _served_twice(client, AUDIT, member)  # a grant, cached by the client
    _served_twice(client, TOKENS, member, status=403)  # a denial, cached by the client

    promote = _promote(point, admin, acme)
    assert promote.status_code == 200, promote.text
    assert _get(client, TOKENS, member).status_code == 200

    demote = _send(
        point,
        "PATCH",
        f"/api/v1/orgs/current/members/{acme.member.id}",
        admin,
        {"role": "user", "groups": []},
    )
    assert demote.status_code == 200, demote.text
    _assert_refused(_get(client, AUDIT, member), 403, "PERMISSION_DENIED")
    _assert_refused(_get(client, TOKENS, member), 403, "PERMISSION_DENIED")


def test_with_the_decision_point_stopped_cached_decisions_answer_and_others_are_refused(
    server_processes, acme
):
    (point,) = _servers(server_processes, "point")
    (client,) = _servers(
        server_processes, "client", **_remote_env(acme, f"{point.url}{CHECK_PATH}")
    )
    member = _login(client, acme.member.username)["access"]
    _served_twice(client, AUDIT, member)
    _served_twice(client, TOKENS, member, status=403)

    _stop(point)

    assert _get(client, AUDIT, member).status_code == 200  # cached grant
    _assert_refused(_get(client, TOKENS, member), 403, "PERMISSION_DENIED")  # cached denial
    for attempt in range(1, 6):
        refused = _get(client, GROUPS, member)  # org:admin: never asked, so not cached
        _assert_refused(refused, 503, "AUTHORIZATION_UNAVAILABLE")
        assert int(refused.headers["Retry-After"]) >= 1
        if attempt == 4:
            assert _breaker(client) | {"opened_at": None} == {
                "state": "closed",
                "failures": 4,
                "threshold": 5,
                "timeout_seconds": 60.0,
                "opened_at": None,
            }

    health = _auth_health(client)
    assert health.status_code == 503
    report = health.json()
    assert report["status"] == "unhealthy"
    assert report["auth_api"]["circuit_breaker"]["state"] == "open"
    assert report["auth_api"]["circuit_breaker"]["opened_at"] is not None
    assert report["config"]["fail_open"] is False

    started = time.perf_counter()
    for _ in range(10):
        refused = _get(client, GROUPS, member)
        _assert_refused(refused, 503, "AUTHORIZATION_UNAVAILABLE")
        assert 50 <= int(refused.headers["Retry-After"]) <= 60
    assert time.perf_counter() - started < 5
    assert _get(client, AUDIT, member).status_code == 200  # cached answers still serve
    assert _breaker(client)["failures"] == 5  # refusals while open are no attempts


def test_an_open_breaker_refuses_without_waiting_for_the_timeout(
    server_processes, acme, silent_socket
):
    timeout = 1.5
    (client,) = _servers(
        server_processes,
        "client",
        **_remote_env(acme, _check_url(silent_socket), AUTH_API_TIMEOUT=str(timeout)),
    )
    member = _login(client, acme.member.username)["access"]

    for _ in range(5):
        refused, took = _timed_get(client, GROUPS, member)
        _assert_refused(refused, 503, "AUTHORIZATION_UNAVAILABLE")
        assert took >= timeout * 0.9  # each real attempt waited for the timeout
    assert _breaker(client)["state"] == "open"

    timings = []
    for _ in range(10):
        refused, took = _timed_get(client, GROUPS, member)
        _assert_refused(refused, 503, "AUTHORIZATION_UNAVAILABLE")
        timings.append(took)
    assert max(timings) < timeout / 3, timings
    assert sum(timings) < timeout * 2, timings


def test_concurrent_requests_each_wait_at_most_one_timeout_for_a_hung_decision_point(
    server_processes, acme, silent_socket
):
    timeout = 1.0
    (client,) = _servers(
        server_processes,
        "client",
        **_remote_env(acme, _check_url(silent_socket), AUTH_API_TIMEOUT=str(timeout)),
    )
    member = _login(client, acme.member.username)["access"]
    timings: list[float] = []
    statuses: list[int] = []

    def ask() -> None:
        response, took = _timed_get(client, GROUPS, member)
        statuses.append(response.status_code)
        timings.append(took)

    threads = [threading.Thread(target=ask) for _ in range(4)]  # the server's 4 threads
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [503] * 4
    assert max(timings) < timeout * 2, sorted(timings)


def test_the_breaker_probes_after_the_reset_time_and_closes_once_the_point_is_back(
    server_processes, acme
):
    port = free_port()  # nothing listens there yet
    (client,) = _servers(
        server_processes,
        "client",
        **_remote_env(acme, _check_url(port), AUTH_BREAKER_RESET_SECONDS="2"),
    )
    member = _login(client, acme.member.username)["access"]
    for _ in range(5):
        _assert_refused(_get(client, AUDIT, member), 503, "AUTHORIZATION_UNAVAILABLE")
    first_opening = _breaker(client)
    assert first_opening["state"] == "open"
    assert first_opening["timeout_seconds"] == 2

    # Past the reset time a probe is let through; it fails, so the breaker opens anew.
    time.sleep(2.2)
    _assert_refused(_get(client, AUDIT, member), 503, "AUTHORIZATION_UNAVAILABLE")
    second_opening = _breaker(client)
    assert second_opening["state"] == "open"
    assert datetime.fromisoformat(second_opening["opened_at"]) > datetime.fromisoformat(
        first_opening["opened_at"]
    )

    # A decision point comes back on the same URL; once the reset time has passed, the
    # next request probes it, is answered and closes the breaker.
    point = _start_on_port(server_processes, "point", port)
    assert point.port == port
    reopened_at = datetime.fromisoformat(second_opening["opened_at"]).timestamp()
    time.sleep(max(0.0, reopened_at + 2.2 - time.time()))

    assert _get(client, AUDIT, member).status_code == 200
    _assert_refused(_get(client, TOKENS, member), 403, "PERMISSION_DENIED")
    health = _auth_health(client)
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    assert health.json()["auth_api"]["circuit_breaker"] | {"timeout_seconds": 2} == {
        "state": "closed",
        "failures": 0,
        "threshold": 5,
        "timeout_seconds": 2,
        "opened_at": None,
    }
    changes = [
        line["state"]
        for line in _wait_for_log(
            client,
            lambda lines: any(line.get("state") == "closed" for line in lines),
        )
        if line.get("event") == "authz_breaker_state_changed"
    ]
    assert changes == ["open", "half-open", "open", "half-open", "closed"]


def test_fail_open_allows_while_the_decision_point_is_down(server_processes, acme):
    (client,) = _servers(
        server_processes,
        "client",
        **_remote_env(acme, _check_url(free_port()), AUTH_FAIL_OPEN="true"),
    )
    member = _login(client, acme.member.username)["access"]

    for _ in range(7):  # failing attempts, then refusals by the open breaker: all allowed
        assert _get(client, AUDIT, member).status_code == 200

    health = _auth_health(client)
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "degraded"
    assert report["config"]["fail_open"] is True
    assert report["auth_api"]["circuit_breaker"]["state"] == "open"
    lines = _wait_for_log(client, lambda lines: len(_decisions(client, "audit:read")) >= 7)
    reasons = {d["reason"] for d in _decisions(client, "audit:read")}
    assert reasons == {"the decision point is unavailable; AUTH_FAIL_OPEN allows"}, lines[-3:]


def test_the_breaker_opened_through_one_client_process_is_open_in_the_other(server_processes, acme):
    first, second = _servers(
        server_processes, "client", count=2, **_remote_env(acme, _check_url(free_port()))
    )
    member = _login(first, acme.member.username)["access"]
    assert _breaker(second)["state"] == "closed"

    for _ in range(3):
        _assert_refused(_get(first, AUDIT, member), 503, "AUTHORIZATION_UNAVAILABLE")
    assert _breaker(second)["failures"] == 3  # the count is shared too
    for _ in range(2):
        _assert_refused(_get(first, AUDIT, member), 503, "AUTHORIZATION_UNAVAILABLE")

    report = _auth_health(second).json()
    assert report["status"] == "unhealthy"
    assert report["auth_api"]["circuit_breaker"]["state"] == "open"
    assert report["auth_api"]["circuit_breaker"]["opened_at"] == _breaker(first)["opened_at"]

    # The other process refuses without trying: the open breaker said no.
    refused = _get(second, AUDIT, member)
    _assert_refused(refused, 503, "AUTHORIZATION_UNAVAILABLE")
    assert int(refused.headers["Retry-After"]) > 1
    lines = _wait_for_log(
        second, lambda lines: any(x.get("event") == "authz_remote_unavailable" for x in lines)
    )
    unavailable = [line for line in lines if line.get("event") == "authz_remote_unavailable"]
    assert len(unavailable) == 1
    assert "still open" in unavailable[0]["error"]


def test_consecutive_failures_through_two_client_processes_open_the_breaker_after_a_recovery(
    server_processes, acme
):
    port = free_port()
    first, second = _servers(
        server_processes,
        "client",
        count=2,
        **_remote_env(acme, _check_url(port), AUTH_BREAKER_RESET_SECONDS="1"),
    )
    member = _login(first, acme.member.username)["access"]
    for _ in range(5):
        _assert_refused(_get(first, GROUPS, member), 503, "AUTHORIZATION_UNAVAILABLE")
    _assert_refused(_get(second, GROUPS, member), 503, "AUTHORIZATION_UNAVAILABLE")  # saw it open
    point = _start_on_port(server_processes, "point", port)
    opened_at = datetime.fromisoformat(_breaker(first)["opened_at"]).timestamp()
    time.sleep(max(0.0, opened_at + 1.2 - time.time()))
    assert _get(first, AUDIT, member).status_code == 200  # the probe closes the breaker
    assert _breaker(second)["state"] == "closed"

    _stop(point)  # down again: five consecutive failures, four through one process
    for _ in range(4):
        _assert_refused(_get(first, GROUPS, member), 503, "AUTHORIZATION_UNAVAILABLE")
    assert _breaker(second)["failures"] == 4
    _assert_refused(_get(second, GROUPS, member), 503, "AUTHORIZATION_UNAVAILABLE")

    assert _breaker(first) | {"opened_at": None} == {
        "state": "open",
        "failures": 5,
        "threshold": 5,
        "timeout_seconds": 1,
        "opened_at": None,
    }


# === 4. Local mode with the cache's Redis killed mid-test ================================


def test_with_redis_killed_the_servers_keep_deciding_correctly_from_the_database(
    server_processes, acme, throwaway_redis
):
    first, second = _servers(server_processes, "server", count=2, REDIS_URL=throwaway_redis.url)
    admin = _login(second, acme.admin.username)["access"]
    laptop = _login(first, acme.member.username)
    phone = _login(first, acme.member.username)
    _served_twice(first, AUDIT, laptop["access"])
    _served_twice(first, TOKENS, laptop["access"], status=403)
    assert _auth_health(first).json()["cache"]["redis_connection"] == "connected"

    throwaway_redis.kill()

    assert _get(first, AUDIT, laptop["access"]).status_code == 200
    _assert_refused(_get(first, TOKENS, laptop["access"]), 403, "PERMISSION_DENIED")
    assert _get(second, AUDIT, phone["access"]).status_code == 200
    health = _auth_health(first)
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "degraded"
    assert report["cache"]["redis_connection"] == "unreachable"
    assert report["cache"]["redis_error"]

    # Changes made meanwhile through the other process are enforced all the same.
    ended = _send(
        second, "DELETE", f"/api/v1/auth/sessions/{laptop['session_id']}", phone["access"]
    )
    assert ended.status_code == 204, ended.text
    _assert_refused(_get(first, AUDIT, laptop["access"]), 401, "TOKEN_REVOKED")
    assert _get(first, AUDIT, phone["access"]).status_code == 200

    leave = _leave_group(second, admin, acme)
    assert leave.status_code == 200, leave.text
    _assert_refused(_get(first, AUDIT, phone["access"]), 403, "PERMISSION_DENIED")
    promote = _promote(second, admin, acme)
    assert promote.status_code == 200, promote.text
    assert _get(first, TOKENS, phone["access"]).status_code == 200


def test_changes_made_while_redis_was_down_are_enforced_after_it_comes_back(
    server_processes, acme, throwaway_redis
):
    first, second = _servers(server_processes, "server", count=2, REDIS_URL=throwaway_redis.url)
    admin = _login(second, acme.admin.username)["access"]
    laptop = _login(first, acme.member.username)
    phone = _login(first, acme.member.username)
    _served_twice(first, AUDIT, laptop["access"])
    _served_twice(first, AUDIT, phone["access"])
    throwaway_redis.kill()

    ended = _send(
        second, "DELETE", f"/api/v1/auth/sessions/{laptop['session_id']}", phone["access"]
    )
    assert ended.status_code == 204, ended.text
    assert _leave_group(second, admin, acme).status_code == 200
    _assert_refused(_get(first, AUDIT, laptop["access"]), 401, "TOKEN_REVOKED")
    _assert_refused(_get(first, AUDIT, phone["access"]), 403, "PERMISSION_DENIED")

    throwaway_redis.start()  # back, with what it held when it died

    answers = [
        (
            _get(first, AUDIT, laptop["access"]).status_code,
            _get(first, AUDIT, phone["access"]).status_code,
        )
        for _ in range(3)
    ]
    assert answers == [(401, 403)] * 3
