"""Sessions behind the tokens: refresh and reuse detection, logout, /me, listing and revoking
sessions, switching organization, and membership changes taking effect on the next request.

Revocation reaches the principal cache after the transaction commits, as in production,
so these tests run with real commits (transaction=True).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient

from accounts.models import Session
from accounts.services.organizations import member_remove, user_deactivate
from accounts.tests.factories import PASSWORD, GroupFactory, MembershipFactory
from audit.models import AuditEvent
from config.testing.http import assert_problem

TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/token/refresh"
LOGOUT_URL = "/api/v1/auth/logout"
ME_URL = "/api/v1/auth/me"
SESSIONS_URL = "/api/v1/auth/sessions"
REVOKE_ALL_URL = "/api/v1/auth/sessions/revoke-all"
SWITCH_URL = "/api/v1/auth/switch-org"
ORG_URL = "/api/v1/orgs/current"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

ALL_PERMISSIONS = [
    "audit:read",
    "authz:check",
    "image:admin",
    "image:delete",
    "image:read",
    "image:upload",
    "member:read",
    "metrics:read",
    "org:admin",
    "token:manage",
    "webhook:manage",
]
USER_PERMISSIONS = ["image:delete", "image:read", "image:upload", "member:read"]

pytestmark = pytest.mark.django_db(transaction=True)


def obtain(username: str, *, org: str | None = None, **extra: Any) -> dict[str, Any]:
    """Sign in through the API and return the token pair."""
    body = {"username": username, "password": PASSWORD}
    if org:
        body["org"] = org
    response = APIClient().post(TOKEN_URL, body, format="json", **extra)
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str) -> Any:
    return APIClient().post(REFRESH_URL, {"refresh": token}, format="json")


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- Refresh ---------------------------------------------------------------------


def test_refresh_returns_a_new_pair_for_the_same_session(org, member):
    first = obtain("bob")

    response = refresh(first["refresh"])

    assert response.status_code == 200, response.content
    second = response.json()
    assert second["token_type"] == "Bearer"
    assert second["expires_in"] == 900
    assert second["session_id"] == first["session_id"]
    assert second["access"] != first["access"]
    assert second["refresh"] != first["refresh"]
    assert bearer(second["access"]).get(ME_URL).status_code == 200
    session = Session.objects.get(id=first["session_id"])
    assert session.refresh_count == 1
    assert session.refresh_jti == claims_of(second["refresh"])["jti"]
    event = AuditEvent.objects.get(action="auth.token_refreshed")
    assert event.outcome == "success"
    assert event.organization_id == org.id
    assert event.actor_id == str(member.id)
    assert event.resource_id == first["session_id"]


def test_reusing_a_spent_refresh_token_revokes_the_whole_session(org, member):
    first = obtain("bob")
    second = refresh(first["refresh"]).json()
    assert bearer(second["access"]).get(ME_URL).status_code == 200  # warm the cache

    reused = refresh(first["refresh"])

    assert_problem(reused, status=401, code="TOKEN_REVOKED")
    session = Session.objects.get(id=first["session_id"])
    assert session.revoked_at is not None
    assert session.revoked_reason == "refresh_token_reuse"
    detected = AuditEvent.objects.get(action="auth.refresh_reuse_detected")
    assert detected.outcome == "denied"
    assert detected.organization_id == org.id
    assert detected.actor_id == str(member.id)
    assert detected.resource_id == first["session_id"]
    # The legitimate holder's new tokens die with the session.
    assert_problem(bearer(second["access"]).get(ME_URL), status=401, code="TOKEN_REVOKED")
    assert_problem(refresh(second["refresh"]), status=401, code="TOKEN_REVOKED")
    assert AuditEvent.objects.filter(action="auth.token_refreshed").count() == 1


# --- Logout ----------------------------------------------------------------------


def test_logout_refuses_the_sessions_access_and_refresh_tokens(org, member):
    pair = obtain("bob")
    client = bearer(pair["access"])
    assert client.get(ME_URL).status_code == 200  # warm the cache

    response = client.post(LOGOUT_URL)

    assert response.status_code == 204
    assert_problem(client.get(ME_URL), status=401, code="TOKEN_REVOKED")
    assert_problem(refresh(pair["refresh"]), status=401, code="TOKEN_REVOKED")
    session = Session.objects.get(id=pair["session_id"])
    assert session.revoked_at is not None
    assert session.revoked_reason == "logout"
    event = AuditEvent.objects.get(action="auth.logout")
    assert event.outcome == "success"
    assert event.organization_id == org.id
    assert event.actor_id == str(member.id)
    assert event.resource_id == pair["session_id"]


def test_logout_leaves_the_users_other_sessions_alive(org, member):
    mine, other = obtain("bob"), obtain("bob")

    assert bearer(mine["access"]).post(LOGOUT_URL).status_code == 204

    assert bearer(other["access"]).get(ME_URL).status_code == 200
    assert Session.objects.get(id=other["session_id"]).revoked_at is None


# --- /me -------------------------------------------------------------------------


def test_me_describes_the_user_in_the_tokens_organization(org, member):
    response = bearer(obtain("bob")["access"]).get(ME_URL)

    assert response.status_code == 200
    assert response.json() == {
        "id": str(member.id),
        "username": "bob",
        "email": "bob@example.com",
        "name": "Bob",
        "organization": {"id": str(org.id), "name": "Acme", "tier": "pro"},
        "role": "user",
        "groups": [],
        "permissions": USER_PERMISSIONS,
    }


def test_viewer_has_exactly_image_and_member_read(viewer_client):
    body = viewer_client.get(ME_URL).json()

    assert body["role"] == "viewer"
    assert body["permissions"] == ["image:read", "member:read"]


def test_admin_has_all_nine_permissions(admin_client):
    body = admin_client.get(ME_URL).json()

    assert body["role"] == "admin"
    assert body["permissions"] == ALL_PERMISSIONS


def test_guest_has_no_permissions(guest_client):
    body = guest_client.get(ME_URL).json()

    assert body["role"] == "guest"
    assert body["permissions"] == []


def test_me_adds_the_permissions_of_the_members_groups(org, viewer):
    group = GroupFactory(organization=org, name="photographers", permissions=["image:upload"])
    group.members.add(viewer.memberships.get())

    body = bearer(obtain("carol")["access"]).get(ME_URL).json()

    assert body["groups"] == ["photographers"]
    assert body["permissions"] == ["image:read", "image:upload", "member:read"]


def test_me_without_credentials_is_not_authenticated(api_client):
    response = api_client.get(ME_URL)

    assert_problem(response, status=401, code="NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- Listing sessions ------------------------------------------------------------

SESSION_FIELDS = {
    "id",
    "kind",
    "organization",
    "created_at",
    "last_activity",
    "ip",
    "user_agent",
    "device",
    "current",
}


def test_sessions_lists_the_users_live_sessions_and_marks_the_current_one(org, member, admin):
    laptop = obtain("bob", REMOTE_ADDR="198.51.100.1", HTTP_USER_AGENT="curl/8.5.0")
    phone = obtain("bob", REMOTE_ADDR="198.51.100.2", HTTP_USER_AGENT="httpie/3.2")
    ended = obtain("bob")
    assert bearer(ended["access"]).post(LOGOUT_URL).status_code == 204
    obtain("alice")

    response = bearer(phone["access"]).get(SESSIONS_URL)

    assert response.status_code == 200
    sessions = {item["id"]: item for item in response.json()}
    assert set(sessions) == {laptop["session_id"], phone["session_id"]}
    assert all(set(item) == SESSION_FIELDS for item in sessions.values())
    assert [s["id"] for s in sessions.values() if s["current"]] == [phone["session_id"]]
    current = sessions[phone["session_id"]]
    assert current["kind"] == "api"
    assert current["organization"] == "acme"
    assert current["ip"] == "198.51.100.2"
    assert current["user_agent"] == "httpie/3.2"
    assert sessions[laptop["session_id"]]["device"] == "curl 8"
    assert current["created_at"].endswith("Z")
    assert current["last_activity"].endswith("Z")


# --- Revoking one session ----------------------------------------------------------


def test_deleting_one_of_my_sessions_refuses_its_token_next_request(org, member):
    mine, other = obtain("bob"), obtain("bob")
    other_client = bearer(other["access"])
    assert other_client.get(ME_URL).status_code == 200  # warm the cache

    response = bearer(mine["access"]).delete(f"{SESSIONS_URL}/{other['session_id']}")

    assert response.status_code == 204
    assert_problem(other_client.get(ME_URL), status=401, code="TOKEN_REVOKED")
    assert bearer(mine["access"]).get(ME_URL).status_code == 200
    ended = Session.objects.get(id=other["session_id"])
    assert ended.revoked_at is not None
    assert ended.revoked_reason == "revoked_by_user"
    event = AuditEvent.objects.get(action="auth.session_revoked")
    assert event.resource_id == other["session_id"]
    assert event.actor_id == str(member.id)


def test_deleting_another_users_session_is_not_found_and_leaves_it_alive(org, member, admin):
    mine, theirs = obtain("bob"), obtain("alice")

    response = bearer(mine["access"]).delete(f"{SESSIONS_URL}/{theirs['session_id']}")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert Session.objects.get(id=theirs["session_id"]).revoked_at is None
    assert bearer(theirs["access"]).get(ME_URL).status_code == 200
    assert not AuditEvent.objects.filter(action="auth.session_revoked").exists()


def test_deleting_an_unknown_session_is_not_found(member_client):
    response = member_client.delete(f"{SESSIONS_URL}/{uuid.uuid4()}")

    assert_problem(response, status=404, code="NOT_FOUND")


# --- Revoking all sessions -------------------------------------------------------


def test_revoke_all_keeping_current_ends_every_other_session(org, member):
    current, second, third = obtain("bob"), obtain("bob"), obtain("bob")

    response = bearer(current["access"]).post(REVOKE_ALL_URL, {"keep_current": True}, format="json")

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert bearer(current["access"]).get(ME_URL).status_code == 200
    for pair in (second, third):
        assert_problem(bearer(pair["access"]).get(ME_URL), status=401, code="TOKEN_REVOKED")
    live = Session.objects.filter(user=member, revoked_at__isnull=True)
    assert [str(s.id) for s in live] == [current["session_id"]]


def test_revoke_all_without_keeping_current_ends_the_current_session_too(org, member):
    current, other = obtain("bob"), obtain("bob")
    client = bearer(current["access"])
    assert client.get(ME_URL).status_code == 200  # warm the cache

    response = client.post(REVOKE_ALL_URL, {"keep_current": False}, format="json")

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert_problem(client.get(ME_URL), status=401, code="TOKEN_REVOKED")
    assert_problem(bearer(other["access"]).get(ME_URL), status=401, code="TOKEN_REVOKED")
    assert not Session.objects.filter(user=member, revoked_at__isnull=True).exists()


def test_revoke_all_leaves_other_users_sessions_alone(org, member, admin):
    mine, theirs = obtain("bob"), obtain("alice")

    response = bearer(mine["access"]).post(REVOKE_ALL_URL, {"keep_current": False}, format="json")

    assert response.json() == {"revoked": 1}
    assert bearer(theirs["access"]).get(ME_URL).status_code == 200


# --- Switching organization ------------------------------------------------------


@pytest.fixture
def member_of_both(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    return member


def test_switch_org_issues_a_pair_bound_to_the_other_organization(org, other_org, member_of_both):
    pair = obtain("bob")
    old = bearer(pair["access"])
    assert old.get(ME_URL).json()["organization"]["id"] == str(org.id)  # warm the cache

    response = old.post(SWITCH_URL, {"org": "globex"}, format="json")

    assert response.status_code == 200, response.content
    switched = response.json()
    assert switched["session_id"] == pair["session_id"]
    assert claims_of(switched["access"])["org_id"] == str(other_org.id)
    assert claims_of(switched["refresh"])["org_id"] == str(other_org.id)
    me = bearer(switched["access"]).get(ME_URL).json()
    assert me["organization"] == {"id": str(other_org.id), "name": "Globex", "tier": "pro"}
    assert me["role"] == "viewer"
    assert me["permissions"] == ["image:read", "member:read"]
    assert Session.objects.get(id=pair["session_id"]).organization_id == other_org.id
    # Tokens bound to the previous organization stop working at once.
    assert_problem(old.get(ME_URL), status=401, code="TOKEN_REVOKED")


def test_switch_org_to_an_organization_of_which_the_user_is_not_a_member_is_not_found(
    org, other_org, member
):
    pair = obtain("bob")
    client = bearer(pair["access"])

    response = client.post(SWITCH_URL, {"org": other_org.slug}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert Session.objects.get(id=pair["session_id"]).organization_id == org.id
    assert client.get(ME_URL).json()["organization"]["id"] == str(org.id)


def test_switch_org_without_org_is_a_validation_error(member_client):
    response = member_client.post(SWITCH_URL, {}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["org"]


# --- Membership changes take effect on the next request --------------------------


def test_removed_member_token_is_refused_on_the_next_request(admin_client, member):
    client = bearer(obtain("bob")["access"])
    assert client.get(ME_URL).status_code == 200  # warm the cache

    response = admin_client.delete(f"/api/v1/orgs/current/members/{member.id}")

    assert response.status_code == 204
    assert_problem(client.get(ME_URL), status=401, code="TOKEN_REVOKED")
    session = Session.objects.get(user=member)
    assert session.revoked_reason == "member_removed"
    assert AuditEvent.objects.filter(
        action="org.member_removed", resource_id=str(member.id)
    ).exists()


def test_member_removed_by_the_service_loses_access_at_once(org, member):
    client = bearer(obtain("bob")["access"])
    assert client.get(ORG_URL).status_code == 200  # warm the cache

    member_remove(membership=member.memberships.get(organization=org))

    assert_problem(client.get(ORG_URL), status=401, code="TOKEN_REVOKED")


def test_demotion_takes_effect_on_the_demoted_users_next_request(admin_client, member):
    client = bearer(obtain("bob")["access"])
    assert client.get(ME_URL).json()["role"] == "user"  # warm the cache

    response = admin_client.patch(
        f"/api/v1/orgs/current/members/{member.id}", {"role": "viewer"}, format="json"
    )

    assert response.status_code == 200, response.content
    me = client.get(ME_URL)
    assert me.status_code == 200
    assert me.json()["role"] == "viewer"
    assert me.json()["permissions"] == ["image:read", "member:read"]


def test_deactivated_user_token_is_refused_and_sign_in_too(org, member):
    client = bearer(obtain("bob")["access"])
    assert client.get(ME_URL).status_code == 200  # warm the cache

    user_deactivate(user=member)

    response = client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["code"] in ("TOKEN_REVOKED", "AUTHENTICATION_FAILED")
    assert Session.objects.get(user=member).revoked_reason == "user_deactivated"
    again = APIClient().post(TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json")
    assert_problem(again, status=401, code="AUTHENTICATION_FAILED")


# --- Idle sessions and activity --------------------------------------------------


def test_refresh_after_the_idle_limit_revokes_the_session(org, member, settings, time_machine):
    settings.AUTH_SESSION_IDLE_DAYS = 1
    time_machine.move_to(T0, tick=False)
    pair = obtain("bob")
    # Activity within the limit keeps the session, even past a day since sign-in.
    time_machine.move_to(T0 + dt.timedelta(hours=20), tick=False)
    pair = refresh(pair["refresh"]).json()
    time_machine.move_to(T0 + dt.timedelta(hours=43), tick=False)
    response = refresh(pair["refresh"])
    assert response.status_code == 200, response.content
    pair = response.json()

    time_machine.move_to(T0 + dt.timedelta(hours=43 + 25), tick=False)
    response = refresh(pair["refresh"])

    assert_problem(response, status=401, code="TOKEN_REVOKED")
    session = Session.objects.get(id=pair["session_id"])
    assert session.revoked_reason == "idle"
    assert session.revoked_at == T0 + dt.timedelta(hours=43 + 25)
    event = AuditEvent.objects.get(action="auth.session_revoked")
    assert event.details["reason"] == "idle"


def test_last_activity_is_written_at_most_once_a_minute(org, member, time_machine):
    time_machine.move_to(T0, tick=False)
    pair = obtain("bob")
    client = bearer(pair["access"])

    def last_activity() -> dt.datetime:
        return Session.objects.get(id=pair["session_id"]).last_activity

    time_machine.move_to(T0 + dt.timedelta(seconds=10), tick=False)
    assert client.get(ME_URL).status_code == 200
    assert last_activity() == T0
    time_machine.move_to(T0 + dt.timedelta(seconds=59), tick=False)
    assert client.get(ME_URL).status_code == 200
    assert last_activity() == T0

    time_machine.move_to(T0 + dt.timedelta(minutes=2), tick=False)
    assert client.get(ME_URL).status_code == 200
    assert last_activity() == T0 + dt.timedelta(minutes=2)
    time_machine.move_to(T0 + dt.timedelta(minutes=2, seconds=30), tick=False)
    assert client.get(ME_URL).status_code == 200
    assert last_activity() == T0 + dt.timedelta(minutes=2)


# --- Hot path --------------------------------------------------------------------


def test_warm_authentication_adds_no_database_query(member_client, django_assert_num_queries):
    assert member_client.get(ORG_URL).status_code == 200  # warm the cache

    with django_assert_num_queries(1) as captured:
        response = member_client.get(ORG_URL)

    assert response.status_code == 200
    # The one query is the view's own read of the organization.
    assert "accounts_organization" in captured.captured_queries[0]["sql"]
    assert "accounts_session" not in captured.captured_queries[0]["sql"]
