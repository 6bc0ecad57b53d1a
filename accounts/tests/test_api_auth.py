"""POST /api/v1/auth/token: sign-in, the token pair it returns, failures and lockout."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jwt
import pytest
import time_machine
from rest_framework.test import APIClient

from accounts.models import LoginFailure, Session
from accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from audit.models import AuditEvent
from config.testing.http import assert_problem

TOKEN_URL = "/api/v1/auth/token"
ME_URL = "/api/v1/auth/me"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def sign_in(client: APIClient, login: str, password: str = PASSWORD, **extra: Any) -> Any:
    body = {"username": login, "password": password}
    if "org" in extra:
        body["org"] = extra.pop("org")
    return client.post(TOKEN_URL, body, format="json", **extra)


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- Success ---------------------------------------------------------------------


@pytest.mark.parametrize("login", ["bob", "bob@example.com", "BOB@Example.COM"])
def test_sign_in_by_username_or_email_in_any_case_opens_an_api_session(
    api_client, org, member, login
):
    response = sign_in(api_client, login, REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT=FIREFOX)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "session_id"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    session = Session.objects.get(id=body["session_id"])
    assert session.user_id == member.id
    assert session.organization_id == org.id
    assert session.kind == "api"
    assert session.ip == "203.0.113.7"
    assert session.user_agent == FIREFOX
    assert session.device == "Firefox 128 on Windows"
    assert session.revoked_at is None
    assert session.refresh_jti == claims_of(body["refresh"])["jti"]
    event = AuditEvent.objects.get(action="auth.login")
    assert event.outcome == "success"
    assert event.organization_id == org.id
    assert event.chain == str(org.id)
    assert event.actor_type == "user"
    assert event.actor_id == str(member.id)
    assert event.resource_type == "session"
    assert event.resource_id == str(session.id)
    assert event.ip == "203.0.113.7"


def test_issued_access_token_authenticates_the_user(api_client, org, member):
    access = sign_in(api_client, "bob").json()["access"]

    me = bearer(access).get(ME_URL)

    assert me.status_code == 200
    assert me.json()["id"] == str(member.id)
    assert me.json()["organization"]["id"] == str(org.id)


# --- Organization choice ---------------------------------------------------------


@pytest.mark.parametrize("reference", ["slug", "id"])
def test_sign_in_with_org_binds_the_token_to_that_organization(
    api_client, org, other_org, member, reference
):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    chosen = other_org.slug if reference == "slug" else str(other_org.id)

    response = sign_in(api_client, "bob", org=chosen)

    assert response.status_code == 200, response.content
    body = response.json()
    assert claims_of(body["access"])["org_id"] == str(other_org.id)
    assert Session.objects.get(id=body["session_id"]).organization_id == other_org.id
    me = bearer(body["access"]).get(ME_URL).json()
    assert me["organization"] == {"id": str(other_org.id), "name": "Globex", "tier": "pro"}
    assert me["role"] == "viewer"


def test_sign_in_with_an_org_the_user_is_not_a_member_of_is_refused(api_client, member, other_org):
    response = sign_in(api_client, "bob", org=other_org.slug)

    assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    assert not Session.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.outcome == "failure"
    assert failed.details["reason"] == "no_membership"


def test_sign_in_without_org_defaults_to_the_earliest_membership(api_client):
    # globex sorts after acme, so only the membership date can make it the default.
    user = UserFactory(username="erin")
    late = MembershipFactory(user=user, organization__slug="acme", created_at=T0)
    early = MembershipFactory(
        user=user, organization__slug="globex", created_at=T0 - dt.timedelta(days=1)
    )

    response = sign_in(api_client, "erin")

    assert response.status_code == 200, response.content
    body = response.json()
    assert claims_of(body["access"])["org_id"] == str(early.organization_id)
    assert Session.objects.get(id=body["session_id"]).organization_id == early.organization_id
    me = bearer(body["access"]).get(ME_URL).json()
    assert me["organization"]["id"] == str(early.organization_id)
    assert me["organization"]["id"] != str(late.organization_id)


# --- Bad credentials -------------------------------------------------------------


def test_wrong_password_and_unknown_user_get_the_same_answer(api_client, org, member):
    wrong_password = sign_in(api_client, "bob", "not-the-password")
    unknown_user = sign_in(api_client, "nobody", "not-the-password")

    first = assert_problem(wrong_password, status=401, code="AUTHENTICATION_FAILED")
    second = assert_problem(unknown_user, status=401, code="AUTHENTICATION_FAILED")
    first.pop("request_id")
    second.pop("request_id")
    assert first == second
    assert wrong_password["WWW-Authenticate"] == unknown_user["WWW-Authenticate"]
    assert not Session.objects.exists()


def test_wrong_password_records_a_failure_in_the_users_organization(api_client, org, member):
    sign_in(api_client, "bob", "not-the-password", REMOTE_ADDR="198.51.100.4")

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.outcome == "failure"
    assert event.organization_id == org.id
    assert event.actor_type == "user"
    assert event.actor_id == str(member.id)
    assert event.details["reason"] == "bad_credentials"
    failure = LoginFailure.objects.get()
    assert failure.username == "bob"
    assert failure.ip == "198.51.100.4"


def test_unknown_user_records_an_anonymous_failure(api_client, org, member):
    sign_in(api_client, "Nobody", "not-the-password", REMOTE_ADDR="198.51.100.4")

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.outcome == "failure"
    assert event.organization_id is None
    assert event.actor_type == "anonymous"
    assert event.actor_id == ""
    assert event.details["login"] == "Nobody"
    failure = LoginFailure.objects.get()
    assert failure.username == "nobody"
    assert failure.ip == "198.51.100.4"


def test_inactive_user_cannot_sign_in_even_with_the_right_password(api_client, org, member):
    member.is_active = False
    member.save(update_fields=["is_active"])

    response = sign_in(api_client, "bob")

    body = assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    assert body["detail"] == "Invalid username or password."
    assert not Session.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()


# --- Bad input -------------------------------------------------------------------


def test_missing_password_is_a_validation_error_naming_the_field(api_client, member):
    response = api_client.post(TOKEN_URL, {"username": "bob"}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["password"]
    assert body["errors"][0]["code"] == "required"
    assert not LoginFailure.objects.exists()
    assert not AuditEvent.objects.exists()


def test_empty_body_is_a_validation_error_naming_both_fields(api_client, member):
    response = api_client.post(TOKEN_URL, {}, format="json")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert sorted(error["field"] for error in body["errors"]) == ["password", "username"]
    assert not LoginFailure.objects.exists()
    assert not Session.objects.exists()


# --- Lockout ---------------------------------------------------------------------


def _fail(client: APIClient, login: str, times: int, **extra: Any) -> None:
    for _ in range(times):
        assert_problem(
            sign_in(client, login, "not-the-password", **extra),
            status=401,
            code="AUTHENTICATION_FAILED",
        )


def test_five_failures_lock_the_username_even_for_the_right_password(
    api_client, org, member, time_machine
):
    time_machine.move_to(T0, tick=False)
    _fail(api_client, "bob", 5)
    events = AuditEvent.objects.count()
    time_machine.move_to(T0 + dt.timedelta(minutes=10), tick=False)

    response = sign_in(api_client, "bob")

    assert_problem(response, status=429, code="TOO_MANY_LOGIN_ATTEMPTS")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 900
    assert retry_after == 5 * 60  # the failures leave the 15-minute window at T0+15min
    assert not Session.objects.exists()
    # A refused attempt is not audited (nor counted).
    assert AuditEvent.objects.count() == events
    assert LoginFailure.objects.count() == 5


def test_four_failures_do_not_lock_the_username(api_client, org, member):
    _fail(api_client, "bob", 4)

    response = sign_in(api_client, "bob")

    assert response.status_code == 200, response.content
    # Success forgets the username's failures.
    assert not LoginFailure.objects.filter(username="bob").exists()


def test_username_lock_lifts_once_the_failures_leave_the_window(
    api_client, org, member, time_machine
):
    time_machine.move_to(T0, tick=False)
    _fail(api_client, "bob", 5)
    time_machine.move_to(T0 + dt.timedelta(minutes=14, seconds=59), tick=False)
    assert_problem(sign_in(api_client, "bob"), status=429, code="TOO_MANY_LOGIN_ATTEMPTS")

    time_machine.move_to(T0 + dt.timedelta(minutes=15, seconds=1), tick=False)
    response = sign_in(api_client, "bob")

    assert response.status_code == 200, response.content
    assert Session.objects.filter(user=member, revoked_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="auth.login", actor_id=str(member.id)).count() == 1


def test_waiting_exactly_retry_after_seconds_lets_the_right_password_through(
    api_client, org, member, time_machine
):
    time_machine.move_to(T0, tick=False)
    _fail(api_client, "bob", 5)
    time_machine.move_to(T0 + dt.timedelta(minutes=10), tick=False)
    locked = sign_in(api_client, "bob")
    assert_problem(locked, status=429, code="TOO_MANY_LOGIN_ATTEMPTS")
    wait = int(locked["Retry-After"])
    assert wait == 5 * 60

    time_machine.move_to(T0 + dt.timedelta(minutes=10, seconds=wait), tick=False)
    response = sign_in(api_client, "bob")

    assert response.status_code == 200, response.content


def test_twenty_failures_from_one_address_lock_that_address_only(
    api_client, org, member, time_machine
):
    time_machine.move_to(T0, tick=False)
    for n in range(20):
        _fail(api_client, f"ghost{n}", 1, REMOTE_ADDR="192.0.2.10")
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    locked = sign_in(api_client, "bob", REMOTE_ADDR="192.0.2.10")
    elsewhere = sign_in(api_client, "bob", REMOTE_ADDR="192.0.2.11")

    assert_problem(locked, status=429, code="TOO_MANY_LOGIN_ATTEMPTS")
    assert 1 <= int(locked["Retry-After"]) <= 900
    assert elsewhere.status_code == 200, elsewhere.content
    session = Session.objects.get()
    assert session.ip == "192.0.2.11"
    # Only the successful sign-in from the other address was audited.
    later = AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq")
    assert list(later.values_list("action", "ip")) == [("auth.login", "192.0.2.11")]


def test_nineteen_failures_from_one_address_do_not_lock_it(api_client, org, member):
    for n in range(19):
        _fail(api_client, f"ghost{n}", 1, REMOTE_ADDR="192.0.2.10")

    response = sign_in(api_client, "bob", REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 200, response.content


# --- Token claims ----------------------------------------------------------------


def test_access_token_carries_exactly_the_documented_claims(api_client, org, member):
    with time_machine.travel(T0, tick=False):
        body = sign_in(api_client, "bob").json()

    claims = claims_of(body["access"])

    assert set(claims) == {
        "sub",
        "org_id",
        "email",
        "name",
        "role",
        "sid",
        "jti",
        "type",
        "iat",
        "exp",
    }
    assert claims["sub"] == str(member.id)
    assert claims["org_id"] == str(org.id)
    assert claims["email"] == "bob@example.com"
    assert claims["name"] == "Bob"
    assert claims["role"] == "user"
    assert claims["sid"] == body["session_id"]
    assert claims["type"] == "access"
    assert uuid.UUID(claims["jti"])
    assert claims["iat"] == int(T0.timestamp())
    assert claims["exp"] - claims["iat"] == 900


def test_refresh_token_lives_seven_days_and_differs_from_the_access_token(api_client, org, member):
    with time_machine.travel(T0, tick=False):
        body = sign_in(api_client, "bob").json()

    access, refresh = claims_of(body["access"]), claims_of(body["refresh"])

    assert refresh["type"] == "refresh"
    assert refresh["iat"] == int(T0.timestamp())
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 60 * 60
    assert refresh["sid"] == access["sid"] == body["session_id"]
    assert refresh["sub"] == access["sub"] == str(member.id)
    assert refresh["org_id"] == access["org_id"] == str(org.id)
    assert refresh["jti"] != access["jti"]
