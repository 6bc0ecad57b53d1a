"""Second factors in the dashboard: the sign-in's second step, the Security page, step-up
before sensitive forms, the organization's policy and an admin's reset on the Members page."""

from __future__ import annotations

import re

import pytest

from accounts.models import RecoveryCode, Session, TotpFactor
from accounts.tests.factories import recovery_codes_for, totp_code, totp_factor_for
from audit.models import AuditEvent
from config.testing.http import (
    browser,
    browser_session,
    html,
    post,
    signed_in_browser,
    submit_login,
)

SECRET_ON_PAGE = re.compile(r'<code id="totp-secret">([A-Z2-7]{32})</code>')
CODES_ON_PAGE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def test_password_of_a_person_with_a_factor_leads_to_the_second_step(org, member):
    secret = totp_factor_for(member)
    client = browser()

    response = submit_login(client, "bob", next="/images/")

    assert response.status_code == 302
    assert response["Location"] == "/login/verify/"
    assert client.get("/account/").status_code == 302  # not signed in yet
    assert not Session.objects.exists()
    page = client.get("/login/verify/")
    assert 'autocomplete="one-time-code"' in html(page)
    wrong = post(client, "/login/verify/", {"code": "000000"})
    assert wrong.status_code == 401
    assert "not accepted" in html(wrong)

    done = post(client, "/login/verify/", {"code": totp_code(secret)})

    assert done.status_code == 302
    assert done["Location"] == "/images/"
    assert browser_session(client).mfa_verified_at is not None
    assert client.get("/account/").status_code == 200


def test_second_step_takes_a_recovery_code(org, member):
    totp_factor_for(member)
    codes = recovery_codes_for(member)
    client = browser()
    submit_login(client, "bob")

    response = post(client, "/login/verify/", {"recovery_code": codes[0]})

    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1


def test_second_step_without_a_password_first_goes_back_to_sign_in(db):
    response = browser().get("/login/verify/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"


def test_security_page_enrols_an_app_showing_the_secret_then_recovery_codes(org, member):
    client = signed_in_browser("bob")
    assert "no second factor yet" in html(client.get("/account/security/"))

    begun = post(client, "/account/security/totp/", {"name": "Phone"})

    assert begun.status_code == 200
    secret = SECRET_ON_PAGE.search(html(begun)).group(1)
    assert "<svg" in html(begun)
    factor = TotpFactor.objects.get(user=member)
    wrong = post(client, f"/account/security/totp/{factor.id}/confirm/", {"code": "000000"})
    assert wrong.status_code == 400
    assert secret in html(wrong)
    confirmed = post(
        client, f"/account/security/totp/{factor.id}/confirm/", {"code": totp_code(secret)}
    )
    assert confirmed.status_code == 200
    assert len(CODES_ON_PAGE.findall(html(confirmed))) == 10
    listing = html(client.get("/account/security/"))
    assert "Phone" in listing
    assert secret not in listing


def test_sensitive_form_asks_for_a_recent_second_factor_first(org, admin, settings):
    client = signed_in_browser("alice")
    secret = totp_factor_for(admin)

    response = client.post(
        "/tokens/new/",
        {
            "name": "ci",
            "scopes": ["image:read"],
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
        HTTP_REFERER="http://testserver/tokens/new/",
    )

    assert response.status_code == 302
    assert response["Location"] == "/account/security/verify/?next=%2Ftokens%2Fnew%2F"
    verify = client.get(response["Location"])
    assert 'name="next" value="/tokens/new/"' in html(verify)
    done = post(
        client, "/account/security/verify/", {"code": totp_code(secret), "next": "/tokens/new/"}
    )
    assert done.status_code == 302
    assert done["Location"] == "/tokens/new/"
    assert "auth.mfa_step_up" in AuditEvent.objects.values_list("action", flat=True)


@pytest.mark.django_db(transaction=True)
def test_required_member_without_a_factor_is_sent_to_the_security_page(org, member):
    org.mfa_policy = "everyone"
    org.save()
    client = signed_in_browser("bob")

    response = client.get("/images/")

    assert response.status_code == 302
    assert response["Location"] == "/account/security/"
    page = client.get("/account/security/")
    assert "requires a second factor" in html(page)
    begun = post(client, "/account/security/totp/", {"name": "Phone"})
    secret = SECRET_ON_PAGE.search(html(begun)).group(1)
    factor = TotpFactor.objects.get(user=member)
    post(client, f"/account/security/totp/{factor.id}/confirm/", {"code": totp_code(secret)})
    assert client.get("/images/").status_code == 200


def test_members_page_shows_factors_and_resets_them(org, admin, member):
    totp_factor_for(member)
    client = signed_in_browser("alice")

    page = html(client.get("/members/"))
    assert f'action="/members/{member.id}/mfa-reset/"' in page

    response = post(client, f"/members/{member.id}/mfa-reset/")

    assert response.status_code == 302
    assert not TotpFactor.objects.filter(user=member).exists()
    assert AuditEvent.objects.filter(action="mfa.reset", actor_display="alice").exists()


def test_members_page_sets_the_policy(org, admin):
    client = signed_in_browser("alice")

    response = post(client, "/members/mfa-policy/", {"mfa_policy": "admins"})

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.mfa_policy == "admins"
    refused = post(client, "/members/mfa-policy/", {"mfa_policy": "sometimes"})
    assert refused.status_code == 400


def test_only_admins_reset_factors(org, member, viewer):
    totp_factor_for(viewer)
    client = signed_in_browser("bob")

    response = post(client, f"/members/{viewer.id}/mfa-reset/")

    assert response.status_code == 403
    assert TotpFactor.objects.filter(user=viewer).exists()
