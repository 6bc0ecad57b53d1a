"""The middleware only a browser needs runs for pages and session calls, never for programs."""

from __future__ import annotations

import pytest
from django.core.checks import Error

from config.checks import browser_csrf_cookie_check, browser_middleware_check
from config.testing.http import assert_problem, login_client, signed_in_browser

ME = "/api/v1/auth/me"


def test_a_program_calling_the_api_passes_no_browser_middleware(member):
    answer = login_client(member).get(ME)

    assert answer.status_code == 200
    assert not hasattr(answer.wsgi_request, "session")
    assert "Cookie" not in answer.get("Vary", "")
    assert not answer.cookies


def test_an_api_call_with_the_session_cookie_passes_the_browser_middleware(member):
    browser = signed_in_browser(member.username)

    answer = browser.get(ME)

    assert answer.status_code == 200
    assert answer.json()["username"] == member.username
    assert hasattr(answer.wsgi_request, "session")
    # An unsafe call with the session still needs the CSRF header.
    refused = browser.post("/api/v1/auth/logout", content_type="application/json")
    assert_problem(refused, status=403, code="PERMISSION_DENIED")


def test_a_page_form_without_its_csrf_token_is_still_refused(member):
    browser = signed_in_browser(member.username)

    answer = browser.post("/account/password/", {"old_password": "x", "new_password1": "y"})

    assert answer.status_code == 403
    assert browser.get("/account/").status_code == 200  # still signed in


@pytest.mark.parametrize(
    ("missing", "code"),
    [
        ("django.contrib.sessions.middleware.SessionMiddleware", "config.E001"),
        ("django.contrib.auth.middleware.AuthenticationMiddleware", "config.E002"),
        ("django.contrib.messages.middleware.MessageMiddleware", "config.E003"),
        ("django.middleware.csrf.CsrfViewMiddleware", "config.E004"),
    ],
)
def test_what_the_admin_site_needs_is_checked_in_the_browser_middleware(settings, missing, code):
    settings.BROWSER_MIDDLEWARE = [path for path in settings.BROWSER_MIDDLEWARE if path != missing]

    assert [(type(m), m.id) for m in browser_middleware_check(None)] == [(Error, code)]


def test_the_configured_browser_middleware_passes_its_check():
    assert browser_middleware_check(None) == []


def test_a_deployment_is_warned_of_a_csrf_cookie_sent_over_plain_http(settings):
    settings.CSRF_COOKIE_SECURE = False
    assert [m.id for m in browser_csrf_cookie_check(None)] == ["config.W016"]

    settings.CSRF_COOKIE_SECURE = True
    assert browser_csrf_cookie_check(None) == []
