"""Django admin actions go through the services: audited, and effective on the next request."""

import pytest
from django.test import Client

from accounts.models import Membership, Session
from audit.models import AuditEvent
from config.testing.http import login_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_pages_need_a_signed_in_staff_member(staff_browser):
    assert Client().get("/admin/").status_code == 302
    assert staff_browser.get("/admin/").status_code == 200
    assert staff_browser.get("/admin/accounts/session/").status_code == 200
    assert staff_browser.get("/admin/audit/auditevent/").status_code == 200


def test_deactivating_a_user_in_admin_ends_their_sessions(staff_browser, member):
    api = login_client(member)
    assert api.get("/api/v1/auth/me").status_code == 200

    response = staff_browser.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [str(member.pk)]},
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.is_active is False
    assert api.get("/api/v1/auth/me").status_code == 401
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.actor_display == "root"


def test_revoking_a_session_in_admin_refuses_its_token(staff_browser, member):
    api = login_client(member)
    session = Session.objects.get(id=api.sign_in.session.id)

    staff_browser.post(
        "/admin/accounts/session/",
        {"action": "revoke_sessions", "_selected_action": [str(session.pk)]},
    )

    assert api.get("/api/v1/auth/me").json()["code"] == "TOKEN_REVOKED"


def test_the_last_admin_cannot_be_removed_in_admin(staff_browser, admin, org):
    staff_membership = Membership.objects.get(user__username="root")
    staff_browser.post(
        "/admin/accounts/membership/",
        {"action": "remove_members", "_selected_action": [str(staff_membership.pk)]},
    )
    membership = Membership.objects.get(user=admin)

    staff_browser.post(
        "/admin/accounts/membership/",
        {"action": "remove_members", "_selected_action": [str(membership.pk)]},
        follow=True,
    )

    assert Membership.objects.filter(pk=membership.pk).exists()


def test_audit_events_cannot_be_changed_in_admin(staff_browser):
    event = AuditEvent.objects.first()
    assert event is not None
    assert staff_browser.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    page = staff_browser.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_a_profile_changed_in_admin_is_answered_on_the_next_request(staff_browser, member):
    api = login_client(member)
    assert api.get("/api/v1/auth/me").json()["email"] == member.email  # now cached

    membership = Membership.objects.get(user=member)
    response = staff_browser.post(
        f"/admin/accounts/user/{member.pk}/change/",
        {
            "username": member.username,
            "name": "Renamed Person",
            "email": "renamed@example.com",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": str(membership.pk),
            "memberships-0-user": str(member.pk),
        },
    )

    assert response.status_code == 302
    me = api.get("/api/v1/auth/me").json()
    assert (me["name"], me["email"]) == ("Renamed Person", "renamed@example.com")
