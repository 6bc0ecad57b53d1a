"""The dashboard's sign-in: the login form, its Django session tied to a login Session, CSRF.

Everything goes through django.test.Client with CSRF checks enforced, the way
a browser does it: GET the form, send back the csrftoken cookie's value.
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import Session
from accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from audit.models import AuditEvent
from config.testing.http import (
    LOGIN_URL,
    browser,
    browser_session,
    csrf_token,
    login_client,
    signed_in_browser,
    submit_login,
)

pytestmark = pytest.mark.django_db

LOGOUT_URL = "/logout/"
SESSIONS_URL = "/api/v1/auth/sessions"
ME_URL = "/api/v1/auth/me"
API_LOGOUT_URL = "/api/v1/auth/logout"
INVALID = "Invalid username or password."


def django_session_exists(key: str) -> bool:
    engine = import_string(settings.SESSION_ENGINE + ".SessionStore")
    return engine().exists(key)


# --- The form ------------------------------------------------------------------------


def test_home_signed_out_redirects_to_the_login_page(db):
    response = browser().get("/")

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def test_login_page_is_an_html_form_carrying_a_csrf_token(db):
    client = browser()

    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<form method="post" action="/login/">' in html
    assert 'name="username"' in html
    assert 'name="password"' in html
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    assert client.cookies["csrftoken"].value
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_login_page_carries_a_safe_next_into_the_form_and_drops_an_external_one(db):
    safe = browser().get(LOGIN_URL, {"next": "/sessions/"}).content.decode()
    external = browser().get(LOGIN_URL, {"next": "https://evil.example.com/"}).content.decode()

    assert 'name="next" value="/sessions/"' in safe
    assert 'name="next" value="/"' in external
    assert "evil.example.com" not in external


# --- Signing in ------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["bob", "bob@example.com"], ids=["username", "email"])
def test_login_with_right_credentials_opens_a_browser_session_and_redirects_home(
    org, member, login
):
    client = browser()

    response = submit_login(client, login)

    assert response.status_code == 302, response.content
    assert response["Location"] == "/"
    session = browser_session(client)
    assert session.kind == "browser"
    assert session.user_id == member.id
    assert session.organization_id == org.id
    assert session.revoked_at is None
    assert session.django_session_key
    assert session.django_session_key == client.session.session_key
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor_type == "user"
    assert event.details["kind"] == "browser"


def test_home_after_login_shows_the_username_and_organization(org, member):
    client = signed_in_browser()

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>bob</strong>" in html
    assert "<code>acme</code>" in html


def test_login_follows_a_safe_next(org, member):
    client = browser()

    response = submit_login(client, "bob", next="/sessions/")

    assert response.status_code == 302
    assert response["Location"] == "/sessions/"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example.com/", "//evil.example.com/", "http://testserver.evil.example.com/"],
)
def test_login_ignores_an_external_next_and_goes_home(org, member, target):
    client = browser()

    response = submit_login(client, "bob", next=target)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_can_choose_the_organization(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    client = browser()

    response = submit_login(client, "bob", org="globex")

    assert response.status_code == 302
    assert browser_session(client).organization_id == other_org.id
    assert "<code>globex</code>" in client.get("/").content.decode()


def test_login_page_when_already_signed_in_redirects_to_next(org, member):
    client = signed_in_browser()

    response = client.get(LOGIN_URL, {"next": "/sessions/"})

    assert response.status_code == 302
    assert response["Location"] == "/sessions/"


def test_browser_session_is_listed_among_the_users_sessions_in_the_api(org, member):
    client = signed_in_browser()
    session = browser_session(client)
    api = login_client(member)

    response = api.get(SESSIONS_URL)

    assert response.status_code == 200, response.content
    listed = {item["id"]: item for item in response.json()}
    assert str(session.id) in listed
    assert listed[str(session.id)]["kind"] == "browser"
    assert listed[str(session.id)]["current"] is False
    assert listed[str(api.sign_in.session.id)]["current"] is True


# --- Failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["bob", "nobody"], ids=["wrong-password", "unknown-user"])
def test_login_with_bad_credentials_answers_401_with_the_same_message(org, member, login):
    client = browser()

    response = submit_login(client, login, "not-the-password")

    assert response.status_code == 401
    html = response.content.decode()
    assert INVALID in html
    assert f'value="{login}"' in html  # the username is kept in the form
    assert not Session.objects.exists()
    assert BROWSER_SESSION_KEY not in client.session
    assert client.get("/")["Location"] == LOGIN_URL


def test_login_after_five_failures_answers_429_with_the_wait_time(org, member):
    client = browser()
    for _ in range(5):
        assert submit_login(client, "bob", "not-the-password").status_code == 401

    # Even the right password is refused while locked out.
    response = submit_login(client, "bob")

    assert response.status_code == 429
    html = response.content.decode()
    match = re.search(r"wait (\d+) s", html)
    assert match, html
    assert 0 < int(match.group(1)) <= settings.AUTH_LOCKOUT_WINDOW_SECONDS
    assert "Too many failed sign-in attempts" in html
    assert not Session.objects.exists()


def test_locked_out_login_page_carries_retry_after(org, member):
    client = browser()
    for _ in range(5):
        submit_login(client, "bob", "not-the-password")

    response = submit_login(client, "bob")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_login_post_without_csrf_token_is_refused(org, member):
    client = browser()
    client.get(LOGIN_URL)

    response = client.post(LOGIN_URL, {"username": "bob", "password": PASSWORD})

    assert response.status_code == 403
    assert "CSRF token" in response.content.decode()
    assert not Session.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_login_post_with_a_wrong_csrf_token_is_refused(org, member):
    client = browser()
    client.get(LOGIN_URL)

    response = client.post(
        LOGIN_URL, {"username": "bob", "password": PASSWORD, "csrfmiddlewaretoken": "x" * 64}
    )

    assert response.status_code == 403
    assert not Session.objects.exists()


def test_user_without_any_organization_cannot_sign_in(db):
    UserFactory(username="loner")
    client = browser()

    response = submit_login(client, "loner")

    assert response.status_code == 401
    assert "no active organization" in response.content.decode()
    assert not Session.objects.exists()


# --- Signing out ---------------------------------------------------------------------


def test_logout_revokes_the_session_and_signs_the_browser_out(org, member):
    client = signed_in_browser()
    session = browser_session(client)
    django_key = session.django_session_key

    response = client.post(LOGOUT_URL, {"csrfmiddlewaretoken": csrf_token(client)})

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    session.refresh_from_db()
    assert session.revoked_at is not None
    assert session.revoked_reason == "logout"
    assert not django_session_exists(django_key)
    assert AuditEvent.objects.filter(action="auth.logout", resource_id=str(session.id)).exists()
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == LOGIN_URL


def test_logout_without_csrf_token_is_refused_and_keeps_the_session(org, member):
    client = signed_in_browser()
    session = browser_session(client)

    response = client.post(LOGOUT_URL)

    assert response.status_code == 403
    assert "CSRF token" in response.content.decode()
    session.refresh_from_db()
    assert session.revoked_at is None
    assert client.get("/").status_code == 200


def test_logout_by_get_is_not_allowed(org, member):
    client = signed_in_browser()

    response = client.get(LOGOUT_URL)

    assert response.status_code == 405
    assert browser_session(client).revoked_at is None


def test_revoking_the_browser_session_from_the_api_signs_the_browser_out(org, member):
    client = signed_in_browser()
    session = browser_session(client)
    assert client.get("/").status_code == 200
    api = login_client(member)

    response = api.delete(f"{SESSIONS_URL}/{session.id}")

    assert response.status_code == 204, response.content
    session.refresh_from_db()
    assert session.revoked_at is not None
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == LOGIN_URL
    assert client.get(ME_URL).status_code == 401


def test_revoke_all_from_the_api_signs_the_browser_out_too(org, member):
    client = signed_in_browser()
    api = login_client(member)

    response = api.post(f"{SESSIONS_URL}/revoke-all", {"keep_current": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["revoked"] == 1
    assert client.get("/")["Location"] == LOGIN_URL
    assert api.get(ME_URL).status_code == 200


def test_another_user_cannot_revoke_the_browser_session(org, member, viewer):
    client = signed_in_browser()
    session = browser_session(client)

    response = login_client(viewer).delete(f"{SESSIONS_URL}/{session.id}")

    assert response.status_code == 404
    assert client.get("/").status_code == 200


# --- The dashboard calling the API with its session ---------------------------------


def test_browser_session_authenticates_api_reads(org, member):
    client = signed_in_browser()

    response = client.get(ME_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "bob"
    assert body["id"] == str(member.id)
    assert body["organization"]["id"] == str(org.id)
    assert body["role"] == "user"


def test_unsafe_api_call_with_the_browser_session_needs_the_csrf_header(org, member):
    client = signed_in_browser()
    session = browser_session(client)

    refused = client.post(API_LOGOUT_URL, content_type="application/json")

    assert refused.status_code == 403, refused.content
    assert "CSRF" in refused.json()["detail"]
    # A form another site makes the browser send is refused too: the API takes no forms.
    forged = client.post(API_LOGOUT_URL, {"anything": "1"})
    assert forged.status_code in (403, 415), forged.content
    session.refresh_from_db()
    assert session.revoked_at is None

    accepted = client.post(
        API_LOGOUT_URL, content_type="application/json", HTTP_X_CSRFTOKEN=csrf_token(client)
    )

    assert accepted.status_code == 204, accepted.content
    session.refresh_from_db()
    assert session.revoked_at is not None
    assert session.revoked_reason == "logout"
    assert client.get("/")["Location"] == LOGIN_URL


def test_api_calls_without_any_credential_are_refused(db):
    response = browser().get(ME_URL)

    assert response.status_code == 401


# --- Django admin ----------------------------------------------------------------------


def test_admin_login_redirects_to_the_dashboard_login(db):
    response = browser().get("/admin/login/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fadmin%2F"
