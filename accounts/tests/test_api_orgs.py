"""The organization API: the current organization, its members and its groups."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Group, Membership, Session
from accounts.services.tokens import token_create
from accounts.tests.factories import GroupFactory, MembershipFactory
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

CURRENT = "/api/v1/orgs/current"
MEMBERS = "/api/v1/orgs/current/members"
GROUPS = "/api/v1/orgs/current/groups"
ME = "/api/v1/auth/me"
PROBLEM = "application/problem+json"

MEMBER_FIELDS = {"user_id", "username", "email", "name", "role", "groups", "joined_at"}
GROUP_FIELDS = {"id", "name", "permissions", "members", "created_at"}
ROLE_FIXTURE = {"admin": "admin", "user": "member", "viewer": "viewer", "guest": "guest"}
NON_ADMINS = ["user", "viewer", "guest"]


def _invalid(response: Any) -> dict[str, Any]:
    """Assert a 400 VALIDATION_ERROR carrying the contract's `errors` list."""
    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert isinstance(body.get("errors"), list), body
    assert body["errors"]
    assert all({"field", "message", "code"} <= set(e) for e in body["errors"])
    return body


def _events(org: Any, action: str) -> Any:
    return AuditEvent.objects.filter(organization_id=org.id, action=action).order_by("seq")


def _membership(org: Any, user: Any) -> Membership | None:
    return Membership.objects.filter(organization=org, user=user).first()


def _client_for(request: Any, role: str) -> Any:
    return login_client(request.getfixturevalue(ROLE_FIXTURE[role]))


def _utc(value: str) -> None:
    assert value.endswith("Z"), value
    datetime.fromisoformat(value)


# --- GET /orgs/current ------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "user", "viewer", "guest"])
def test_every_role_sees_the_current_organization_with_its_tier_limits(request, org, role):
    response = _client_for(request, role).get(CURRENT)

    assert response.status_code == 200
    assert response.json() == {
        "id": str(org.id),
        "name": "Acme",
        "slug": "acme",
        "tier": "pro",
        "limits": {
            "requests_per_minute": 60,
            "max_file_size_bytes": 25_000_000,
            "uploads_per_day": 10_000,
        },
    }


def test_the_outsider_sees_their_own_organization(other_org, outsider_client):
    body = outsider_client.get(CURRENT).json()

    assert body["id"] == str(other_org.id)
    assert body["slug"] == "globex"


def test_current_organization_requires_authentication(api_client, org):
    response = api_client.get(CURRENT)

    assert_problem(response, status=401, code="NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_current_organization_refuses_a_forged_token(api_client, org):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert_problem(api_client.get(CURRENT), status=401, code="AUTHENTICATION_FAILED")


# --- GET /orgs/current/members -------------------------------------------------------


@pytest.mark.usefixtures("admin", "member", "guest", "outsider")
@pytest.mark.parametrize("role", ["admin", "user", "viewer"])
def test_members_from_viewer_up_list_the_members_sorted_by_username(request, org, viewer, role):
    group = GroupFactory(organization=org, name="editors", permissions=["image:upload"])
    group.members.add(_membership(org, viewer))

    response = _client_for(request, role).get(MEMBERS)

    assert response.status_code == 200
    body = response.json()
    assert [m["username"] for m in body] == ["alice", "bob", "carol", "dave"]
    assert all(set(m) == MEMBER_FIELDS for m in body)
    carol = body[2]
    assert carol["user_id"] == str(viewer.id)
    assert carol["email"] == "carol@example.com"
    assert carol["name"] == "Carol"
    assert carol["role"] == "viewer"
    assert carol["groups"] == ["editors"]
    _utc(carol["joined_at"])
    assert [m["role"] for m in body] == ["admin", "user", "viewer", "guest"]
    assert "mallory" not in {m["username"] for m in body}


@pytest.mark.usefixtures("admin", "member", "viewer", "guest")
def test_the_outsider_lists_only_their_own_organizations_members(outsider_client):
    body = outsider_client.get(MEMBERS).json()

    assert [m["username"] for m in body] == ["mallory"]
    assert not {"alice", "bob", "carol", "dave"} & {m["username"] for m in body}


def test_listing_members_takes_a_bounded_number_of_queries(
    org, admin, admin_client, django_assert_max_num_queries
):
    groups = [GroupFactory(organization=org, name=f"g{i}") for i in range(3)]
    for i in range(9):
        membership = MembershipFactory(organization=org, user__username=f"user{i:02d}")
        membership.groups.set(groups[: (i % 3) + 1])

    with django_assert_max_num_queries(6):
        response = admin_client.get(MEMBERS)

    assert response.status_code == 200
    body = response.json()
    assert len(body) == 10
    assert body[1]["groups"] == ["g0"]
    assert body[3]["groups"] == ["g0", "g1", "g2"]


def test_listing_members_requires_authentication(api_client, org):
    assert_problem(api_client.get(MEMBERS), status=401, code="NOT_AUTHENTICATED")


# Members' names and addresses need `member:read`: guests and tokens without it are refused.


@pytest.mark.usefixtures("admin", "member", "viewer")
def test_a_guest_cannot_list_the_members_or_their_emails(org, guest_client):
    response = guest_client.get(MEMBERS)

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert body["detail"] == "Permission denied: member:read"
    assert "@example.com" not in response.content.decode()
    assert _events(org, "authz.denied").get().resource_id == "member:read"


def _token_client(org: Any, creator: Any, scopes: list[str]) -> APIClient:
    issued = token_create(organization=org, name="ci", scopes=scopes, created_by=creator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


@pytest.mark.usefixtures("member", "viewer")
@pytest.mark.parametrize("scopes", [["image:read"], ["image:read", "image:upload", "audit:read"]])
def test_a_service_token_without_member_read_cannot_list_the_members(org, admin, scopes):
    client = _token_client(org, admin, scopes)
    assert client.get("/api/v1/images").status_code == 200  # the token works

    response = client.get(MEMBERS)

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "@example.com" not in response.content.decode()


@pytest.mark.usefixtures("member")
def test_a_service_token_granted_member_read_lists_the_members(org, admin):
    response = _token_client(org, admin, ["member:read"]).get(MEMBERS)

    assert response.status_code == 200
    assert [m["username"] for m in response.json()] == ["alice", "bob"]


def test_direct_adding_of_an_existing_user_is_gone_and_reveals_nobody(
    org, other_org, admin_client, outsider
):
    for reference in ("mallory", "mallory@example.com", str(outsider.id), "nobody@example.com"):
        response = admin_client.post(MEMBERS, {"user": reference, "role": "guest"}, format="json")

        assert_problem(response, status=405, code="METHOD_NOT_ALLOWED")
        assert "mallory" not in response.content.decode()
        assert str(outsider.id) not in response.content.decode()
    assert _membership(org, outsider) is None
    assert not _events(org, "org.member_added").exists()


# --- PATCH /orgs/current/members/{user_id} ------------------------------------------


def _member_url(user: Any) -> str:
    return f"{MEMBERS}/{user.id}"


def test_an_admin_changes_a_members_role_and_it_is_audited(org, admin, member, admin_client):
    response = admin_client.patch(_member_url(member), {"role": "viewer"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_id"] == str(member.id)
    assert body["role"] == "viewer"
    assert _membership(org, member).role == "viewer"
    event = _events(org, "org.member_role_changed").get()
    assert event.outcome == "success"
    assert event.resource_id == str(member.id)
    assert event.actor_id == str(admin.id)
    assert event.details["role"] == {"from": "user", "to": "viewer"}


@pytest.mark.django_db(transaction=True)
def test_a_role_change_takes_effect_on_the_members_next_request(org, member, admin_client):
    member_client = login_client(member)
    assert "image:upload" in member_client.get(ME).json()["permissions"]

    response = admin_client.patch(_member_url(member), {"role": "viewer"}, format="json")
    assert response.status_code == 200

    me = member_client.get(ME).json()
    assert me["role"] == "viewer"
    assert "image:upload" not in me["permissions"]
    assert (
        member_client.post(GROUPS, {"name": "x", "permissions": []}, format="json").status_code
        == 403
    )


def test_setting_the_same_role_changes_nothing_and_audits_nothing(org, member, admin_client):
    response = admin_client.patch(_member_url(member), {"role": "user"}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "user"
    assert not _events(org, "org.member_role_changed").exists()


def test_an_admin_changes_a_members_groups_and_it_is_audited(org, member, admin_client):
    GroupFactory(organization=org, name="editors")
    GroupFactory(organization=org, name="auditors")

    response = admin_client.patch(
        _member_url(member), {"groups": ["editors", "auditors"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["groups"] == ["auditors", "editors"]
    assert response.json()["role"] == "user"
    membership = _membership(org, member)
    assert sorted(membership.groups.values_list("name", flat=True)) == ["auditors", "editors"]
    event = _events(org, "org.group_changed").get()
    assert event.resource_id == str(member.id)
    assert event.details["groups"] == {"from": [], "to": ["auditors", "editors"]}
    assert not _events(org, "org.member_role_changed").exists()

    cleared = admin_client.patch(_member_url(member), {"groups": []}, format="json")
    assert cleared.status_code == 200
    assert cleared.json()["groups"] == []
    assert not membership.groups.exists()


def test_changing_groups_to_an_unknown_one_changes_nothing(org, member, admin_client):
    editors = GroupFactory(organization=org, name="editors")
    editors.members.add(_membership(org, member))

    response = admin_client.patch(
        _member_url(member), {"role": "viewer", "groups": ["ghosts"]}, format="json"
    )

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    membership = _membership(org, member)
    assert membership.role == "user"
    assert list(membership.groups.values_list("name", flat=True)) == ["editors"]
    assert not _events(org, "org.member_role_changed").exists()


@pytest.mark.parametrize(
    "payload",
    [{}, [], {"role": "owner"}, {"role": None}, {"groups": "editors"}, {"groups": [""]}],
)
def test_patching_a_member_with_bad_input_is_a_validation_error(org, member, admin_client, payload):
    response = admin_client.patch(_member_url(member), payload, format="json")

    _invalid(response)
    assert _membership(org, member).role == "user"


def test_patching_a_member_of_another_organization_is_not_found(
    org, other_org, admin_client, outsider
):
    response = admin_client.patch(_member_url(outsider), {"role": "guest"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert _membership(other_org, outsider).role == "admin"
    assert _membership(org, outsider) is None


def test_the_outsider_cannot_patch_a_member_of_org(org, member, outsider_client):
    response = outsider_client.patch(_member_url(member), {"role": "admin"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert _membership(org, member).role == "user"


def test_patching_an_unknown_user_id_is_not_found(org, admin_client):
    response = admin_client.patch(f"{MEMBERS}/{uuid.uuid4()}", {"role": "user"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")


@pytest.mark.parametrize("role", NON_ADMINS)
def test_a_non_admin_cannot_change_roles(request, org, member, viewer, role):
    target = viewer if role != "viewer" else member
    before = _membership(org, target).role

    response = _client_for(request, role).patch(
        _member_url(target), {"role": "admin"}, format="json"
    )

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert _membership(org, target).role == before


def test_a_member_cannot_promote_themselves(org, member, member_client):
    response = member_client.patch(_member_url(member), {"role": "admin"}, format="json")

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert _membership(org, member).role == "user"


def test_demoting_the_last_admin_is_a_conflict(org, admin, member, admin_client):
    response = admin_client.patch(_member_url(admin), {"role": "user"}, format="json")

    body = assert_problem(response, status=409, code="CONFLICT")
    assert "promote another" in body["detail"]
    assert "admin" in body["detail"]
    assert _membership(org, admin).role == "admin"
    assert not _events(org, "org.member_role_changed").exists()


def test_with_two_admins_one_can_be_demoted(org, admin, member, admin_client):
    admin_client.patch(_member_url(member), {"role": "admin"}, format="json")

    response = admin_client.patch(_member_url(admin), {"role": "viewer"}, format="json")

    assert response.status_code == 200, response.content
    assert _membership(org, admin).role == "viewer"
    assert _membership(org, member).role == "admin"
    changes = [e.details["role"] for e in _events(org, "org.member_role_changed")]
    assert changes == [{"from": "user", "to": "admin"}, {"from": "admin", "to": "viewer"}]


def test_an_admin_of_another_organization_does_not_count_as_an_admin(
    org, admin, outsider, admin_client
):
    response = admin_client.patch(_member_url(admin), {"role": "guest"}, format="json")

    assert_problem(response, status=409, code="CONFLICT")
    assert _membership(org, admin).role == "admin"


@pytest.fixture
def disabled_admin(org: Any) -> Any:
    from accounts.services.organizations import user_deactivate

    user = MembershipFactory(organization=org, role="admin", user__username="zed").user
    user_deactivate(user=user)
    user.refresh_from_db()
    assert not user.is_active
    return user


def test_a_deactivated_admin_does_not_count_when_demoting_the_last_active_admin(
    org, admin, disabled_admin, admin_client
):
    response = admin_client.patch(_member_url(admin), {"role": "user"}, format="json")

    assert_problem(response, status=409, code="CONFLICT")
    assert _membership(org, admin).role == "admin"


def test_a_deactivated_admin_does_not_count_when_removing_the_last_active_admin(
    org, admin, disabled_admin, admin_client
):
    response = admin_client.delete(_member_url(admin))

    assert_problem(response, status=409, code="CONFLICT")
    assert _membership(org, admin) is not None


# --- DELETE /orgs/current/members/{user_id} -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_removing_a_member_revokes_their_sessions_in_that_org_at_once(
    org, other_org, admin, member, admin_client
):
    MembershipFactory(organization=other_org, user=member, role="user")
    member_client = login_client(member, org)
    elsewhere = login_client(member, other_org)
    assert member_client.get(ME).status_code == 200  # their principal is now cached
    session_id = member_client.sign_in.session.id

    response = admin_client.delete(_member_url(member))

    assert response.status_code == 204
    assert response.content == b""
    assert _membership(org, member) is None
    session = Session.objects.get(id=session_id)
    assert session.revoked_at is not None
    assert session.revoked_reason == "member_removed"
    event = _events(org, "org.member_removed").get()
    assert event.outcome == "success"
    assert event.resource_id == str(member.id)
    assert event.actor_id == str(admin.id)
    assert event.details["username"] == "bob"

    assert_problem(member_client.get(ME), status=401, code="TOKEN_REVOKED")
    # Their session in another organization is theirs to keep.
    assert Session.objects.get(id=elsewhere.sign_in.session.id).revoked_at is None
    assert elsewhere.get(ME).status_code == 200


def test_removing_a_member_drops_them_from_the_organizations_groups(org, member, admin_client):
    editors = GroupFactory(organization=org, name="editors")
    editors.members.add(_membership(org, member))

    assert admin_client.delete(_member_url(member)).status_code == 204

    assert not editors.members.exists()
    assert Group.objects.filter(id=editors.id).exists()


def test_removing_the_last_admin_is_a_conflict(org, admin, admin_client):
    response = admin_client.delete(_member_url(admin))

    body = assert_problem(response, status=409, code="CONFLICT")
    assert "promote another" in body["detail"]
    assert _membership(org, admin) is not None
    assert Session.objects.filter(user=admin, revoked_at__isnull=False).count() == 0
    assert not _events(org, "org.member_removed").exists()


def test_with_two_admins_one_can_be_removed(org, admin, member, admin_client):
    Membership.objects.filter(organization=org, user=member).update(role="admin")

    assert admin_client.delete(_member_url(member)).status_code == 204

    assert _membership(org, member) is None


def test_removing_a_member_of_another_organization_is_not_found(
    org, other_org, admin_client, outsider
):
    response = admin_client.delete(_member_url(outsider))

    assert_problem(response, status=404, code="NOT_FOUND")
    assert _membership(other_org, outsider) is not None
    assert not _events(other_org, "org.member_removed").exists()


def test_the_outsider_cannot_remove_a_member_of_org(org, member, outsider_client):
    assert_problem(outsider_client.delete(_member_url(member)), status=404, code="NOT_FOUND")

    assert _membership(org, member) is not None


@pytest.mark.usefixtures("admin")
@pytest.mark.parametrize("role", NON_ADMINS)
def test_a_non_admin_cannot_remove_members(request, org, member, viewer, role):
    target = viewer if role != "viewer" else member

    response = _client_for(request, role).delete(_member_url(target))

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert _membership(org, target) is not None
    assert not _events(org, "org.member_removed").exists()


# --- Groups ---------------------------------------------------------------------------


def _group_url(group_id: Any) -> str:
    return f"{GROUPS}/{group_id}"


def test_an_admin_lists_the_groups_with_permissions_and_members(
    org, other_org, member, viewer, admin_client
):
    editors = GroupFactory(organization=org, name="editors", permissions=["image:upload"])
    editors.members.add(_membership(org, member), _membership(org, viewer))
    GroupFactory(organization=org, name="auditors", permissions=["audit:read", "image:read"])
    GroupFactory(organization=other_org, name="globex-only")

    response = admin_client.get(GROUPS)

    assert response.status_code == 200
    body = response.json()
    assert [g["name"] for g in body] == ["auditors", "editors"]
    assert all(set(g) == GROUP_FIELDS for g in body)
    assert body[1]["id"] == str(editors.id)
    assert body[1]["permissions"] == ["image:upload"]
    assert body[1]["members"] == sorted([str(member.id), str(viewer.id)])
    assert body[0]["members"] == []
    _utc(body[0]["created_at"])


@pytest.mark.parametrize("role", NON_ADMINS)
def test_a_non_admin_cannot_list_groups(request, org, role):
    GroupFactory(organization=org, name="editors")

    body = assert_problem(
        _client_for(request, role).get(GROUPS), status=403, code="PERMISSION_DENIED"
    )

    assert body["detail"] == "Permission denied: org:admin"


def test_an_admin_creates_a_group_with_permissions_and_members(
    org, admin, member, viewer, admin_client
):
    response = admin_client.post(
        GROUPS,
        {
            "name": "photo.team_1",
            "permissions": ["image:upload", "image:read", "image:upload"],
            "members": [str(member.id), str(viewer.id)],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == GROUP_FIELDS
    assert body["name"] == "photo.team_1"
    assert body["permissions"] == ["image:read", "image:upload"]
    assert body["members"] == sorted([str(member.id), str(viewer.id)])
    group = Group.objects.get(id=body["id"])
    assert group.organization_id == org.id
    assert sorted(group.permissions) == ["image:read", "image:upload"]
    assert {m.user_id for m in group.members.all()} == {member.id, viewer.id}
    event = _events(org, "org.group_changed").get()
    assert event.outcome == "success"
    assert event.resource_type == "group"
    assert event.resource_id == body["id"]
    assert event.actor_id == str(admin.id)
    assert event.details["change"] == "created"
    assert event.details["name"] == "photo.team_1"


def test_creating_a_group_with_a_taken_name_is_a_conflict(org, admin_client):
    GroupFactory(organization=org, name="editors", permissions=["image:read"])

    response = admin_client.post(
        GROUPS, {"name": "editors", "permissions": ["image:upload"]}, format="json"
    )

    assert_problem(response, status=409, code="CONFLICT")
    assert Group.objects.get(organization=org, name="editors").permissions == ["image:read"]
    assert not _events(org, "org.group_changed").exists()


def test_a_group_name_taken_in_another_organization_is_free(org, other_org, admin_client):
    GroupFactory(organization=other_org, name="editors")

    response = admin_client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")

    assert response.status_code == 201
    assert Group.objects.filter(name="editors").count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "editors", "permissions": ["image:destroy"]}, "permissions[0]"),
        ({"name": "editors", "permissions": "image:read"}, "permissions"),
        ({"name": "editors"}, "permissions"),
        ({"permissions": []}, "name"),
        ({"name": "photo editors", "permissions": []}, "name"),
        ({"name": "x" * 65, "permissions": []}, "name"),
        ({"name": "", "permissions": []}, "name"),
        ({"name": "édition", "permissions": []}, "name"),
        ({"name": "editors", "permissions": [], "members": ["not-a-uuid"]}, "members[0]"),
    ],
)
def test_creating_a_group_with_bad_input_is_a_validation_error(org, admin_client, payload, field):
    response = admin_client.post(GROUPS, payload, format="json")

    body = _invalid(response)
    assert field in {e["field"] for e in body["errors"]}
    assert not Group.objects.filter(organization=org).exists()


def test_a_group_name_of_64_characters_is_accepted(org, admin_client):
    response = admin_client.post(GROUPS, {"name": "x" * 64, "permissions": []}, format="json")

    assert response.status_code == 201


def test_creating_a_group_with_a_member_of_another_organization_is_refused(
    org, admin_client, member, outsider
):
    response = admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": [], "members": [str(member.id), str(outsider.id)]},
        format="json",
    )

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert not Group.objects.filter(organization=org).exists()
    assert not _events(org, "org.group_changed").exists()


def test_creating_a_group_with_an_unknown_user_id_is_refused(org, admin_client):
    response = admin_client.post(
        GROUPS,
        {"name": "editors", "permissions": [], "members": [str(uuid.uuid4())]},
        format="json",
    )

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert not Group.objects.filter(organization=org).exists()


@pytest.mark.parametrize("role", NON_ADMINS)
def test_a_non_admin_cannot_create_groups(request, org, role):
    response = _client_for(request, role).post(
        GROUPS, {"name": "editors", "permissions": ["org:admin"]}, format="json"
    )

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert not Group.objects.filter(organization=org).exists()


def test_the_outsider_creates_groups_in_their_own_organization(org, other_org, outsider_client):
    response = outsider_client.post(GROUPS, {"name": "editors", "permissions": []}, format="json")

    assert response.status_code == 201
    assert Group.objects.get(id=response.json()["id"]).organization_id == other_org.id
    assert not Group.objects.filter(organization=org).exists()


@pytest.fixture
def editors(org: Any, member: Any) -> Group:
    group = GroupFactory(organization=org, name="editors", permissions=["image:read"])
    group.members.add(_membership(org, member))
    return group


def test_an_admin_renames_a_group(org, admin_client, editors):
    response = admin_client.patch(_group_url(editors.id), {"name": "curators"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "curators"
    assert response.json()["permissions"] == ["image:read"]
    editors.refresh_from_db()
    assert editors.name == "curators"
    event = _events(org, "org.group_changed").get()
    assert event.details["change"] == "updated"
    assert event.details["name"] == {"from": "editors", "to": "curators"}


def test_an_admin_changes_a_groups_permissions(org, admin_client, editors):
    response = admin_client.patch(
        _group_url(editors.id), {"permissions": ["image:upload", "image:delete"]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["permissions"] == ["image:delete", "image:upload"]
    editors.refresh_from_db()
    assert sorted(editors.permissions) == ["image:delete", "image:upload"]
    event = _events(org, "org.group_changed").get()
    assert event.details["permissions"] == {
        "from": ["image:read"],
        "to": ["image:delete", "image:upload"],
    }


def test_an_admin_changes_a_groups_members(org, member, viewer, admin_client, editors):
    response = admin_client.patch(
        _group_url(editors.id), {"members": [str(viewer.id)]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["members"] == [str(viewer.id)]
    assert [m.user_id for m in editors.members.all()] == [viewer.id]
    event = _events(org, "org.group_changed").get()
    assert event.details["members"] == {"from": [str(member.id)], "to": [str(viewer.id)]}


def test_renaming_a_group_to_a_taken_name_is_a_conflict(org, admin_client, editors):
    GroupFactory(organization=org, name="auditors")

    response = admin_client.patch(_group_url(editors.id), {"name": "auditors"}, format="json")

    assert_problem(response, status=409, code="CONFLICT")
    editors.refresh_from_db()
    assert editors.name == "editors"


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "two words"},
        {"name": "y" * 65},
        {"permissions": ["image:destroy"]},
        {"members": ["not-a-uuid"]},
    ],
)
def test_patching_a_group_with_bad_input_is_a_validation_error(org, admin_client, editors, payload):
    response = admin_client.patch(_group_url(editors.id), payload, format="json")

    _invalid(response)
    editors.refresh_from_db()
    assert editors.name == "editors"
    assert editors.permissions == ["image:read"]


def test_patching_a_group_with_a_member_of_another_organization_is_refused(
    org, member, admin_client, editors, outsider
):
    response = admin_client.patch(
        _group_url(editors.id), {"members": [str(outsider.id)]}, format="json"
    )

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [m.user_id for m in editors.members.all()] == [member.id]


def test_patching_a_group_of_another_organization_is_not_found(org, other_org, admin_client):
    theirs = GroupFactory(organization=other_org, name="globex-only", permissions=[])

    response = admin_client.patch(_group_url(theirs.id), {"name": "mine"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    theirs.refresh_from_db()
    assert theirs.name == "globex-only"


def test_the_outsider_cannot_patch_or_delete_a_group_of_org(org, outsider_client, editors):
    assert_problem(
        outsider_client.patch(
            _group_url(editors.id), {"permissions": ["org:admin"]}, format="json"
        ),
        status=404,
        code="NOT_FOUND",
    )
    assert_problem(outsider_client.delete(_group_url(editors.id)), status=404, code="NOT_FOUND")

    editors.refresh_from_db()
    assert editors.permissions == ["image:read"]


@pytest.mark.parametrize("role", NON_ADMINS)
def test_a_non_admin_cannot_patch_or_delete_groups(request, org, role, editors):
    client = _client_for(request, role)

    assert_problem(
        client.patch(_group_url(editors.id), {"permissions": ["org:admin"]}, format="json"),
        status=403,
        code="PERMISSION_DENIED",
    )
    assert_problem(client.delete(_group_url(editors.id)), status=403, code="PERMISSION_DENIED")

    editors.refresh_from_db()
    assert editors.permissions == ["image:read"]


def test_deleting_an_unknown_group_is_not_found(org, admin_client):
    assert_problem(admin_client.delete(_group_url(uuid.uuid4())), status=404, code="NOT_FOUND")


@pytest.mark.django_db(transaction=True)
def test_deleting_a_group_takes_its_permissions_away_on_the_next_request(
    org, admin, viewer, admin_client
):
    viewer_client = login_client(viewer)
    group = admin_client.post(
        GROUPS,
        {"name": "uploaders", "permissions": ["image:upload"], "members": [str(viewer.id)]},
        format="json",
    ).json()
    assert "image:upload" in viewer_client.get(ME).json()["permissions"]

    response = admin_client.delete(_group_url(group["id"]))

    assert response.status_code == 204
    assert not Group.objects.filter(id=group["id"]).exists()
    assert _membership(org, viewer) is not None
    event = _events(org, "org.group_changed").filter(details__change="deleted").get()
    assert event.resource_id == group["id"]
    me = viewer_client.get(ME).json()
    assert me["groups"] == []
    assert "image:upload" not in me["permissions"]
    assert me["permissions"] == ["image:read", "member:read"]


def test_deleting_a_group_of_another_organization_is_not_found(org, other_org, admin_client):
    theirs = GroupFactory(organization=other_org, name="globex-only")

    assert_problem(admin_client.delete(_group_url(theirs.id)), status=404, code="NOT_FOUND")

    assert Group.objects.filter(id=theirs.id).exists()


# --- Every 400 VALIDATION_ERROR carries `errors` (API.md, "Errors") --------------------


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("patch", "member", {"groups": ["ghosts"]}),
        ("post", GROUPS, {"name": "curators", "permissions": [], "members": ["outsider"]}),
        ("patch", "group", {"members": ["outsider"]}),
    ],
    ids=[
        "patch-member-unknown-group",
        "create-group-foreign-member",
        "patch-group-foreign-member",
    ],
)
def test_a_validation_error_found_by_the_service_layer_lists_its_errors(
    request, admin_client, method, path, payload
):
    member, editors = request.getfixturevalue("member"), request.getfixturevalue("editors")
    url = {"member": _member_url(member), "group": _group_url(editors.id)}.get(path, path)
    if payload.get("members") == ["outsider"]:
        payload = {**payload, "members": [str(request.getfixturevalue("outsider").id)]}

    response = getattr(admin_client, method)(url, payload, format="json")

    body = _invalid(response)
    assert body["errors"][0]["field"] in {"user", "groups", "members"}
