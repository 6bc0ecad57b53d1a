"""Authenticating with a service token: its format checked before any lookup, both headers,
the cached record, effective permissions (scopes intersected with the creator's), expiry,
revocation audits, a cache outage, usage counting and the token as an audited actor.

Changes reach the token cache and the member cache after commit, so the tests that check
a change on the token's next request run with real commits (transaction=True).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ServiceToken, TokenUsageDay
from accounts.tests.factories import MembershipFactory
from accounts.tokens.format import token_generate
from accounts.tokens.usage import token_usage_flush
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client
from config.testing.redis import UNREACHABLE_REDIS

TOKENS = "/api/v1/tokens"
EXPIRING = "/api/v1/tokens/expiring"
ORG_CURRENT = "/api/v1/orgs/current"
MEMBERS = "/api/v1/orgs/current/members"


def create_token(client: APIClient, **body: Any) -> dict[str, Any]:
    """Create a token through the API and return the 201 body (with its secret)."""
    payload = {"name": "deployer", "scopes": ["image:read", "token:manage"], **body}
    response = client.post(TOKENS, payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def bearer(secret: str, path: str = ORG_CURRENT) -> Any:
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def api_key(secret: str, path: str = ORG_CURRENT) -> Any:
    return APIClient().get(path, HTTP_X_API_KEY=secret)


def refusals(token_id: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="token.used_after_revocation", resource_id=token_id
        ).order_by("seq")
    )


@pytest.fixture
def issued(admin_client: APIClient) -> dict[str, Any]:
    """A token of `org` made by its admin (alice) with `image:read` and `token:manage`."""
    return create_token(admin_client)


def _flip_last_hex(token: str) -> str:
    return token[:-1] + ("0" if token[-1] != "0" else "1")


def _uppercase(token: str) -> str:
    return "sk_" + token[3:].upper()


MALFORMED = {
    "wrong-checksum": lambda: _flip_last_hex(token_generate()),
    "too-short": lambda: token_generate()[:-1],
    "too-long": lambda: token_generate() + "0",
    "uppercase-hex": lambda: _uppercase(token_generate()),
    "non-hex": lambda: "sk_" + "g" * 64,
    "truncated": lambda: token_generate()[:40],
}


# --- Format: refused before any lookup ---------------------------------------------------


@pytest.mark.parametrize("send", [bearer, api_key], ids=["bearer", "x-api-key"])
@pytest.mark.parametrize("make", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_token_is_refused_without_any_database_query(
    issued, make, send, django_assert_num_queries
):
    token = make()

    with django_assert_num_queries(0):
        response = send(token, TOKENS)

    body = assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    assert "malformed" in body["detail"]
    assert not AuditEvent.objects.filter(action="token.used_after_revocation").exists()


def test_a_flipped_checksum_of_a_real_token_is_refused(issued, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = bearer(_flip_last_hex(issued["token"]), TOKENS)

    assert_problem(response, status=401, code="AUTHENTICATION_FAILED")


# --- Both headers, unknown tokens --------------------------------------------------------


@pytest.mark.parametrize("send", [bearer, api_key], ids=["bearer", "x-api-key"])
def test_a_token_authenticates_with_either_header(issued, org, send):
    response = send(issued["token"], TOKENS)

    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["results"]] == [issued["id"]]
    current = send(issued["token"])
    assert current.status_code == 200
    assert current.json()["id"] == str(org.id)


@pytest.mark.parametrize("send", [bearer, api_key], ids=["bearer", "x-api-key"])
def test_a_well_formed_but_never_issued_token_is_refused(issued, send):
    response = send(token_generate(), TOKENS)

    body = assert_problem(response, status=401, code="AUTHENTICATION_FAILED")
    assert "malformed" not in body["detail"]


def test_a_token_with_the_bearer_scheme_lowercased_still_authenticates(issued):
    response = APIClient().get(ORG_CURRENT, HTTP_AUTHORIZATION=f"bearer {issued['token']}")

    assert response.status_code == 200


def test_a_warm_token_costs_no_more_queries_than_a_jwt(
    admin_client, issued, settings, django_assert_num_queries
):
    # Usage is flushed by the worker, as in production with Redis; a flush the web
    # process happens to run now and then would otherwise make the count vary.
    settings.TOKEN_USAGE_FLUSH_IN_PROCESS = False
    assert admin_client.get(EXPIRING).status_code == 200  # warm the user's principal
    assert bearer(issued["token"], EXPIRING).status_code == 200  # warm the token's record
    with CaptureQueriesContext(connection) as jwt_queries:
        jwt_response = admin_client.get(EXPIRING)
    assert jwt_response.status_code == 200

    with django_assert_num_queries(len(jwt_queries.captured_queries)) as token_queries:
        token_response = bearer(issued["token"], EXPIRING)

    assert token_response.status_code == 200
    assert token_response.json() == jwt_response.json()
    touched = " ".join(query["sql"] for query in token_queries.captured_queries)
    assert "accounts_membership" not in touched


# --- Effective permissions: scopes intersected with the creator's -----------------------


@pytest.mark.django_db(transaction=True)
def test_demoting_the_creator_narrows_the_token_on_its_next_request(org, admin, issued):
    second_admin = MembershipFactory(organization=org, role="admin").user
    secret = issued["token"]
    assert bearer(secret, TOKENS).status_code == 200  # warm: token and creator cached

    response = login_client(second_admin).patch(
        f"{MEMBERS}/{admin.id}", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 200, response.content

    body = assert_problem(bearer(secret, TOKENS), status=403, code="PERMISSION_DENIED")
    assert "token:manage" in body["detail"]
    assert bearer(secret).status_code == 200  # image:read survives, the principal too
    assert ServiceToken.objects.get(id=issued["id"]).scopes == ["image:read", "token:manage"]


@pytest.mark.django_db(transaction=True)
def test_promoting_the_creator_back_restores_the_tokens_scopes(org, admin, issued):
    second = login_client(MembershipFactory(organization=org, role="admin").user)
    secret = issued["token"]
    assert bearer(secret, TOKENS).status_code == 200
    demoted = second.patch(f"{MEMBERS}/{admin.id}", {"role": "viewer"}, format="json")
    assert demoted.status_code == 200
    assert bearer(secret, TOKENS).status_code == 403

    promoted = second.patch(f"{MEMBERS}/{admin.id}", {"role": "admin"}, format="json")
    assert promoted.status_code == 200

    assert bearer(secret, TOKENS).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_removing_the_creator_from_the_organization_refuses_the_token(org, admin, issued):
    second_admin = MembershipFactory(organization=org, role="admin").user
    secret = issued["token"]
    assert bearer(secret).status_code == 200  # warm: token and creator cached

    response = login_client(second_admin).delete(f"{MEMBERS}/{admin.id}")
    assert response.status_code == 204, response.content

    assert_problem(bearer(secret), status=401, code="TOKEN_REVOKED")
    assert_problem(api_key(secret, TOKENS), status=401, code="TOKEN_REVOKED")


def test_a_token_never_does_more_than_its_scopes(admin_client):
    reader = create_token(admin_client, name="reader", scopes=["image:read"])

    body = assert_problem(bearer(reader["token"], TOKENS), status=403, code="PERMISSION_DENIED")

    assert "token:manage" in body["detail"]
    assert bearer(reader["token"]).status_code == 200


# --- Expiry and revocation ---------------------------------------------------------------


def test_an_expired_token_is_refused_and_the_attempt_audited(issued, time_machine, org):
    secret = issued["token"]
    assert bearer(secret).status_code == 200  # warm: the record is cached
    expires_at = ServiceToken.objects.get(id=issued["id"]).expires_at
    time_machine.move_to(expires_at - dt.timedelta(seconds=1), tick=False)
    assert bearer(secret).status_code == 200

    time_machine.move_to(expires_at + dt.timedelta(seconds=1), tick=False)
    response = bearer(secret)

    assert_problem(response, status=401, code="TOKEN_EXPIRED")
    [event] = refusals(issued["id"])
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.organization_id == org.id
    assert event.actor_type == "service_token"
    assert event.actor_id == issued["id"]
    assert event.details["reason"] == "expired"
    assert event.details["prefix"] == issued["prefix"]


@pytest.mark.django_db(transaction=True)
def test_a_revoked_token_retried_is_audited_once_a_minute(admin_client, issued, time_machine):
    # The start of the next minute, so the five retries fall in one minute.
    now = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    time_machine.move_to(now, tick=False)
    secret = issued["token"]
    assert bearer(secret).status_code == 200  # warm: the record is cached
    assert admin_client.delete(f"{TOKENS}/{issued['id']}").status_code == 204

    for second in range(5):
        time_machine.move_to(now + dt.timedelta(seconds=1 + second * 10), tick=False)
        assert_problem(bearer(secret), status=401, code="TOKEN_REVOKED")

    [event] = refusals(issued["id"])
    assert event.details["reason"] == "revoked"
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.actor_id == issued["id"]

    time_machine.move_to(now + dt.timedelta(minutes=2), tick=False)
    assert_problem(bearer(secret), status=401, code="TOKEN_REVOKED")

    assert len(refusals(issued["id"])) == 2


def test_the_refusal_audit_is_kept_per_token(admin_client):
    first = create_token(admin_client, name="first")
    second = create_token(admin_client, name="second")
    for token in (first, second):
        assert admin_client.delete(f"{TOKENS}/{token['id']}").status_code == 204

    for token in (first, second):
        assert_problem(bearer(token["token"]), status=401, code="TOKEN_REVOKED")

    assert len(refusals(first["id"])) == 1
    assert len(refusals(second["id"])) == 1


# --- Cache outage ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_with_the_cache_down_tokens_are_checked_against_the_database(
    admin_client, settings, log_lines
):
    valid = create_token(admin_client, name="valid")
    revoked = create_token(admin_client, name="revoked")
    assert bearer(valid["token"]).status_code == 200
    assert bearer(revoked["token"]).status_code == 200  # cached as live
    settings.CACHES = UNREACHABLE_REDIS
    assert admin_client.delete(f"{TOKENS}/{revoked['id']}").status_code == 204

    ok = bearer(valid["token"], TOKENS)
    refused = bearer(revoked["token"])

    assert ok.status_code == 200, ok.content
    assert valid["id"] in [item["id"] for item in ok.json()["results"]]
    assert_problem(refused, status=401, code="TOKEN_REVOKED")
    assert any(line["event"] == "auth_cache_unreachable" for line in log_lines())
    assert refusals(revoked["id"])  # audited even without the rate-limit key


# --- Usage counting ----------------------------------------------------------------------


def test_uses_are_counted_and_flushed_to_the_database(issued):
    for _ in range(4):
        assert bearer(issued["token"]).status_code == 200

    token_usage_flush()

    token = ServiceToken.objects.get(id=issued["id"])
    today = timezone.now().date()
    assert token.usage_count == 4
    assert TokenUsageDay.objects.get(token=token, date=today).requests == 4
    assert token.last_used_at is not None
    assert abs(token.last_used_at - timezone.now()) < dt.timedelta(minutes=2)
    assert token.last_used_ip == "127.0.0.1"

    token_usage_flush()

    token.refresh_from_db()
    assert token.usage_count == 4
    assert TokenUsageDay.objects.get(token=token, date=today).requests == 4

    for _ in range(2):
        assert api_key(issued["token"]).status_code == 200
    token_usage_flush()

    token.refresh_from_db()
    assert token.usage_count == 6
    assert TokenUsageDay.objects.get(token=token, date=today).requests == 6
    assert TokenUsageDay.objects.filter(token=token).count() == 1


def test_a_refused_request_is_not_counted_as_a_use(admin_client, issued):
    assert admin_client.delete(f"{TOKENS}/{issued['id']}").status_code == 204
    assert bearer(issued["token"]).status_code == 401

    token_usage_flush()

    token = ServiceToken.objects.get(id=issued["id"])
    assert token.usage_count == 0
    assert token.last_used_at is None
    assert not TokenUsageDay.objects.filter(token=token).exists()


def test_uses_are_counted_per_token(admin_client, issued):
    other = create_token(admin_client, name="other")
    for _ in range(2):
        bearer(issued["token"])
    bearer(other["token"])

    token_usage_flush()

    assert ServiceToken.objects.get(id=issued["id"]).usage_count == 2
    assert ServiceToken.objects.get(id=other["id"]).usage_count == 1


# --- The token as an actor ---------------------------------------------------------------


def test_a_token_acting_on_the_api_is_audited_as_a_service_token(admin_client, issued, log_lines):
    target = create_token(admin_client, name="target")

    response = APIClient().post(
        f"{TOKENS}/{target['id']}/rotate",
        {"grace_seconds": 60},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {issued['token']}",
    )

    assert response.status_code == 201, response.content
    [event] = AuditEvent.objects.filter(action="token.rotated", resource_id=target["id"])
    assert event.actor_type == "service_token"
    assert event.actor_id == issued["id"]
    assert event.actor_display == issued["name"]
    assert event.ip == "127.0.0.1"
    [line] = [
        line
        for line in log_lines()
        if line.get("event") == "request_finished" and line.get("path", "").endswith("/rotate")
    ]
    assert line["principal"] == f"service_token:{issued['id']}"
    assert issued["token"] not in str(line)
