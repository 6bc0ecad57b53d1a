"""Invitations through the API: an admin invites an address, the person accepts or declines.

Nothing the inviting organization sees depends on whether an account exists for
the address, and nobody joins an organization without accepting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Invitation, Membership, User
from accounts.services.invitations import invitation_create
from accounts.services.tokens import token_create
from accounts.tests.factories import GroupFactory, MembershipFactory, UserFactory
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

INVITATIONS = "/api/v1/orgs/current/invitations"
RECEIVED = "/api/v1/invitations"
SWITCH = "/api/v1/auth/switch-org"
ME = "/api/v1/auth/me"
ADMIN_FIELDS = {
    "id",
    "email",
    "role",
    "groups",
    "status",
    "invited_by",
    "created_at",
    "expires_at",
    "responded_at",
}
RECEIVED_FIELDS = {
    "id",
    "organization",
    "role",
    "groups",
    "status",
    "invited_by",
    "created_at",
    "expires_at",
}
ROLE_FIXTURE = {"user": "member", "viewer": "viewer", "guest": "guest"}

pytestmark = pytest.mark.django_db


def _events(org: Any, action: str) -> Any:
    return AuditEvent.objects.filter(organization_id=org.id, action=action).order_by("seq")


def _invite(client: APIClient, email: str, role: str = "viewer", **extra: Any) -> Any:
    return client.post(INVITATIONS, {"email": email, "role": role, **extra}, format="json")


def _accept(client: APIClient, invitation_id: Any) -> Any:
    return client.post(f"{RECEIVED}/{invitation_id}/accept")


def _decline(client: APIClient, invitation_id: Any) -> Any:
    return client.post(f"{RECEIVED}/{invitation_id}/decline")


def _token_client(org: Any, creator: Any, scopes: list[str]) -> APIClient:
    issued = token_create(organization=org, name="ci", scopes=scopes, created_by=creator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


@pytest.fixture
def invited(org: Any, admin_client: APIClient, outsider: Any) -> dict[str, Any]:
    """An invitation of `org` to the outsider's address (an admin of another organization)."""
    GroupFactory(organization=org, name="editors", permissions=["image:upload"])
    response = _invite(admin_client, "Mallory@Example.com", "user", groups=["editors"])
    assert response.status_code == 202, response.content
    return response.json()


# --- POST /orgs/current/invitations ---------------------------------------------------


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs by address or moment."""
    return {
        key: value
        for key, value in body.items()
        if key not in {"id", "email", "created_at", "expires_at"}
    }


@pytest.mark.usefixtures("outsider", "mailoutbox")
def test_inviting_answers_the_same_whether_or_not_an_account_exists(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    outsider = User.objects.get(username="mallory")
    mailoutbox = mail.outbox
    with django_capture_on_commit_callbacks(execute=True):
        existing = _invite(admin_client, "mallory@example.com")
        unknown = _invite(admin_client, "nobody@example.com")

    assert existing.status_code == unknown.status_code == 202
    assert set(existing.json()) == set(unknown.json()) == ADMIN_FIELDS
    assert _shape(existing.json()) == _shape(unknown.json())
    assert existing.json()["status"] == "pending"
    assert existing.json()["invited_by"] == "alice"
    for text in (existing.content.decode(), unknown.content.decode()):
        assert str(outsider.id) not in text
        assert "Mallory" not in text  # the outsider's name
        assert "globex" not in text.lower()
    # Nobody joined; the invited person's organization learned nothing.
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    assert not AuditEvent.objects.filter(organization_id=other_org.id).exists()
    events = list(_events(org, "org.invitation_created"))
    assert [e.details["email"] for e in events] == ["mallory@example.com", "nobody@example.com"]
    assert events[0].details.keys() == events[1].details.keys()
    assert all(e.actor_id == str(admin.id) for e in events)
    assert sorted(m.to[0] for m in mailoutbox) == ["mallory@example.com", "nobody@example.com"]
    assert "Acme" in mailoutbox[0].subject
    assert "/invitations/" in mailoutbox[0].body


def test_an_invitation_expires_after_the_configured_days(org, admin_client, settings):
    settings.INVITATION_EXPIRY_DAYS = 3

    body = _invite(admin_client, "erin@example.com").json()

    invitation = Invitation.objects.get(id=body["id"])
    assert invitation.expires_at - invitation.created_at == timedelta(days=3)


def test_inviting_a_pending_address_again_renews_its_invitation(
    org, admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _invite(admin_client, "erin@example.com", "viewer").json()
        again = _invite(admin_client, "ERIN@example.com", "user")

    assert again.status_code == 202
    assert again.json()["id"] == first["id"]
    assert again.json()["role"] == "user"
    assert again.json()["expires_at"] >= first["expires_at"]
    assert Invitation.objects.filter(organization=org).count() == 1
    assert _events(org, "org.invitation_renewed").get().details["role"] == "user"
    assert len(mailoutbox) == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-address", "role": "user"}, "email"),
        ({"email": "", "role": "user"}, "email"),
        ({"role": "user"}, "email"),
        ({"email": "erin@example.com", "role": "owner"}, "role"),
        ({"email": "erin@example.com"}, "role"),
        ({"email": "erin@example.com", "role": "user", "groups": "editors"}, "groups"),
        ({"email": "erin@example.com", "role": "user", "groups": ["ghosts"]}, "groups"),
        ({"email": "erin@example.com", "role": "user", "groups": ["globex-only"]}, "groups"),
    ],
)
@pytest.mark.usefixtures("mailoutbox")
def test_inviting_with_bad_input_names_the_field_and_invites_nobody(
    org, other_org, admin_client, payload, field
):
    GroupFactory(organization=other_org, name="globex-only")

    response = admin_client.post(INVITATIONS, payload, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert field in {e["field"] for e in body["errors"]}
    assert not Invitation.objects.exists()
    assert not _events(org, "org.invitation_created").exists()
    assert not mail.outbox


def test_inviting_a_member_of_the_organization_is_a_conflict(org, admin_client, viewer):
    response = _invite(admin_client, "CAROL@example.com")

    assert_problem(response, status=409, code="CONFLICT")
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", sorted(ROLE_FIXTURE))
def test_a_non_admin_cannot_invite(request, org, role):
    client = login_client(request.getfixturevalue(ROLE_FIXTURE[role]))

    body = assert_problem(_invite(client, "erin@example.com"), status=403, code="PERMISSION_DENIED")

    assert body["detail"] == "Permission denied: org:admin"
    assert not Invitation.objects.exists()


def test_inviting_requires_authentication(api_client, org):
    assert_problem(_invite(api_client, "erin@example.com"), status=401, code="NOT_AUTHENTICATED")


# --- GET /orgs/current/invitations, DELETE .../{id} ------------------------------------


def test_an_admin_lists_the_invitations_with_their_status(org, admin_client, invited):
    _invite(admin_client, "nobody@example.com")
    Invitation.objects.filter(email="nobody@example.com").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    body = admin_client.get(INVITATIONS).json()
    pending = admin_client.get(INVITATIONS, {"status": "pending"}).json()
    expired = admin_client.get(INVITATIONS, {"status": "expired"}).json()

    assert body["count"] == 2
    assert {i["email"]: i["status"] for i in body["results"]} == {
        "mallory@example.com": "pending",
        "nobody@example.com": "expired",
    }
    mallory = next(i for i in body["results"] if i["email"] == "mallory@example.com")
    assert mallory["groups"] == ["editors"]
    assert mallory["role"] == "user"
    assert [i["email"] for i in pending["results"]] == ["mallory@example.com"]
    assert [i["email"] for i in expired["results"]] == ["nobody@example.com"]


def test_listing_invitations_takes_a_bounded_number_of_queries(
    org, admin, admin_client, outsider, django_assert_max_num_queries
):
    groups = [GroupFactory(organization=org, name=f"g{i}") for i in range(3)]
    for i in range(9):
        _invite(admin_client, f"person{i}@example.com", groups=[g.name for g in groups[: i % 3]])
    other = GroupFactory(name="elsewhere").organization
    for org_ in (org, other):
        invitation_create(organization=org_, email="mallory@example.com", role="viewer")
    mallory = login_client(outsider)

    with django_assert_max_num_queries(8):
        listed = admin_client.get(INVITATIONS)
    with django_assert_max_num_queries(8):
        received = mallory.get(RECEIVED)

    assert listed.json()["count"] == 10
    assert len(received.json()) == 2


def test_listing_with_an_unknown_status_is_a_validation_error(admin_client):
    response = admin_client.get(INVITATIONS, {"status": "lost"})

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "status"


def test_the_outsider_lists_only_their_own_organizations_invitations(
    invited, outsider_client, other_org
):
    body = outsider_client.get(INVITATIONS).json()

    assert body["count"] == 0


@pytest.mark.parametrize("role", sorted(ROLE_FIXTURE))
def test_a_non_admin_cannot_list_or_revoke_invitations(request, invited, role):
    client = login_client(request.getfixturevalue(ROLE_FIXTURE[role]))

    assert_problem(client.get(INVITATIONS), status=403, code="PERMISSION_DENIED")
    assert_problem(
        client.delete(f"{INVITATIONS}/{invited['id']}"), status=403, code="PERMISSION_DENIED"
    )
    assert Invitation.objects.get(id=invited["id"]).state == "pending"


def test_a_revoked_invitation_can_no_longer_be_accepted(org, admin_client, invited, outsider):
    response = admin_client.delete(f"{INVITATIONS}/{invited['id']}")

    assert response.status_code == 204
    assert Invitation.objects.get(id=invited["id"]).state == "revoked"
    assert _events(org, "org.invitation_revoked").get().resource_id == invited["id"]
    mallory = login_client(outsider)
    assert mallory.get(RECEIVED).json() == []
    assert_problem(_accept(mallory, invited["id"]), status=404, code="NOT_FOUND")
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    again = admin_client.delete(f"{INVITATIONS}/{invited['id']}")
    assert_problem(again, status=409, code="CONFLICT")


def test_revoking_another_organizations_invitation_is_not_found(invited, outsider_client):
    response = outsider_client.delete(f"{INVITATIONS}/{invited['id']}")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert Invitation.objects.get(id=invited["id"]).state == "pending"


# --- The invited person: GET /invitations, POST .../accept, .../decline ----------------


def test_the_invited_person_sees_the_invitation_to_their_address(org, invited, outsider):
    body = login_client(outsider).get(RECEIVED).json()

    assert len(body) == 1
    (seen,) = body
    assert set(seen) == RECEIVED_FIELDS
    assert seen["id"] == invited["id"]
    assert seen["organization"] == {"id": str(org.id), "name": "Acme", "slug": "acme"}
    assert seen["role"] == "user"
    assert seen["groups"] == ["editors"]
    assert seen["status"] == "pending"
    assert seen["invited_by"] == "Alice"


@pytest.mark.usefixtures("invited")
def test_nobody_else_sees_or_answers_the_invitation(org, admin_client, member, invited):
    bob = login_client(member)

    assert bob.get(RECEIVED).json() == []
    assert admin_client.get(RECEIVED).json() == []
    assert_problem(_accept(bob, invited["id"]), status=404, code="NOT_FOUND")
    assert_problem(_decline(bob, invited["id"]), status=404, code="NOT_FOUND")
    assert Invitation.objects.get(id=invited["id"]).state == "pending"


def test_accepting_joins_the_organization_with_the_role_and_groups(org, invited, outsider):
    mallory = login_client(outsider)

    response = _accept(mallory, invited["id"])

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert response.json()["organization"]["slug"] == "acme"
    membership = Membership.objects.get(organization=org, user=outsider)
    assert membership.role == "user"
    assert [g.name for g in membership.groups.all()] == ["editors"]
    accepted = _events(org, "org.invitation_accepted").get()
    assert accepted.actor_id == str(outsider.id)
    assert accepted.details["user_id"] == str(outsider.id)
    assert _events(org, "org.member_added").get().resource_id == str(outsider.id)
    switched = mallory.post(SWITCH, {"org": "acme"}, format="json")
    assert switched.status_code == 200
    assert_problem(_accept(mallory, invited["id"]), status=404, code="NOT_FOUND")


def test_declining_adds_nobody_and_is_audited_in_the_inviting_organization(
    org, other_org, invited, outsider
):
    mallory = login_client(outsider)

    response = _decline(mallory, invited["id"])

    assert response.status_code == 204
    assert Invitation.objects.get(id=invited["id"]).state == "declined"
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    assert _events(org, "org.invitation_declined").get().actor_id == str(outsider.id)
    assert mallory.get(RECEIVED).json() == []
    assert_problem(_accept(mallory, invited["id"]), status=404, code="NOT_FOUND")


def test_an_expired_invitation_can_no_longer_be_answered(org, admin_client, invited, outsider):
    mallory = login_client(outsider)
    # The moment it expires (the access token would not live as long as an invitation).
    Invitation.objects.filter(id=invited["id"]).update(expires_at=timezone.now())

    assert mallory.get(RECEIVED).json() == []
    assert_problem(_accept(mallory, invited["id"]), status=404, code="NOT_FOUND")
    assert_problem(_decline(mallory, invited["id"]), status=404, code="NOT_FOUND")

    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    assert admin_client.get(INVITATIONS).json()["results"][0]["status"] == "expired"
    assert_problem(
        admin_client.delete(f"{INVITATIONS}/{invited['id']}"), status=409, code="CONFLICT"
    )


def test_accepting_as_a_member_already_is_a_conflict_and_changes_nothing(org, invited, outsider):
    MembershipFactory(organization=org, user=outsider, role="guest")

    response = _accept(login_client(outsider), invited["id"])

    assert_problem(response, status=409, code="CONFLICT")
    assert Membership.objects.get(organization=org, user=outsider).role == "guest"
    assert Invitation.objects.get(id=invited["id"]).state == "pending"


def test_answering_an_unknown_invitation_is_not_found(outsider):
    client = login_client(outsider)
    assert client.get(RECEIVED).json() == []

    response = client.post(f"{RECEIVED}/not-a-uuid/accept")

    assert response.status_code == 404
    assert_problem(
        _accept(client, "7b5a3f0e-7a57-4d0e-9b1d-8d7e0f3c2a11"), status=404, code="NOT_FOUND"
    )


def test_a_service_token_has_no_invitations_of_its_own(org, admin, invited):
    client = _token_client(org, admin, ["org:admin"])

    assert_problem(client.get(RECEIVED), status=403, code="PERMISSION_DENIED")
    assert_problem(_accept(client, invited["id"]), status=403, code="PERMISSION_DENIED")
    assert_problem(_decline(client, invited["id"]), status=403, code="PERMISSION_DENIED")
    assert Invitation.objects.get(id=invited["id"]).state == "pending"


def test_a_user_without_an_email_address_has_no_invitations(org, invited):
    nameless = UserFactory(username="nemo", email="")
    MembershipFactory(user=nameless, organization=org, role="viewer")

    assert login_client(nameless).get(RECEIVED).json() == []


def test_the_invitation_endpoints_require_authentication(api_client, invited):
    assert_problem(api_client.get(RECEIVED), status=401, code="NOT_AUTHENTICATED")
    assert_problem(_accept(api_client, invited["id"]), status=401, code="NOT_AUTHENTICATED")


# --- At the same moment (PostgreSQL's row locks and unique index) -----------------------


def _at_once(attempts: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in `attempts` threads released together, each on its own connection."""
    start_together = threading.Barrier(attempts)

    def run(_: int) -> Any:
        try:
            start_together.wait(timeout=10)
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        return list(pool.map(run, range(attempts)))


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and concurrent writers")


@pytest.mark.django_db(transaction=True)
def test_simultaneous_invitations_of_one_address_leave_one_invitation(org, admin):
    _postgresql_only()
    client = login_client(admin)
    assert client.get(INVITATIONS).status_code == 200  # warm: the client's handler is loaded

    responses = _at_once(4, lambda: _invite(client, "erin@example.com"))

    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 202, [response.content for response in responses]
    assert set(statuses) <= {202, 409}
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, status=409, code="CONFLICT")
    assert Invitation.objects.filter(organization=org, email="erin@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_accepts_join_the_organization_once(org, admin, outsider):
    _postgresql_only()
    invited = _invite(login_client(admin), "mallory@example.com").json()
    mallory = login_client(outsider)
    assert mallory.get(RECEIVED).status_code == 200  # warm: the client's handler is loaded

    responses = _at_once(3, lambda: _accept(mallory, invited["id"]))

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1, [response.content for response in responses]
    assert set(statuses) <= {200, 404, 409}
    assert Membership.objects.filter(organization=org, user=outsider).count() == 1
    assert _events(org, "org.member_added").count() == 1
    assert _events(org, "org.invitation_accepted").count() == 1
