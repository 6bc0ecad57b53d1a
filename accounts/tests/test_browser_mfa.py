"""Second factors in headless Chromium: enrol an authenticator app by reading its secret off
the page, and a passkey through Chromium's virtual authenticator (DevTools WebAuthn domain);
sign out, and sign in again with each."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import Session, TotpFactor, WebAuthnCredential
from accounts.tests.factories import PASSWORD, totp_code
from config.tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")


def _password_step(page: Any, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/login/verify/")


def test_enrol_an_authenticator_app_then_sign_in_with_its_code(new_page, member, screenshots):
    page = new_page()
    sign_in(page, member.username, PASSWORD)
    page.goto("/account/security/")
    page.locator("#totp-name").fill("Phone")
    page.get_by_role("button", name="Add authenticator app").click()

    secret = page.locator("#totp-secret").inner_text().strip()
    expect(page.locator("figure.qr svg")).to_be_visible()
    page.screenshot(path=str(screenshots / "mfa-totp-enrol.png"), full_page=True)
    page.locator("#totp-code").fill(totp_code(secret))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.screenshot(path=str(screenshots / "mfa-recovery-codes.png"))
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("tr[data-factor='Phone']")).to_be_visible()
    page.screenshot(path=str(screenshots / "mfa-security.png"), full_page=True)
    _sign_out(page)

    _password_step(page, member.username)
    page.screenshot(path=str(screenshots / "mfa-second-step.png"), full_page=True)
    assert not Session.objects.filter(user=member, revoked_at__isnull=True).exists()
    # The enrolment's code was used once already: the app's next code signs in.
    page.get_by_label("Code from your authenticator app").fill(totp_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/login/" not in url)

    page.goto("/account/security/")
    expect(page.locator("tr[data-factor='Phone']")).to_be_visible()
    assert TotpFactor.objects.get(user=member).last_used_at is not None
    live = Session.objects.get(user=member, revoked_at__isnull=True)
    assert live.mfa_verified_at is not None


def _virtual_authenticator(page: Any) -> Any:
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools


def test_enrol_a_passkey_then_sign_in_with_it(new_page, member, live_server, settings):
    settings.WEBAUTHN_RP_ID = "localhost"
    # The live server is http://localhost:<port>: a secure context for WebAuthn.
    assert live_server.url.startswith("http://localhost:")
    settings.WEBAUTHN_ORIGINS = [live_server.url]
    page = new_page()
    _virtual_authenticator(page)
    sign_in(page, member.username, PASSWORD)
    page.goto("/account/security/")
    page.locator("#passkey-name").fill("Laptop")
    page.get_by_role("button", name="Add passkey").click()

    expect(page.locator("#recovery-codes li")).to_have_count(10)
    credential = WebAuthnCredential.objects.get(user=member)
    assert credential.name == "Laptop"
    _sign_out(page)

    _password_step(page, member.username)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(lambda url: "/login/" not in url)

    page.goto("/account/security/")
    expect(page.locator("tr[data-factor='Laptop']")).to_be_visible()
    credential.refresh_from_db()
    assert credential.last_used_at is not None
    assert Session.objects.get(user=member, revoked_at__isnull=True).mfa_verified_at is not None
