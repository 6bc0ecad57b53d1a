"""Forged, tampered, expired and misused JWTs are refused with 401, and change nothing."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import Session
from accounts.tests.factories import PASSWORD, MembershipFactory
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

TOKEN_URL = "/api/v1/auth/token"
REFRESH_URL = "/api/v1/auth/token/refresh"
ME_URL = "/api/v1/auth/me"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def obtain(username: str = "bob") -> dict[str, Any]:
    response = APIClient().post(
        TOKEN_URL, {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def me_with(token: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(ME_URL)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def pair(org, member) -> dict[str, Any]:
    return obtain()


@pytest.fixture
def unchanged(pair):
    """After the test: the session is still live and no audit event was added."""
    events = AuditEvent.objects.count()
    yield
    session = Session.objects.get(id=pair["session_id"])
    assert session.revoked_at is None
    assert AuditEvent.objects.count() == events
    assert me_with(pair["access"]).status_code == 200


# --- Forged and tampered ---------------------------------------------------------


def test_alg_none_token_is_refused(pair, unchanged):
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_of(pair['access']))}."

    assert_problem(me_with(forged), status=401, code="AUTHENTICATION_FAILED")


def test_alg_none_token_built_by_pyjwt_is_refused(pair, unchanged):
    forged = jwt.encode(claims_of(pair["access"]), key=None, algorithm="none")

    assert_problem(me_with(forged), status=401, code="AUTHENTICATION_FAILED")


def test_token_signed_with_another_key_is_refused(pair, unchanged):
    forged = sign(claims_of(pair["access"]), key="x" * 64)

    response = me_with(forged)

    assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_token_signed_with_the_real_key_but_another_algorithm_is_refused(pair, unchanged):
    forged = sign(claims_of(pair["access"]), algorithm="HS384")

    assert_problem(me_with(forged), status=401, code="AUTHENTICATION_FAILED")


def test_payload_changed_after_signing_is_refused(pair, other_org, unchanged):
    header, _, signature = pair["access"].split(".")
    claims = {**claims_of(pair["access"]), "org_id": str(other_org.id)}
    tampered = f"{header}.{b64(claims)}.{signature}"

    assert_problem(me_with(tampered), status=401, code="AUTHENTICATION_FAILED")


def test_garbage_bearer_value_is_refused(pair, unchanged):
    assert_problem(me_with("not.a.jwt"), status=401, code="AUTHENTICATION_FAILED")


# --- Expiry and token type -------------------------------------------------------


def test_access_token_is_refused_as_expired_after_fifteen_minutes(org, member, time_machine):
    time_machine.move_to(T0, tick=False)
    pair = obtain()
    time_machine.move_to(T0 + dt.timedelta(minutes=14, seconds=59), tick=False)
    assert me_with(pair["access"]).status_code == 200

    time_machine.move_to(T0 + dt.timedelta(minutes=16), tick=False)
    response = me_with(pair["access"])

    assert_problem(response, status=401, code="TOKEN_EXPIRED")
    assert Session.objects.get(id=pair["session_id"]).revoked_at is None
    # The refresh token is still good for a new pair.
    fresh = APIClient().post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert fresh.status_code == 200, fresh.content
    assert me_with(fresh.json()["access"]).status_code == 200


def test_refresh_token_is_not_accepted_as_an_access_token(pair, unchanged):
    assert_problem(me_with(pair["refresh"]), status=401, code="AUTHENTICATION_FAILED")


def test_access_token_is_not_accepted_as_a_refresh_token(pair, unchanged):
    response = APIClient().post(REFRESH_URL, {"refresh": pair["access"]}, format="json")

    assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    session = Session.objects.get(id=pair["session_id"])
    assert session.refresh_count == 0
    assert session.refresh_jti == claims_of(pair["refresh"])["jti"]


# --- Validly signed, but wrong ---------------------------------------------------


@pytest.mark.parametrize("claim", ["sid", "org_id", "sub"])
def test_token_missing_a_required_claim_is_refused_naming_it(pair, unchanged, claim):
    claims = claims_of(pair["access"])
    del claims[claim]

    body = assert_problem(me_with(sign(claims)), status=401, code="AUTHENTICATION_FAILED")

    assert claim in body["detail"]


def test_token_naming_another_org_than_its_session_is_revoked(pair, member, other_org, unchanged):
    # Even an organization the user belongs to: the session is bound to one organization.
    MembershipFactory(user=member, organization=other_org, role="admin")
    claims = {**claims_of(pair["access"]), "org_id": str(other_org.id), "role": "admin"}

    assert_problem(me_with(sign(claims)), status=401, code="TOKEN_REVOKED")


def test_token_naming_another_user_than_its_session_is_revoked(pair, admin, unchanged):
    claims = {**claims_of(pair["access"]), "sub": str(admin.id)}

    assert_problem(me_with(sign(claims)), status=401, code="TOKEN_REVOKED")


def test_token_for_a_session_that_does_not_exist_is_refused(pair, unchanged):
    claims = {**claims_of(pair["access"]), "sid": str(uuid.uuid4())}

    body = assert_problem(me_with(sign(claims)), status=401, code="AUTHENTICATION_FAILED")

    assert "session" in body["detail"].lower()


def test_token_whose_session_id_is_not_a_uuid_is_refused(pair, unchanged):
    claims = {**claims_of(pair["access"]), "sid": "not-a-session-id"}

    assert_problem(me_with(sign(claims)), status=401, code="AUTHENTICATION_FAILED")


def test_refresh_token_whose_subject_is_not_a_uuid_is_refused(pair, unchanged):
    claims = {**claims_of(pair["refresh"]), "sub": "not-a-user-id"}

    response = APIClient().post(REFRESH_URL, {"refresh": sign(claims)}, format="json")

    assert_problem(response, status=401, code="AUTHENTICATION_FAILED")


# --- Signing key rotation ------------------------------------------------------------

PREVIOUS_KEY = "previous-signing-key-" + "p" * 43


def test_a_token_signed_with_a_listed_previous_key_is_still_accepted(pair, settings):
    settings.JWT_PREVIOUS_SIGNING_KEYS = ["another-old-key-" + "q" * 48, PREVIOUS_KEY]
    before_rotation = sign(claims_of(pair["access"]), key=PREVIOUS_KEY)

    response = me_with(before_rotation)

    assert response.status_code == 200, response.content
    assert response.json()["username"] == "bob"


def test_a_refresh_token_of_the_previous_key_gets_a_pair_signed_with_the_current_one(
    pair, settings
):
    settings.JWT_PREVIOUS_SIGNING_KEYS = [PREVIOUS_KEY]
    before_rotation = sign(claims_of(pair["refresh"]), key=PREVIOUS_KEY)

    response = APIClient().post(REFRESH_URL, {"refresh": before_rotation}, format="json")

    assert response.status_code == 200, response.content
    fresh = response.json()["access"]
    jwt.decode(fresh, settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    assert me_with(fresh).status_code == 200


def test_once_the_previous_key_is_dropped_its_tokens_are_refused(pair, settings, unchanged):
    settings.JWT_PREVIOUS_SIGNING_KEYS = []
    before_rotation = sign(claims_of(pair["access"]), key=PREVIOUS_KEY)

    assert_problem(me_with(before_rotation), status=401, code="AUTHENTICATION_FAILED")


def test_an_expired_token_of_the_previous_key_is_expired(pair, settings, unchanged):
    settings.JWT_PREVIOUS_SIGNING_KEYS = [PREVIOUS_KEY]
    claims = {**claims_of(pair["access"]), "exp": int(time.time()) - 10}

    response = me_with(sign(claims, key=PREVIOUS_KEY))

    assert_problem(response, status=401, code="TOKEN_EXPIRED")


def test_a_previous_key_does_not_make_a_refresh_token_an_access_token(pair, settings, unchanged):
    settings.JWT_PREVIOUS_SIGNING_KEYS = [PREVIOUS_KEY]
    refresh_as_access = sign(claims_of(pair["refresh"]), key=PREVIOUS_KEY)

    assert_problem(me_with(refresh_as_access), status=401, code="AUTHENTICATION_FAILED")


@pytest.mark.django_db
@pytest.mark.urls("config.tests.urls")
def test_request_user_of_a_jwt_is_the_person_and_loads_what_it_was_not_given(member):
    client = login_client(member)

    body = client.get("/api/test/private").json()

    assert body == {"user": str(member.pk), "username": member.username, "email": member.email}
