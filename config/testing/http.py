"""Talking to the app over HTTP in tests: problem details, signed-in API clients, and a
browser signed in at /login/ with CSRF checks on."""

from __future__ import annotations

from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import Session
from accounts.services.sessions import auth_login

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}
# Every user the tests make signs in with it.
PASSWORD = "correct-horse-battery-staple-42"
LOGIN_URL = "/login/"


def assert_problem(
    response: Any, *, status: int, code: str, with_errors: bool | None = None
) -> dict[str, Any]:
    """Check an RFC 9457 problem-details answer and return its body.

    Validation errors must list their `errors`; `with_errors` asserts either way.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    expect_errors = code == "VALIDATION_ERROR" if with_errors is None else with_errors
    assert set(body) == (PROBLEM_KEYS | {"errors"} if expect_errors else PROBLEM_KEYS)
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


def login_client(user: Any, org: Any = None) -> APIClient:
    """Return an API client signed in as `user` (in `org`) through a real login session."""
    sign_in = auth_login(login=user.username, password=PASSWORD, org=org.slug if org else None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {sign_in.tokens['access']}")
    client.sign_in = sign_in  # type: ignore[attr-defined]
    return client


def browser() -> Client:
    """A test client that checks CSRF tokens, as the site does for a real browser."""
    return Client(enforce_csrf_checks=True)


def csrf_token(client: Client) -> str:
    """The CSRF token a page of the site would embed: the csrftoken cookie's current value."""
    if "csrftoken" not in client.cookies:
        response = client.get(LOGIN_URL)
        assert response.status_code in (200, 302)
    return client.cookies["csrftoken"].value


def submit_login(client: Client, login: str, password: str = PASSWORD, **fields: Any) -> Any:
    """Load the form, then post it back with the CSRF token, as a browser does."""
    client.get(LOGIN_URL)
    data = {"username": login, "password": password, "csrfmiddlewaretoken": csrf_token(client)}
    data.update(fields)
    return client.post(LOGIN_URL, data)


def signed_in_browser(login: str = "bob") -> Client:
    client = browser()
    response = submit_login(client, login)
    assert response.status_code == 302, response.content
    return client


def browser_session(client: Client) -> Session:
    """The login Session the browser's Django session points to."""
    return Session.objects.get(id=client.session[BROWSER_SESSION_KEY])


def post(client: Client, path: str, data: dict[str, Any] | None = None) -> Any:
    """Send a form as the page does: with the CSRF token the page embeds."""
    return client.post(path, {**(data or {}), "csrfmiddlewaretoken": csrf_token(client)})


def html(response: Any) -> str:
    return response.content.decode()
