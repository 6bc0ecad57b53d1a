"""The permission model: roles, groups, the decision point and the views that enforce it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from accounts.authz.decision_point import decision_check
from accounts.identity.principal import member_view_load, principal_from_view
from accounts.models import Group, Membership
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

ME = "/api/v1/auth/me"
GROUPS = "/api/v1/orgs/current/groups"
PROBLEM = "application/problem+json"

# API.md, "Roles, permissions, groups": the roles that hold each permission.
TABLE: dict[str, set[str]] = {
    "image:read": {"viewer", "user", "admin"},
    "image:upload": {"user", "admin"},
    "image:delete": {"user", "admin"},
    "image:admin": {"admin"},
    "member:read": {"viewer", "user", "admin"},
    "token:manage": {"admin"},
    "audit:read": {"admin"},
    "org:admin": {"admin"},
    "metrics:read": {"admin"},
    "authz:check": {"admin"},
    "webhook:manage": {"admin"},
}
ROLES = ("admin", "user", "viewer", "guest")
# conftest's fixture holding a member of each role in `org`.
ROLE_FIXTURE = {"admin": "admin", "user": "member", "viewer": "viewer", "guest": "guest"}


def _principal(user: Any, org: Any) -> Any:
    view = member_view_load(organization_id=org.id, user_id=user.id)
    assert view["status"] == "ok"
    return principal_from_view(view)


def _denials(org: Any, permission: str) -> Any:
    return AuditEvent.objects.filter(
        action="authz.denied", organization_id=org.id, resource_id=permission
    )


# --- The role x permission matrix ---------------------------------------------------


def test_the_table_covers_every_permission_the_code_knows():
    from accounts.roles import PERMISSIONS

    assert set(PERMISSIONS) == set(TABLE)


@pytest.mark.parametrize("permission", sorted(TABLE))
@pytest.mark.parametrize("role", ROLES)
def test_me_lists_a_permission_exactly_when_the_role_holds_it(request, org, role, permission):
    user = request.getfixturevalue(ROLE_FIXTURE[role])

    response = login_client(user).get(ME)

    assert response.status_code == 200
    body = response.json()
    assert body["role"] == role
    assert body["organization"]["id"] == str(org.id)
    assert (permission in body["permissions"]) == (role in TABLE[permission])


@pytest.mark.parametrize("role", ROLES)
def test_me_lists_no_permission_beyond_the_table(request, role):
    user = request.getfixturevalue(ROLE_FIXTURE[role])

    body = login_client(user).get(ME).json()

    assert body["permissions"] == sorted(p for p, roles in TABLE.items() if role in roles)
    assert body["groups"] == []


@pytest.mark.parametrize("permission", sorted(TABLE))
@pytest.mark.parametrize("role", ROLES)
def test_decision_check_follows_the_role_table(request, org, role, permission):
    user = request.getfixturevalue(ROLE_FIXTURE[role])
    principal = _principal(user, org)

    decision = decision_check(principal=principal, permission=permission, organization_id=org.id)

    expected = role in TABLE[permission]
    assert decision.allowed is expected
    if expected:
        assert decision.reason == f"granted by role {role}"
    else:
        assert "granted by" not in decision.reason
        assert permission in decision.reason


# --- Groups add permissions on top of the role ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_group_grants_its_permission_to_a_viewer_until_they_leave_it(
    org, admin, viewer, admin_client, viewer_client
):
    before = viewer_client.get(ME).json()
    assert "image:upload" not in before["permissions"]

    created = admin_client.post(
        GROUPS,
        {"name": "photographers", "permissions": ["image:upload"], "members": [str(viewer.id)]},
        format="json",
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]

    # The viewer's very next request (their member view was cached) sees the group.
    me = viewer_client.get(ME).json()
    assert me["role"] == "viewer"
    assert me["groups"] == ["photographers"]
    assert "image:upload" in me["permissions"]
    assert "image:delete" not in me["permissions"]

    decision = decision_check(
        principal=_principal(viewer, org), permission="image:upload", organization_id=org.id
    )
    assert decision.allowed is True
    assert decision.reason == "granted by group photographers"
    assert decision.groups == ("photographers",)

    removed = admin_client.patch(f"{GROUPS}/{group_id}", {"members": []}, format="json")
    assert removed.status_code == 200, removed.content
    assert removed.json()["members"] == []
    assert not Group.objects.get(id=group_id).members.exists()

    after = viewer_client.get(ME).json()
    assert after["groups"] == []
    assert "image:upload" not in after["permissions"]
    decision = decision_check(
        principal=_principal(viewer, org), permission="image:upload", organization_id=org.id
    )
    assert decision.allowed is False
    assert decision.groups == ()


def test_a_role_that_already_holds_the_permission_is_named_before_the_group(org, member):
    group = Group.objects.create(organization=org, name="uploaders", permissions=["image:upload"])
    group.members.add(Membership.objects.get(user=member, organization=org))

    decision = decision_check(
        principal=_principal(member, org), permission="image:upload", organization_id=org.id
    )

    assert decision.allowed is True
    assert decision.reason == "granted by role user"
    assert decision.groups == ("uploaders",)


def test_a_group_of_the_viewer_grants_nothing_it_does_not_list(org, viewer):
    group = Group.objects.create(organization=org, name="readers", permissions=["image:read"])
    group.members.add(Membership.objects.get(user=viewer, organization=org))

    decision = decision_check(
        principal=_principal(viewer, org), permission="image:delete", organization_id=org.id
    )

    assert decision.allowed is False
    assert decision.groups == ("readers",)


# --- The decision point's refusals -------------------------------------------------


def test_decision_for_another_organization_is_denied_as_not_a_member(org, other_org, admin):
    decision = decision_check(
        principal=_principal(admin, org), permission="image:read", organization_id=other_org.id
    )

    assert decision.allowed is False
    assert "not a member" in decision.reason
    assert decision.groups == ()


def test_decision_for_another_organization_is_denied_even_for_any_member_views(
    org, other_org, admin
):
    decision = decision_check(
        principal=_principal(admin, org), permission="any", organization_id=other_org.id
    )

    assert decision.allowed is False


@pytest.mark.parametrize("permission", ["image:destroy", "", "ORG:ADMIN", "org:admin "])
def test_an_unknown_permission_is_denied_even_to_an_admin(org, admin, permission):
    decision = decision_check(
        principal=_principal(admin, org), permission=permission, organization_id=org.id
    )

    assert decision.allowed is False


# --- Views enforcing a permission ---------------------------------------------------


@pytest.mark.parametrize("role", ["user", "viewer", "guest"])
def test_a_view_requiring_org_admin_refuses_a_lower_role_and_audits_it(request, org, role):
    user = request.getfixturevalue(ROLE_FIXTURE[role])
    client = login_client(user)

    response = client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert body["detail"] == "Permission denied: org:admin"
    assert not Group.objects.filter(organization=org).exists()
    event = _denials(org, "org:admin").get()
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.organization_id == org.id
    assert event.resource_type == "permission"
    assert event.actor_type == "user"
    assert event.actor_id == str(user.id)
    assert event.details["path"] == GROUPS


def test_repeated_denials_within_a_minute_are_audited_once(
    org, member, member_client, time_machine
):
    # The start of the next minute, so the three calls fall in one minute.
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    time_machine.move_to(start, tick=False)
    for _ in range(3):
        response = member_client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")
        assert_problem(response, status=403, code="PERMISSION_DENIED")

    assert _denials(org, "org:admin").count() == 1
    assert AuditEvent.objects.filter(action="authz.denied").count() == 1


def test_denials_of_different_members_are_audited_separately(org, member, viewer):
    for user in (member, viewer):
        response = login_client(user).post(GROUPS, {"name": "x", "permissions": []}, format="json")
        assert_problem(response, status=403, code="PERMISSION_DENIED")

    assert {e.actor_id for e in _denials(org, "org:admin")} == {str(member.id), str(viewer.id)}


def test_an_allowed_call_records_no_denial(org, admin_client):
    response = admin_client.get(GROUPS)

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="authz.denied").exists()


def test_metrics_are_refused_to_an_admin_holding_metrics_read(admin_client):
    response = admin_client.get("/metrics")

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "/api/v1/orgs/current/metrics" in body["detail"]


@pytest.mark.parametrize("role", ["user", "viewer", "guest"])
def test_metrics_are_refused_to_every_role(request, org, role):
    user = request.getfixturevalue(ROLE_FIXTURE[role])

    response = login_client(user).get("/metrics")

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert _denials(org, "installation:monitor").count() == 1


# --- A method a view does not offer -------------------------------------------------


def test_a_method_a_single_permission_view_does_not_offer_is_405(admin_client):
    response = admin_client.delete("/api/v1/orgs/current")

    assert_problem(response, status=405, code="METHOD_NOT_ALLOWED")
    assert "DELETE" not in response["Allow"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", GROUPS),
        ("delete", "/api/v1/orgs/current/members"),
        ("get", "/api/v1/orgs/current/members/{member}"),
        ("put", "/api/v1/orgs/current/members/{member}"),
    ],
)
def test_a_method_a_per_method_view_does_not_offer_is_405_not_403(
    org, admin_client, member, method, path
):
    response = getattr(admin_client, method)(path.format(member=member.id), {}, format="json")

    assert_problem(response, status=405, code="METHOD_NOT_ALLOWED")
    assert method.upper() not in response["Allow"]
    assert not AuditEvent.objects.filter(action="authz.denied").exists()


def test_a_denial_in_the_next_minute_is_audited_again(org, member, member_client, time_machine):
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    time_machine.move_to(start, tick=False)
    member_client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")
    time_machine.move_to(start + dt.timedelta(seconds=61), tick=False)

    member_client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")

    assert _denials(org, "org:admin").count() == 2
