"""The service token API (`token:manage`): create, list, read, narrow, revoke, rotate,
revoke every token, usage and coming expiries.

Every endpoint is tried with good and bad input, by an admin of another organization
(404 for this organization's ids) and by roles without `token:manage` (403). Changes that
must reach the token's next request (revocation, narrowing, rotation) are pushed into the
cache after commit, so those tests run with real commits (transaction=True).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
import zlib
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ServiceToken, TokenUsageDay
from accounts.tests.factories import (
    SECRET,
    TOKEN_FIELDS,
    TOKENS,
    as_token,
    close_to,
    create_token,
    detail_url,
    invalid,
    rotate_url,
    usage_url,
)
from audit.models import AuditEvent
from audit.tests.factories import audit_events as events
from config.testing.http import assert_problem

REVOKE_ALL = "/api/v1/tokens/revoke-all"
EXPIRING = "/api/v1/tokens/expiring"


@pytest.fixture
def issued(admin_client: APIClient) -> dict[str, Any]:
    """A token of `org` made by its admin, with `token:manage` so it can act on the API."""
    return create_token(admin_client, name="deployer", scopes=["image:read", "token:manage"])


# --- POST /tokens -----------------------------------------------------------------------


def test_create_answers_every_field_and_the_secret_once(admin_client, admin, log_lines):
    before = timezone.now()

    response = admin_client.post(
        TOKENS, {"name": "ci-pipeline", "scopes": ["image:read"]}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_FIELDS | {"token"}
    assert body["name"] == "ci-pipeline"
    assert body["scopes"] == ["image:read"]
    assert body["created_by"] == admin.username
    assert close_to(body["created_at"], before)
    assert close_to(body["expires_at"], before + dt.timedelta(days=90))
    assert body["last_used_at"] is None
    assert body["last_used_ip"] is None
    assert body["usage_count"] == 0
    assert body["status"] == "active"
    assert body["revoked_at"] is None
    assert body["revoked_reason"] == ""
    assert body["grace_until"] is None
    assert body["rotated_from"] is None
    uuid.UUID(body["id"])
    secret = body["token"]
    assert SECRET.match(secret), secret
    assert secret[-8:] == format(zlib.crc32(b"sk_" + secret[3:59].encode()), "08x")
    assert body["prefix"] == secret[:12]
    assert log_lines()
    assert not any(secret in str(line) for line in log_lines())


def test_create_stores_only_the_digest_of_the_secret(admin_client):
    body = create_token(admin_client)
    secret = body["token"]

    row = ServiceToken.objects.get(id=body["id"])

    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = ServiceToken.objects.filter(id=body["id"]).values().get()
    for column, value in stored.items():
        assert secret not in str(value), column
        assert secret[3:] not in str(value), column


def test_create_with_expires_in_days_expires_that_many_days_from_now(admin_client):
    before = timezone.now()

    body = create_token(admin_client, expires_in_days=7)

    assert close_to(body["expires_at"], before + dt.timedelta(days=7))
    row = ServiceToken.objects.get(id=body["id"])
    assert abs(row.expires_at - (before + dt.timedelta(days=7))) < dt.timedelta(seconds=30)


def test_create_is_audited_as_token_created_by_the_admin(admin_client, admin, org):
    body = create_token(admin_client, scopes=["image:read", "image:upload"])

    [event] = events("token.created", resource_id=body["id"])
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.organization_id == org.id
    assert event.actor_type == "user"
    assert event.actor_id == str(admin.id)
    assert event.resource_type == "service_token"
    assert event.details["scopes"] == ["image:read", "image:upload"]
    assert body["token"] not in str(event.details)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "ci", "scopes": []}, "scopes"),
        ({"name": "ci", "scopes": ["image:fly"]}, "scopes"),
        ({"name": "ci", "scopes": ["image:read"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "ci", "scopes": ["image:read"], "expires_in_days": 366}, "expires_in_days"),
        ({"scopes": ["image:read"]}, "name"),
    ],
    ids=["empty-scopes", "unknown-scope", "zero-days", "366-days", "missing-name"],
)
def test_create_refuses_bad_input_and_creates_nothing(admin_client, payload, field):
    response = admin_client.post(TOKENS, payload, format="json")

    invalid(response, field)
    assert not ServiceToken.objects.exists()
    assert not events("token.created")


def test_create_respects_the_organizations_shorter_maximum_lifetime(admin_client, org):
    org.token_max_lifetime_days = 30
    org.save(update_fields=["token_max_lifetime_days"])

    too_long = admin_client.post(
        TOKENS, {"name": "ci", "scopes": ["image:read"], "expires_in_days": 31}, format="json"
    )
    invalid(too_long, "expires_in_days")
    assert not ServiceToken.objects.exists()

    body = create_token(admin_client, expires_in_days=30)
    assert close_to(body["expires_at"], timezone.now() + dt.timedelta(days=30))


def test_a_token_cannot_grant_a_scope_it_lacks_but_its_admin_creator_can(
    admin_client, issued, admin
):
    response = APIClient().post(
        TOKENS,
        {"name": "wider", "scopes": ["image:upload"]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {issued['token']}",
    )

    body = invalid(response, "scopes")
    assert "image:upload" in body["detail"]
    assert not ServiceToken.objects.filter(name="wider").exists()

    made = create_token(admin_client, name="wider", scopes=["image:upload"])
    assert made["scopes"] == ["image:upload"]
    assert made["created_by"] == admin.username


def test_a_token_with_token_manage_creates_a_narrower_token_for_its_creator(issued, admin):
    response = APIClient().post(
        TOKENS,
        {"name": "reader", "scopes": ["image:read"]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {issued['token']}",
    )

    assert response.status_code == 201, response.content
    assert response.json()["created_by"] == admin.username
    assert ServiceToken.objects.get(id=response.json()["id"]).created_by == admin


@pytest.mark.parametrize("name", ["ci-pipeline", " CI-Pipeline "])
def test_create_with_a_live_tokens_name_is_refused_and_creates_nothing(admin_client, name):
    live = create_token(admin_client, name="ci-pipeline")

    response = admin_client.post(TOKENS, {"name": name, "scopes": ["image:upload"]}, format="json")

    body = assert_problem(response, status=409, code="CONFLICT", with_errors=True)
    assert body["title"] == "Token name in use"
    assert "A live token is already named 'ci-pipeline'" in body["detail"]
    assert live["prefix"] in body["detail"]
    assert [error["field"] for error in body["errors"]] == ["name"]
    assert body["errors"][0]["code"] == "taken"
    assert "token" not in body
    assert list(ServiceToken.objects.values_list("id", flat=True)) == [uuid.UUID(live["id"])]
    assert len(events("token.created")) == 1


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_the_name_of_a_revoked_or_expired_token_is_free_again(admin_client, ended):
    old = create_token(admin_client, name="ci-pipeline")
    payload = {"name": "ci-pipeline", "scopes": ["image:read"]}
    refused = admin_client.post(TOKENS, payload, format="json")
    assert_problem(refused, status=409, code="CONFLICT", with_errors=True)
    if ended == "revoked":
        assert admin_client.delete(detail_url(old["id"])).status_code == 204
    else:
        ServiceToken.objects.filter(id=old["id"]).update(expires_at=timezone.now())

    again = create_token(admin_client, name="ci-pipeline")

    assert again["id"] != old["id"]
    assert ServiceToken.objects.filter(name="ci-pipeline").count() == 2


def test_a_rotated_token_keeps_its_name_which_stays_taken(admin_client, issued):
    rotated = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 0}, format="json")
    assert rotated.status_code == 201, rotated.content
    assert rotated.json()["name"] == "deployer"

    response = admin_client.post(
        TOKENS, {"name": "deployer", "scopes": ["image:read"]}, format="json"
    )

    assert_problem(response, status=409, code="CONFLICT", with_errors=True)
    assert ServiceToken.objects.filter(name="deployer").count() == 2


def test_a_name_is_taken_only_within_its_organization(admin_client, outsider_client):
    create_token(admin_client, name="ci-pipeline")

    made = create_token(outsider_client, name="ci-pipeline")
    refused = outsider_client.post(
        TOKENS, {"name": "ci-pipeline", "scopes": ["image:read"]}, format="json"
    )

    assert ServiceToken.objects.get(id=made["id"]).organization.slug == "globex"
    assert_problem(refused, status=409, code="CONFLICT", with_errors=True)
    assert ServiceToken.objects.filter(name="ci-pipeline").count() == 2


# --- GET /tokens ------------------------------------------------------------------------


def test_list_is_paginated_newest_first_and_never_shows_a_secret(admin_client, time_machine):
    start = timezone.now()
    made = []
    for index in range(3):
        time_machine.move_to(start + dt.timedelta(seconds=index), tick=False)
        made.append(create_token(admin_client, name=f"token-{index}"))

    response = admin_client.get(TOKENS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert [item["id"] for item in body["results"]] == [t["id"] for t in reversed(made)]
    for item in body["results"]:
        assert set(item) == TOKEN_FIELDS
        assert "token" not in item
        assert "digest" not in item
    secrets = [t["token"] for t in made]
    assert not any(secret in response.content.decode() for secret in secrets)


def test_list_pages_with_page_size(admin_client):
    for index in range(3):
        create_token(admin_client, name=f"token-{index}")

    body = admin_client.get(TOKENS, {"page_size": 2}).json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_list_shows_only_the_callers_organization(admin_client, outsider_client):
    mine = create_token(admin_client, name="ours")
    theirs = create_token(outsider_client, name="theirs")

    ours_listed = [item["id"] for item in admin_client.get(TOKENS).json()["results"]]
    theirs_listed = [item["id"] for item in outsider_client.get(TOKENS).json()["results"]]

    assert ours_listed == [mine["id"]]
    assert theirs_listed == [theirs["id"]]


def test_list_of_twenty_tokens_costs_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    for index in range(20):
        create_token(admin_client, name=f"token-{index}")
    assert admin_client.get(TOKENS).status_code == 200  # warm the principal cache

    with django_assert_max_num_queries(4):
        response = admin_client.get(TOKENS)

    assert response.status_code == 200
    assert response.json()["count"] == 20
    assert len(response.json()["results"]) == 20


# --- GET /tokens/{id} -------------------------------------------------------------------


def test_detail_answers_the_token_without_its_secret(admin_client, issued, admin):
    response = admin_client.get(detail_url(issued["id"]))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["id"] == issued["id"]
    assert body["name"] == "deployer"
    assert body["scopes"] == ["image:read", "token:manage"]
    assert body["created_by"] == admin.username
    assert body["status"] == "active"


def test_detail_of_an_unknown_id_is_not_found(admin_client, issued):
    response = admin_client.get(detail_url(str(uuid.uuid4())))

    assert_problem(response, status=404, code="NOT_FOUND")


ID_ENDPOINTS = [
    ("get", detail_url, None),
    ("patch", detail_url, {"name": "stolen"}),
    ("delete", detail_url, {"reason": "stolen"}),
    ("post", rotate_url, {"grace_seconds": 0}),
    ("get", usage_url, None),
]


@pytest.mark.parametrize(
    ("method", "url", "payload"), ID_ENDPOINTS, ids=["get", "patch", "delete", "rotate", "usage"]
)
def test_another_organizations_admin_gets_not_found_and_changes_nothing(
    outsider_client, issued, method, url, payload
):
    response = getattr(outsider_client, method)(url(issued["id"]), payload, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.name == "deployer"
    assert token.revoked_at is None
    assert ServiceToken.objects.count() == 1
    assert as_token(issued["token"]).status_code == 200


ALL_ENDPOINTS = [
    ("get", lambda _id: TOKENS, None),
    ("post", lambda _id: TOKENS, {"name": "mine", "scopes": ["image:read"]}),
    *ID_ENDPOINTS,
    ("post", lambda _id: REVOKE_ALL, {"reason": "panic"}),
    ("get", lambda _id: EXPIRING, None),
]


@pytest.mark.parametrize("role_client", ["member_client", "viewer_client"])
@pytest.mark.parametrize(
    "endpoint",
    ALL_ENDPOINTS,
    ids=["list", "create", "get", "patch", "delete", "rotate", "usage", "revoke-all", "expiring"],
)
def test_roles_without_token_manage_are_denied_and_change_nothing(
    request, issued, role_client, endpoint
):
    method, url, payload = endpoint
    client = request.getfixturevalue(role_client)

    response = getattr(client, method)(url(issued["id"]), payload, format="json")

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "token:manage" in body["detail"]
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.name == "deployer"
    assert token.revoked_at is None
    assert ServiceToken.objects.count() == 1


def test_an_anonymous_caller_is_not_authenticated(api_client, issued):
    response = api_client.get(TOKENS)

    assert_problem(response, status=401, code="NOT_AUTHENTICATED")


# --- PATCH /tokens/{id} -----------------------------------------------------------------


def test_patch_renames_the_token_and_audits_it(admin_client, issued):
    response = admin_client.patch(detail_url(issued["id"]), {"name": "deployer-v2"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "deployer-v2"
    assert set(response.json()) == TOKEN_FIELDS
    assert ServiceToken.objects.get(id=issued["id"]).name == "deployer-v2"
    [event] = events("token.updated", resource_id=issued["id"])
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.details["name"] == {"from": "deployer", "to": "deployer-v2"}


@pytest.mark.parametrize("name", ["ci-pipeline", "CI-PIPELINE"])
def test_patch_refuses_a_live_tokens_name_and_changes_nothing(admin_client, issued, name):
    create_token(admin_client, name="ci-pipeline")

    response = admin_client.patch(
        detail_url(issued["id"]), {"name": name, "scopes": ["image:read"]}, format="json"
    )

    body = assert_problem(response, status=409, code="CONFLICT", with_errors=True)
    assert [error["field"] for error in body["errors"]] == ["name"]
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.name == "deployer"
    assert token.scopes == ["image:read", "token:manage"]
    assert not events("token.updated")


def test_patch_renames_within_a_rotation_family_and_to_a_name_once_its_token_ended(
    admin_client, issued
):
    rotated = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 600}, format="json")
    successor = rotated.json()["id"]
    other = create_token(admin_client, name="ci-pipeline")
    while_live = admin_client.patch(detail_url(successor), {"name": "ci-pipeline"}, format="json")
    assert admin_client.delete(detail_url(other["id"])).status_code == 204

    recased = admin_client.patch(detail_url(successor), {"name": "Deployer"}, format="json")
    renamed = admin_client.patch(detail_url(successor), {"name": "ci-pipeline"}, format="json")

    assert_problem(while_live, status=409, code="CONFLICT", with_errors=True)
    assert recased.status_code == 200, recased.content
    assert renamed.status_code == 200, renamed.content
    assert ServiceToken.objects.get(id=successor).name == "ci-pipeline"


@pytest.mark.django_db(transaction=True)
def test_narrowed_scopes_apply_from_the_tokens_next_request(admin_client, issued):
    secret = issued["token"]
    assert as_token(secret, TOKENS).status_code == 200  # warm: the token is cached

    response = admin_client.patch(
        detail_url(issued["id"]), {"scopes": ["image:read"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["scopes"] == ["image:read"]
    assert ServiceToken.objects.get(id=issued["id"]).scopes == ["image:read"]
    body = assert_problem(as_token(secret, TOKENS), status=403, code="PERMISSION_DENIED")
    assert "token:manage" in body["detail"]
    assert as_token(secret).status_code == 200  # still a valid principal
    [event] = events("token.updated", resource_id=issued["id"])
    assert event.details["scopes"] == {
        "from": ["image:read", "token:manage"],
        "to": ["image:read"],
    }


def test_patch_cannot_widen_the_scopes(admin_client, issued):
    response = admin_client.patch(
        detail_url(issued["id"]), {"scopes": ["image:read", "image:upload"]}, format="json"
    )

    body = invalid(response, "scopes")
    assert "image:upload" in body["detail"]
    assert ServiceToken.objects.get(id=issued["id"]).scopes == ["image:read", "token:manage"]
    assert not events("token.updated")


@pytest.mark.parametrize(
    "payload",
    [{}, {"scopes": []}, {"scopes": ["image:fly"]}, {"name": ""}],
    ids=["empty", "no-scopes", "unknown-scope", "blank-name"],
)
def test_patch_refuses_bad_input(admin_client, issued, payload):
    response = admin_client.patch(detail_url(issued["id"]), payload, format="json")

    invalid(response)
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.name == "deployer"
    assert token.scopes == ["image:read", "token:manage"]
    assert not events("token.updated")


def test_patch_of_an_unknown_id_is_not_found(admin_client):
    response = admin_client.patch(detail_url(str(uuid.uuid4())), {"name": "x"}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")


# --- DELETE /tokens/{id} ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_delete_revokes_the_token_from_its_next_request(admin_client, issued):
    secret = issued["token"]
    assert as_token(secret).status_code == 200  # warm: the token is cached

    response = admin_client.delete(
        detail_url(issued["id"]), {"reason": "leaked in a log"}, format="json"
    )

    assert response.status_code == 204
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.revoked_at is not None
    assert token.revoked_reason == "leaked in a log"
    shown = admin_client.get(detail_url(issued["id"])).json()
    assert shown["status"] == "revoked"
    assert shown["revoked_reason"] == "leaked in a log"
    assert close_to(shown["revoked_at"], timezone.now())
    assert_problem(as_token(secret), status=401, code="TOKEN_REVOKED")
    [event] = events("token.revoked", resource_id=issued["id"])
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.details["reason"] == "leaked in a log"


def test_delete_twice_is_idempotent_and_audited_once(admin_client, issued):
    first = admin_client.delete(detail_url(issued["id"]), {"reason": "first"}, format="json")
    revoked_at = ServiceToken.objects.get(id=issued["id"]).revoked_at

    second = admin_client.delete(detail_url(issued["id"]), {"reason": "second"}, format="json")

    assert first.status_code == 204
    assert second.status_code == 204
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.revoked_at == revoked_at
    assert token.revoked_reason == "first"
    assert len(events("token.revoked", resource_id=issued["id"])) == 1


def test_delete_without_a_body_revokes_with_a_default_reason(admin_client, issued):
    response = admin_client.delete(detail_url(issued["id"]))

    assert response.status_code == 204
    token = ServiceToken.objects.get(id=issued["id"])
    assert token.revoked_at is not None
    assert token.revoked_reason


def test_delete_refuses_an_overlong_reason(admin_client, issued):
    response = admin_client.delete(detail_url(issued["id"]), {"reason": "x" * 201}, format="json")

    invalid(response, "reason")
    assert ServiceToken.objects.get(id=issued["id"]).revoked_at is None


def test_delete_of_an_unknown_id_is_not_found(admin_client):
    response = admin_client.delete(detail_url(str(uuid.uuid4())))

    assert_problem(response, status=404, code="NOT_FOUND")


# --- POST /tokens/{id}/rotate -----------------------------------------------------------


def test_rotate_issues_a_successor_with_the_same_name_and_scopes(admin_client, issued, admin):
    before = timezone.now()

    response = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 600}, format="json")

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_FIELDS | {"token"}
    assert SECRET.match(body["token"])
    assert body["token"] != issued["token"]
    assert body["id"] != issued["id"]
    assert body["name"] == issued["name"]
    assert body["scopes"] == issued["scopes"]
    assert body["rotated_from"] == issued["id"]
    assert body["status"] == "active"
    assert body["created_by"] == admin.username
    successor = ServiceToken.objects.get(id=body["id"])
    assert successor.digest == hashlib.sha256(body["token"].encode()).hexdigest()
    old = admin_client.get(detail_url(issued["id"])).json()
    assert old["status"] == "rotating"
    assert old["revoked_at"] is None
    assert close_to(old["grace_until"], before + dt.timedelta(seconds=600))
    [event] = events("token.rotated", resource_id=issued["id"])
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.details["successor_id"] == body["id"]


@pytest.mark.django_db(transaction=True)
def test_the_old_token_works_during_the_grace_and_is_refused_after(
    admin_client, issued, time_machine
):
    now = timezone.now()
    time_machine.move_to(now, tick=False)
    old = issued["token"]
    assert as_token(old).status_code == 200  # warm: the token is cached

    response = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 600}, format="json")
    assert response.status_code == 201, response.content
    new = response.json()["token"]

    assert as_token(old).status_code == 200
    assert as_token(new).status_code == 200
    time_machine.move_to(now + dt.timedelta(seconds=599), tick=False)
    assert as_token(old).status_code == 200
    time_machine.move_to(now + dt.timedelta(seconds=601), tick=False)
    assert_problem(as_token(old), status=401, code="TOKEN_REVOKED")
    assert as_token(new).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_rotation_without_grace_refuses_the_old_token_at_once(admin_client, issued):
    old = issued["token"]
    assert as_token(old).status_code == 200  # warm: the token is cached

    response = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 0}, format="json")

    assert response.status_code == 201, response.content
    assert_problem(as_token(old), status=401, code="TOKEN_REVOKED")
    assert as_token(response.json()["token"]).status_code == 200
    assert admin_client.get(detail_url(issued["id"])).json()["status"] == "revoked"


@pytest.mark.parametrize("grace", [-1, 86401, "soon"])
def test_rotate_refuses_a_grace_out_of_range(admin_client, issued, grace):
    response = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": grace}, format="json")

    invalid(response, "grace_seconds")
    assert ServiceToken.objects.count() == 1
    assert ServiceToken.objects.get(id=issued["id"]).revoked_at is None
    assert not events("token.rotated")


def test_rotating_a_revoked_token_is_refused(admin_client, issued):
    assert admin_client.delete(detail_url(issued["id"])).status_code == 204

    response = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 60}, format="json")

    invalid(response)
    assert ServiceToken.objects.count() == 1
    assert not events("token.rotated")


def test_rotating_a_token_twice_is_refused_while_it_is_rotating(admin_client, issued):
    first = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 600}, format="json")
    assert first.status_code == 201

    second = admin_client.post(rotate_url(issued["id"]), {"grace_seconds": 600}, format="json")

    invalid(second)
    assert ServiceToken.objects.count() == 2


def test_a_token_cannot_obtain_scopes_it_lacks_by_rotating_a_wider_token(admin_client, issued):
    wider = create_token(admin_client, name="admin-bot", scopes=["image:upload", "org:admin"])

    response = APIClient().post(
        rotate_url(wider["id"]),
        {"grace_seconds": 60},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {issued['token']}",
    )

    assert response.status_code in (400, 403), response.content
    code = {400: "VALIDATION_ERROR", 403: "PERMISSION_DENIED"}[response.status_code]
    assert_problem(response, status=response.status_code, code=code)
    assert not ServiceToken.objects.filter(rotated_from_id=wider["id"]).exists()
    assert ServiceToken.objects.get(id=wider["id"]).revoked_at is None


def test_rotate_of_an_unknown_id_is_not_found(admin_client):
    response = admin_client.post(rotate_url(str(uuid.uuid4())), {"grace_seconds": 0}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")


# --- POST /tokens/revoke-all ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_revoke_all_revokes_every_live_token_of_the_organization_only(
    admin_client, outsider_client, org
):
    active = create_token(admin_client, name="active")
    rotating = create_token(admin_client, name="rotating")
    successor = admin_client.post(
        rotate_url(rotating["id"]), {"grace_seconds": 3600}, format="json"
    ).json()
    revoked = create_token(admin_client, name="revoked")
    assert admin_client.delete(detail_url(revoked["id"])).status_code == 204
    expired = create_token(admin_client, name="expired")
    ServiceToken.objects.filter(id=expired["id"]).update(
        expires_at=timezone.now() - dt.timedelta(days=1)
    )
    theirs = create_token(outsider_client, name="theirs")
    live = [active["token"], rotating["token"], successor["token"]]
    for secret in [*live, theirs["token"]]:
        assert as_token(secret).status_code == 200  # warm: every token is cached
    revoked_before = ServiceToken.objects.get(id=revoked["id"]).revoked_at

    response = admin_client.post(REVOKE_ALL, {"reason": "key leaked"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"revoked": 3}
    for secret in live:
        assert_problem(as_token(secret), status=401, code="TOKEN_REVOKED")
    assert as_token(theirs["token"]).status_code == 200
    assert ServiceToken.objects.get(id=theirs["id"]).revoked_at is None
    assert ServiceToken.objects.get(id=revoked["id"]).revoked_at == revoked_before
    assert ServiceToken.objects.get(id=expired["id"]).revoked_at is None
    [event] = events("token.emergency_revoke")
    assert event.organization_id == org.id
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.details["revoked"] == 3
    assert event.details["reason"] == "key leaked"


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "   "}])
def test_revoke_all_needs_a_reason(admin_client, issued, payload):
    response = admin_client.post(REVOKE_ALL, payload, format="json")

    invalid(response, "reason")
    assert ServiceToken.objects.get(id=issued["id"]).revoked_at is None
    assert not events("token.emergency_revoke")


def test_revoke_all_with_nothing_live_reports_zero(admin_client):
    response = admin_client.post(REVOKE_ALL, {"reason": "drill"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"revoked": 0}
    assert len(events("token.emergency_revoke")) == 1


# --- GET /tokens/{id}/usage -------------------------------------------------------------


def test_usage_counts_the_tokens_requests_per_day(admin_client, issued):
    for _ in range(3):
        assert as_token(issued["token"]).status_code == 200

    response = admin_client.get(usage_url(issued["id"]), {"days": 7})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"usage_count", "last_used_at", "daily"}
    assert body["usage_count"] == 3
    assert body["last_used_at"] is not None
    assert close_to(body["last_used_at"], timezone.now(), seconds=120)
    today = timezone.now().date()
    assert [day["date"] for day in body["daily"]] == [
        (today - dt.timedelta(days=n)).isoformat() for n in range(6, -1, -1)
    ]
    assert all(set(day) == {"date", "requests"} for day in body["daily"])
    assert body["daily"][-1]["requests"] == 3
    assert all(day["requests"] == 0 for day in body["daily"][:-1])
    assert TokenUsageDay.objects.get(token_id=issued["id"], date=today).requests == 3


def test_usage_of_an_unused_token_is_zero_for_thirty_days_by_default(admin_client, issued):
    body = admin_client.get(usage_url(issued["id"])).json()

    assert body["usage_count"] == 0
    assert body["last_used_at"] is None
    assert len(body["daily"]) == 30
    assert all(day["requests"] == 0 for day in body["daily"])


@pytest.mark.parametrize("days", [0, 400, "week"])
def test_usage_refuses_days_out_of_range(admin_client, issued, days):
    response = admin_client.get(usage_url(issued["id"]), {"days": days})

    invalid(response, "days")


def test_usage_of_an_unknown_id_is_not_found(admin_client):
    response = admin_client.get(usage_url(str(uuid.uuid4())))

    assert_problem(response, status=404, code="NOT_FOUND")


# --- GET /tokens/expiring ---------------------------------------------------------------


def test_expiring_lists_active_tokens_expiring_within_the_days_soonest_first(
    admin_client, outsider_client
):
    in_three = create_token(admin_client, name="three", expires_in_days=3)
    create_token(admin_client, name="thirty", expires_in_days=30)
    revoked = create_token(admin_client, name="revoked", expires_in_days=3)
    assert admin_client.delete(detail_url(revoked["id"])).status_code == 204
    in_one = create_token(admin_client, name="one", expires_in_days=1)
    create_token(outsider_client, name="theirs", expires_in_days=2)

    response = admin_client.get(EXPIRING, {"days": 7})

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body] == [in_one["id"], in_three["id"]]
    for item in body:
        assert set(item) == TOKEN_FIELDS
        assert item["status"] == "active"


def test_expiring_leaves_out_a_token_being_rotated(admin_client):
    old = create_token(admin_client, name="rotated", expires_in_days=3)
    rotated = admin_client.post(rotate_url(old["id"]), {"grace_seconds": 3600}, format="json")
    assert rotated.status_code == 201
    assert admin_client.get(detail_url(old["id"])).json()["status"] == "rotating"

    body = admin_client.get(EXPIRING, {"days": 7}).json()

    assert [item["id"] for item in body] == [rotated.json()["id"]]
    assert all(item["status"] == "active" for item in body)


def test_expiring_defaults_to_seven_days(admin_client):
    week = create_token(admin_client, name="week", expires_in_days=7)
    create_token(admin_client, name="eight", expires_in_days=8)

    body = admin_client.get(EXPIRING).json()

    assert [item["id"] for item in body] == [week["id"]]


@pytest.mark.parametrize("days", [0, 400, "soon"])
def test_expiring_refuses_days_out_of_range(admin_client, days):
    response = admin_client.get(EXPIRING, {"days": days})

    invalid(response, "days")
