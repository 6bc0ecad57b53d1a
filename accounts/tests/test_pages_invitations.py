"""Invitations in the dashboard: an admin invites and revokes on the members page, the
invited person accepts or declines on their invitations page.

Every test goes through django.test.Client signed in at /login/ with CSRF checks
enforced, and asserts the page and the database after.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Invitation, Membership
from accounts.services.invitations import invitation_create
from accounts.tests.factories import GroupFactory
from audit.models import AuditEvent
from config.testing.http import browser, html, post, signed_in_browser

pytestmark = pytest.mark.django_db


def _events(org: Any, action: str) -> Any:
    return AuditEvent.objects.filter(organization_id=org.id, action=action)


def _invitation(org: Any, email: str = "mallory@example.com", role: str = "user") -> Invitation:
    GroupFactory(organization=org, name="editors", permissions=["image:upload"])
    return invitation_create(organization=org, email=email, role=role, groups=["editors"])


# --- The members page: invite, list, revoke --------------------------------------------


@pytest.mark.usefixtures("outsider")
@pytest.mark.parametrize("email", ["mallory@example.com", "nobody@example.com"])
def test_an_admin_invites_an_address_and_sees_the_same_answer_for_any_address(
    org, admin, email, django_capture_on_commit_callbacks
):
    GroupFactory(organization=org, name="editors")
    client = signed_in_browser("alice")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client, "/members/invite/", {"email": email, "role": "user", "groups": ["editors"]}
        )

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    page = html(client.get("/members/"))
    assert f"{email} was invited as user." in page
    assert 'data-status="pending"' in page
    assert "Mallory" not in page  # nothing about the account behind the address
    assert "globex" not in page.lower()
    invitation = Invitation.objects.get(organization=org, email=email)
    assert [g.name for g in invitation.groups.all()] == ["editors"]
    assert not Membership.objects.filter(organization=org, user__email=email).exists()
    assert [m.to for m in mail.outbox] == [[email]]
    assert _events(org, "org.invitation_created").get().actor_display == "alice"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"email": "not-an-address", "role": "user"}, 400, "Email: Enter a valid email address."),
        ({"email": "", "role": "user"}, 400, "Email cannot be empty."),
        (
            {"email": "erin@example.com", "role": "owner"},
            400,
            "Role: &quot;owner&quot; is not a valid choice.",
        ),
        (
            {"email": "erin@example.com", "role": "user", "groups": ["ghosts"]},
            400,
            "No group named ghosts in this organization.",
        ),
        ({"email": "BOB@example.com", "role": "user"}, 409, "bob@example.com is a member of acme"),
    ],
    ids=["bad-email", "blank", "bad-role", "unknown-group", "member-already"],
)
@pytest.mark.usefixtures("member")
def test_inviting_with_bad_input_says_why_and_invites_nobody(org, admin, fields, status, message):
    response = post(signed_in_browser("alice"), "/members/invite/", fields)

    assert response.status_code == status
    page = html(response)
    assert message in page
    assert "Nobody was invited:" in page
    assert not Invitation.objects.exists()
    assert not mail.outbox


@pytest.mark.usefixtures("admin")
def test_a_viewer_can_neither_invite_nor_revoke(org, viewer):
    invitation = _invitation(org)
    client = signed_in_browser("carol")

    invited = post(client, "/members/invite/", {"email": "erin@example.com", "role": "admin"})
    revoked = post(client, f"/members/invitations/{invitation.id}/revoke/")

    assert invited.status_code == revoked.status_code == 403
    assert list(Invitation.objects.values_list("email", "state")) == [
        ("mallory@example.com", "pending")
    ]


def test_an_admin_revokes_a_pending_invitation(org, admin):
    invitation = _invitation(org)
    client = signed_in_browser("alice")
    assert f'action="/members/invitations/{invitation.id}/revoke/"' in html(client.get("/members/"))

    response = post(client, f"/members/invitations/{invitation.id}/revoke/")

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    page = html(client.get("/members/"))
    assert "The invitation of mallory@example.com was revoked." in page
    assert 'data-status="revoked"' in page
    assert f'action="/members/invitations/{invitation.id}/revoke/"' not in page
    assert _events(org, "org.invitation_revoked").get().actor_display == "alice"
    again = post(client, f"/members/invitations/{invitation.id}/revoke/")
    assert again.status_code == 409
    assert "The invitation is revoked already" in html(again)


@pytest.mark.usefixtures("admin")
def test_another_organizations_admin_cannot_see_or_revoke_the_invitation(org, outsider):
    invitation = _invitation(org, email="erin@example.com")
    client = signed_in_browser("mallory")

    own = html(client.get("/members/"))
    assert 'action="/members/invite/"' in own  # they invite to their own organization only
    assert "erin@example.com" not in own
    response = post(client, f"/members/invitations/{invitation.id}/revoke/")

    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.state == "pending"


# --- The invited person's page: accept, decline -----------------------------------------


def test_the_invited_person_accepts_on_their_invitations_page(org, outsider):
    invitation = _invitation(org)
    client = signed_in_browser("mallory")

    page = html(client.get("/invitations/"))
    assert "<strong>Acme</strong>" in page
    assert f'action="/invitations/{invitation.id}/accept/"' in page
    response = post(client, f"/invitations/{invitation.id}/accept/")

    assert response.status_code == 302
    membership = Membership.objects.get(organization=org, user=outsider)
    assert membership.role == "user"
    assert [g.name for g in membership.groups.all()] == ["editors"]
    after = html(client.get("/invitations/"))
    assert "You joined Acme as user." in after
    assert "No open invitations." in after
    assert _events(org, "org.invitation_accepted").get().actor_display == "mallory"
    # The organization switch now offers the organization.
    switched = post(client, "/account/organization/", {"org": "acme"})
    assert switched.status_code == 302


def test_the_invited_person_declines_and_joins_nothing(org, outsider):
    invitation = _invitation(org)
    client = signed_in_browser("mallory")

    response = post(client, f"/invitations/{invitation.id}/decline/")

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "declined"
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
    assert "You declined the invitation to Acme." in html(client.get("/invitations/"))
    assert _events(org, "org.invitation_declined").get().actor_display == "mallory"


@pytest.mark.usefixtures("outsider")
def test_someone_else_sees_no_invitation_and_cannot_answer_it(org, member):
    invitation = _invitation(org)
    client = signed_in_browser("bob")

    page = html(client.get("/invitations/"))
    accepted = post(client, f"/invitations/{invitation.id}/accept/")
    declined = post(client, f"/invitations/{invitation.id}/decline/")

    assert "Acme</strong>" not in page
    assert "No open invitations." in page
    assert accepted.status_code == declined.status_code == 404
    invitation.refresh_from_db()
    assert invitation.state == "pending"


def test_an_expired_invitation_is_not_offered_and_cannot_be_accepted(org, outsider):
    invitation = _invitation(org)
    Invitation.objects.filter(id=invitation.id).update(expires_at=timezone.now())
    client = signed_in_browser("mallory")

    assert "No open invitations." in html(client.get("/invitations/"))
    assert post(client, f"/invitations/{invitation.id}/accept/").status_code == 404
    assert not Membership.objects.filter(organization=org, user=outsider).exists()


def test_accepting_as_a_member_already_says_so(org, outsider):
    invitation = _invitation(org)
    Membership.objects.create(organization=org, user=outsider, role="guest")

    response = post(signed_in_browser("mallory"), f"/invitations/{invitation.id}/accept/")

    assert response.status_code == 409
    assert "mallory is a member of acme already." in html(response)


def test_the_invitations_page_needs_a_signed_in_person(org):
    response = browser().get("/invitations/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Finvitations%2F"


@pytest.mark.usefixtures("admin")
def test_every_member_is_offered_the_invitations_page(org, guest):
    page = html(signed_in_browser("dave").get("/"))

    assert 'href="/invitations/"' in page


# --- Django admin: read, and revoke through the service ---------------------------------


def test_staff_see_invitations_read_only_and_revoke_them_audited(org, staff_browser):
    invitation = _invitation(org)
    url = "/admin/accounts/invitation/"

    listed = staff_browser.get(url)
    detail = staff_browser.get(f"{url}{invitation.id}/change/")
    revoked = staff_browser.post(
        url, {"action": "revoke_invitations", "_selected_action": [str(invitation.id)]}
    )

    assert listed.status_code == 200
    assert "mallory@example.com" in html(listed)
    assert detail.status_code == 200
    assert 'name="email"' not in html(detail)  # nothing to edit
    assert staff_browser.get(f"{url}add/").status_code == 403
    assert revoked.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    event = _events(org, "org.invitation_revoked").get()
    assert event.actor_display == "root"
