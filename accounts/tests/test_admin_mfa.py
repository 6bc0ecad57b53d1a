"""Second factors in Django admin: listed by name on the user, reset through the service."""

import pytest
from django.test import Client

from accounts.models import Membership, TotpFactor
from accounts.tests.factories import PASSWORD, UserFactory, totp_factor_for
from audit.models import AuditEvent
from config.testing.http import login_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_user_page_lists_factors_by_name_without_their_secret(staff_browser, member):
    totp_factor_for(member, name="Work phone")
    factor = TotpFactor.objects.get(user=member)

    page = staff_browser.get(f"/admin/accounts/user/{member.pk}/change/").content.decode()

    assert "Work phone" in page
    assert factor.secret not in page


def test_resetting_second_factors_in_admin_removes_them_and_ends_the_sessions(
    staff_browser, member
):
    api = login_client(member)
    totp_factor_for(member)

    response = staff_browser.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factors", "_selected_action": [str(member.pk)]},
    )

    assert response.status_code == 302
    assert not TotpFactor.objects.filter(user=member).exists()
    assert api.get("/api/v1/auth/me").json()["code"] == "TOKEN_REVOKED"
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.actor_display == "root"
    assert event.details["reason"] == "reset_by_staff"


def test_staff_whose_organization_requires_a_factor_enrol_one_before_admin_opens(org):
    org.mfa_policy = "everyone"
    org.save()
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    Membership.objects.create(user=staff, organization=org, role="admin")
    browser = Client()
    assert browser.post("/login/", {"username": "root", "password": PASSWORD}).status_code == 302

    answer = browser.get("/admin/", follow=True)

    assert answer.redirect_chain[-1][0] == "/account/security/"
    assert browser.get("/admin/accounts/user/").status_code == 302
