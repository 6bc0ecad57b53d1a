"""Revocation through one server process is refused by another on the very next request."""

import time

import httpx
import pytest

from accounts.tests.factories import PASSWORD, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.integration


def _login(server, username: str) -> dict:
    response = httpx.post(
        f"{server.url}/api/v1/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _me(server, access: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {access}"}, timeout=10
    )


def test_session_revoked_through_one_process_is_refused_by_the_other(server_processes):
    org = OrganizationFactory(slug="twoproc")
    user = MembershipFactory(organization=org, role="user", user__username="erin").user
    first, second = server_processes(count=2)
    assert first.process.pid != second.process.pid

    laptop = _login(first, user.username)
    phone = _login(first, user.username)
    # Both processes have served (and cached) the laptop's session.
    assert _me(first, laptop["access"]).status_code == 200
    assert _me(second, laptop["access"]).status_code == 200

    # The phone ends the laptop's session through the second process...
    revoke = httpx.delete(
        f"{second.url}/api/v1/auth/sessions/{laptop['session_id']}",
        headers={"Authorization": f"Bearer {phone['access']}"},
        timeout=10,
    )
    assert revoke.status_code == 204

    # ...and the first process refuses the laptop's token on its next request.
    refused = _me(first, laptop["access"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "TOKEN_REVOKED"
    assert _me(first, phone["access"]).status_code == 200


def test_logout_on_one_process_is_refused_by_the_other(server_processes):
    org = OrganizationFactory(slug="twoproc-logout")
    user = MembershipFactory(organization=org, role="viewer", user__username="frank").user
    first, second = server_processes(count=2)
    tokens = _login(second, user.username)
    assert _me(first, tokens["access"]).status_code == 200

    logout = httpx.post(
        f"{second.url}/api/v1/auth/logout",
        headers={"Authorization": f"Bearer {tokens['access']}"},
        timeout=10,
    )
    assert logout.status_code == 204

    assert _me(first, tokens["access"]).json()["code"] == "TOKEN_REVOKED"
    refresh = httpx.post(
        f"{first.url}/api/v1/auth/token/refresh", json={"refresh": tokens["refresh"]}, timeout=10
    )
    assert refresh.status_code == 401


def test_demotion_through_one_process_is_seen_by_the_other(server_processes):
    org = OrganizationFactory(slug="twoproc-demote")
    admin = MembershipFactory(organization=org, role="admin", user__username="grace").user
    member = MembershipFactory(organization=org, role="admin", user__username="heidi").user
    first, second = server_processes(count=2)
    admin_tokens = _login(first, admin.username)
    member_tokens = _login(second, member.username)
    assert _me(second, member_tokens["access"]).json()["role"] == "admin"

    demote = httpx.patch(
        f"{first.url}/api/v1/orgs/current/members/{member.id}",
        json={"role": "viewer"},
        headers={"Authorization": f"Bearer {admin_tokens['access']}"},
        timeout=10,
    )
    assert demote.status_code == 200

    me = _me(second, member_tokens["access"]).json()
    assert me["role"] == "viewer"
    assert me["permissions"] == ["image:read", "member:read"]


def _create_token(server, access: str, scopes: list[str]) -> dict:
    response = httpx.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "pipeline", "scopes": scopes},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _with_token(server, secret: str, path: str = "/api/v1/tokens") -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"X-API-Key": secret}, timeout=10)


def test_token_revoked_through_one_process_is_refused_by_the_other(server_processes):
    org = OrganizationFactory(slug="twoproc-token")
    admin = MembershipFactory(organization=org, role="admin", user__username="ivan").user
    first, second = server_processes(count=2)
    admin_tokens = _login(first, admin.username)
    token = _create_token(first, admin_tokens["access"], ["token:manage", "image:read"])
    assert _with_token(first, token["token"]).status_code == 200
    assert _with_token(second, token["token"]).status_code == 200

    revoke = httpx.delete(
        f"{second.url}/api/v1/tokens/{token['id']}",
        headers={"Authorization": f"Bearer {admin_tokens['access']}"},
        timeout=10,
    )
    assert revoke.status_code == 204

    refused = _with_token(first, token["token"])
    assert refused.status_code == 401
    assert refused.json()["code"] == "TOKEN_REVOKED"


def test_token_narrowed_through_one_process_is_narrowed_in_the_other(server_processes):
    org = OrganizationFactory(slug="twoproc-narrow")
    admin = MembershipFactory(organization=org, role="admin", user__username="judy").user
    first, second = server_processes(count=2)
    access = _login(first, admin.username)["access"]
    token = _create_token(first, access, ["token:manage", "image:read"])
    assert _with_token(second, token["token"]).status_code == 200

    narrow = httpx.patch(
        f"{first.url}/api/v1/tokens/{token['id']}",
        json={"scopes": ["image:read"]},
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )
    assert narrow.status_code == 200

    assert _with_token(second, token["token"]).json()["code"] == "PERMISSION_DENIED"
    assert _with_token(second, token["token"], "/api/v1/orgs/current").status_code == 200


def _self_rotate(server, secret: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/tokens/self/rotate",
        json={"grace_seconds": 3600},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )


def test_a_rotation_family_revoked_through_one_process_is_refused_by_the_other(server_processes):
    from accounts.services.token_rotations import CONCURRENT_ROTATION_SECONDS

    org = OrganizationFactory(slug="twoproc-family")
    admin = MembershipFactory(organization=org, role="admin", user__username="kate").user
    first, second = server_processes(count=2)
    access = _login(first, admin.username)["access"]
    original = _create_token(first, access, ["token:self_rotate", "image:read"])["token"]
    rotated = _self_rotate(first, original)
    assert rotated.status_code == 201, rotated.text
    successor = rotated.json()["token"]
    # Both processes serve both tokens (the original within its grace period).
    for server in (first, second):
        for secret in (original, successor):
            assert _with_token(server, secret, "/api/v1/tokens/self").status_code == 200

    # Later, a copy of the original is presented to rotate through the second process...
    time.sleep(CONCURRENT_ROTATION_SECONDS + 0.5)
    reuse = _self_rotate(second, original)
    assert reuse.status_code == 401, reuse.text
    assert reuse.json()["code"] == "TOKEN_REVOKED"

    # ...and the first process refuses every token of the family on its next request.
    for secret in (original, successor):
        refused = _with_token(first, secret, "/api/v1/tokens/self")
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "TOKEN_REVOKED"
