"""A service token as a machine identity: reading itself, rotating itself (with reuse
detection and concurrent rotations), its allow-list of client networks, and the
organization's token policy that bounds every token created or rotated.

A change that must reach a token's next request once the token is cached (rotation,
family revocation, a new allow-list, the creator's demotion) is pushed into the cache
after commit, so those tests run with real commits (transaction=True).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, ServiceToken
from accounts.services.token_rotations import CONCURRENT_ROTATION_SECONDS
from accounts.tests.factories import (
    SECRET,
    TOKEN_FIELDS,
    MembershipFactory,
    close_to,
    create_token,
    detail_url,
    invalid,
    parse,
    rotate_url,
    usage_url,
)
from audit.models import AuditEvent
from audit.tests.factories import audit_events as events
from config.testing.http import assert_problem, login_client

TOKENS = "/api/v1/tokens"
SELF = "/api/v1/tokens/self"
SELF_ROTATE = "/api/v1/tokens/self/rotate"
POLICY = "/api/v1/orgs/current/token-policy"
MEMBERS = "/api/v1/orgs/current/members"
GROUPS = "/api/v1/orgs/current/groups"
ORG_CURRENT = "/api/v1/orgs/current"

SELF_FIELDS = TOKEN_FIELDS | {"organization", "effective_permissions"}
ROTATING_SCOPES = ["image:read", "token:self_rotate"]
ALLOWED_NET = "203.0.113.0/24"
INSIDE = "203.0.113.9"
OUTSIDE = "198.51.100.1"


def token_get(secret: str, path: str = SELF, **extra: Any) -> Any:
    """Make one GET request authenticated by the service token (Bearer)."""
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}", **extra)


def token_post(secret: str, path: str, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    """Make one JSON POST request authenticated by the service token (Bearer)."""
    return APIClient().post(
        path, body or {}, format="json", HTTP_AUTHORIZATION=f"Bearer {secret}", **extra
    )


def self_rotated(secret: str, **body: Any) -> dict[str, Any]:
    """Rotate the presenting token through the API and return the 201 body (with its secret)."""
    response = token_post(secret, SELF_ROTATE, body)
    assert response.status_code == 201, response.content
    return response.json()


def rotator(client: APIClient, **body: Any) -> dict[str, Any]:
    """A token that may rotate itself (scope `token:self_rotate`)."""
    return create_token(client, **{"name": "pipeline", "scopes": ROTATING_SCOPES, **body})


def next_minute() -> dt.datetime:
    """The start of the next minute: travelled to so that audits once a minute line up."""
    return timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def demote(org: Organization, user: Any, role: str) -> None:
    """Change `user`'s role through the API, as a second admin of `org`."""
    second_admin = MembershipFactory(organization=org, role="admin").user
    response = login_client(second_admin).patch(
        f"{MEMBERS}/{user.id}", {"role": role}, format="json"
    )
    assert response.status_code == 200, response.content


def successors_of(token_id: str) -> int:
    return ServiceToken.objects.filter(rotated_from_id=uuid.UUID(token_id)).count()


def on_its_own_connection(work: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap work run in a pool thread: the thread's database connections close after it."""

    @functools.wraps(work)
    def run(*args: Any) -> Any:
        try:
            return work(*args)
        finally:
            connections.close_all()

    return run


def wait_until_a_request_waits_for_a_row_lock(timeout: float = 10) -> None:
    """Return once another connection waits for a row lock (PostgreSQL), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("no request came to wait for the token's row lock")


# --- GET /tokens/self -------------------------------------------------------------------


def test_a_token_reads_its_own_record_with_its_organization_and_permissions(
    admin_client, admin, org
):
    token = create_token(
        admin_client, name="deployer", scopes=["image:read", "token:manage", "token:self_rotate"]
    )

    response = APIClient().get(SELF, HTTP_X_API_KEY=token["token"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == SELF_FIELDS
    assert body["id"] == token["id"]
    assert body["name"] == "deployer"
    assert body["prefix"] == token["token"][:12]
    assert body["scopes"] == ["image:read", "token:manage", "token:self_rotate"]
    assert body["created_by"] == admin.username
    assert body["status"] == "active"
    assert body["grace_until"] is None
    assert body["allowed_ips"] == []
    assert body["organization"] == {"id": str(org.id), "slug": "acme", "name": "Acme"}
    assert body["effective_permissions"] == ["image:read", "token:manage", "token:self_rotate"]
    assert token["token"] not in response.content.decode()


def test_each_token_reads_only_itself_and_its_own_organization(
    admin_client, outsider_client, other_org
):
    ours = create_token(admin_client, name="ours")
    theirs = create_token(outsider_client, name="theirs")

    body = token_get(theirs["token"]).json()

    assert body["id"] == theirs["id"]
    assert body["organization"]["id"] == str(other_org.id)
    assert token_get(ours["token"]).json()["id"] == ours["id"]


def test_a_token_in_its_rotation_grace_reads_status_rotating_and_grace_until(admin_client):
    old = create_token(admin_client, name="deployer")
    before = timezone.now()
    rotated = admin_client.post(rotate_url(old["id"]), {"grace_seconds": 600}, format="json")
    assert rotated.status_code == 201, rotated.content

    body = token_get(old["token"]).json()

    assert body["id"] == old["id"]
    assert body["status"] == "rotating"
    assert close_to(body["grace_until"], before + dt.timedelta(seconds=600))
    assert body["revoked_at"] is None
    successor = token_get(rotated.json()["token"]).json()
    assert successor["status"] == "active"
    assert successor["rotated_from"] == old["id"]
    assert successor["family_id"] == old["id"]


@pytest.mark.django_db(transaction=True)
def test_demoting_the_creator_shrinks_the_effective_permissions_at_once(admin_client, admin, org):
    token = create_token(
        admin_client, name="deployer", scopes=["image:read", "token:manage", "token:self_rotate"]
    )
    before = token_get(token["token"]).json()  # warm: token and creator cached
    assert before["effective_permissions"] == ["image:read", "token:manage", "token:self_rotate"]

    demote(org, admin, "user")

    after = token_get(token["token"]).json()
    assert after["effective_permissions"] == ["image:read"]
    assert after["scopes"] == ["image:read", "token:manage", "token:self_rotate"]


def test_a_person_has_no_token_record_of_their_own(admin_client):
    response = admin_client.get(SELF)

    assert_problem(response, status=403, code="PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("method", "path"), [("get", SELF), ("post", SELF_ROTATE)], ids=["self", "self-rotate"]
)
def test_an_anonymous_caller_is_not_authenticated_on_the_self_endpoints(api_client, method, path):
    response = getattr(api_client, method)(path)

    assert_problem(response, status=401, code="NOT_AUTHENTICATED")


def test_a_revoked_token_cannot_read_itself(admin_client):
    token = create_token(admin_client)
    assert admin_client.delete(detail_url(token["id"])).status_code == 204

    response = token_get(token["token"])

    assert_problem(response, status=401, code="TOKEN_REVOKED")


# --- POST /tokens/self/rotate -----------------------------------------------------------


def test_self_rotate_issues_a_successor_with_the_same_name_scopes_and_allow_list(
    admin_client, admin, org
):
    old = rotator(admin_client, expires_in_days=30, allowed_ips=[ALLOWED_NET])
    before = timezone.now()

    response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": 600}, REMOTE_ADDR=INSIDE)

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == TOKEN_FIELDS | {"token"}
    assert SECRET.match(body["token"])
    assert body["token"] != old["token"]
    assert body["id"] != old["id"]
    assert body["name"] == "pipeline"
    assert body["scopes"] == ROTATING_SCOPES
    assert body["allowed_ips"] == [ALLOWED_NET]
    assert body["rotated_from"] == old["id"]
    assert body["family_id"] == old["id"]
    assert body["self_rotated"] is True
    assert body["rotated_by"] == "pipeline"
    assert body["created_by"] == admin.username
    assert body["status"] == "active"
    assert close_to(body["expires_at"], before + dt.timedelta(days=30))
    successor = ServiceToken.objects.get(id=body["id"])
    assert successor.digest == hashlib.sha256(body["token"].encode()).hexdigest()
    assert successor.organization_id == org.id
    assert token_get(body["token"], REMOTE_ADDR=INSIDE).status_code == 200
    shown = token_get(old["token"], REMOTE_ADDR=INSIDE).json()
    assert shown["status"] == "rotating"
    assert close_to(shown["grace_until"], before + dt.timedelta(seconds=600))
    [event] = events("token.rotated", resource_id=old["id"])
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.actor_type == "service_token"
    assert event.actor_id == old["id"]
    assert event.details["successor_id"] == body["id"]
    assert event.details["self_rotated"] is True


def test_self_rotate_keeps_the_predecessor_an_hour_by_default(admin_client):
    old = rotator(admin_client)
    before = timezone.now()

    self_rotated(old["token"])

    row = ServiceToken.objects.get(id=old["id"])
    assert row.revoked_at is not None
    assert abs(row.revoked_at - (before + dt.timedelta(hours=1))) < dt.timedelta(seconds=30)


def test_self_rotate_gives_the_original_lifetime_counted_from_now(admin_client, time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    old = rotator(admin_client, expires_in_days=30)
    later = start + dt.timedelta(days=10)
    time_machine.move_to(later, tick=False)

    body = self_rotated(old["token"])

    assert parse(body["expires_at"]) == later + dt.timedelta(days=30)


@pytest.mark.django_db(transaction=True)
def test_the_predecessor_works_through_its_grace_then_is_refused_and_audited(
    admin_client, time_machine
):
    start = next_minute()
    time_machine.move_to(start, tick=False)
    old = rotator(admin_client)
    assert token_get(old["token"]).status_code == 200  # warm: the token is cached

    new = self_rotated(old["token"], grace_seconds=600)

    assert token_get(new["token"]).status_code == 200
    time_machine.move_to(start + dt.timedelta(seconds=599), tick=False)
    assert token_get(old["token"], ORG_CURRENT).status_code == 200
    time_machine.move_to(start + dt.timedelta(seconds=601), tick=False)
    assert_problem(token_get(old["token"], ORG_CURRENT), status=401, code="TOKEN_REVOKED")
    time_machine.move_to(start + dt.timedelta(seconds=630), tick=False)
    assert_problem(token_get(old["token"], ORG_CURRENT), status=401, code="TOKEN_REVOKED")
    assert token_get(new["token"], ORG_CURRENT).status_code == 200
    [event] = events("token.used_after_revocation", resource_id=old["id"])
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.actor_id == old["id"]
    assert event.details["reason"] == "revoked"


@pytest.mark.django_db(transaction=True)
def test_self_rotate_without_grace_refuses_the_predecessor_at_once(admin_client):
    old = rotator(admin_client)
    assert token_get(old["token"]).status_code == 200  # warm: the token is cached

    new = self_rotated(old["token"], grace_seconds=0)

    assert_problem(token_get(old["token"]), status=401, code="TOKEN_REVOKED")
    assert token_get(new["token"]).status_code == 200


@pytest.mark.parametrize("grace", [-1, 86401, "x"])
def test_self_rotate_refuses_a_grace_out_of_range_and_changes_nothing(admin_client, grace):
    old = rotator(admin_client)

    response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": grace})

    invalid(response, "grace_seconds")
    assert ServiceToken.objects.count() == 1
    assert ServiceToken.objects.get(id=old["id"]).revoked_at is None
    assert not events("token.rotated")
    assert token_get(old["token"]).json()["status"] == "active"


def test_self_rotate_needs_the_token_self_rotate_scope(admin_client):
    token = create_token(admin_client, name="manager", scopes=["image:read", "token:manage"])

    response = token_post(token["token"], SELF_ROTATE, {"grace_seconds": 60})

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "token:self_rotate" in body["detail"]
    assert successors_of(token["id"]) == 0
    assert ServiceToken.objects.get(id=token["id"]).revoked_at is None


def test_a_person_cannot_self_rotate(admin_client):
    create_token(admin_client)

    response = admin_client.post(SELF_ROTATE, {"grace_seconds": 60}, format="json")

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert ServiceToken.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_demoting_the_creator_takes_self_rotation_away(admin_client, admin, org):
    token = rotator(admin_client)
    assert token_get(token["token"]).status_code == 200  # warm: token and creator cached

    demote(org, admin, "user")

    response = token_post(token["token"], SELF_ROTATE, {"grace_seconds": 60})
    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "token:self_rotate" in body["detail"]
    assert successors_of(token["id"]) == 0
    assert token_get(token["token"], ORG_CURRENT).status_code == 200  # image:read survives


@pytest.mark.parametrize("stale", ["first", "middle"])
@pytest.mark.django_db(transaction=True)
def test_presenting_a_rotated_out_token_again_revokes_its_whole_family(
    admin_client, org, time_machine, stale
):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    first = rotator(admin_client)
    middle = self_rotated(first["token"])
    newest = self_rotated(middle["token"])
    family = [first, middle, newest]
    for token in family:
        assert token_get(token["token"]).status_code == 200  # warm: each one live and cached
    presented = first if stale == "first" else middle
    later = start + dt.timedelta(seconds=CONCURRENT_ROTATION_SECONDS + 1)
    time_machine.move_to(later, tick=False)

    response = token_post(presented["token"], SELF_ROTATE, {"grace_seconds": 60})

    assert_problem(response, status=401, code="TOKEN_REVOKED")
    for token in family:
        assert_problem(token_get(token["token"]), status=401, code="TOKEN_REVOKED")
    assert ServiceToken.objects.count() == 3
    for row in ServiceToken.objects.all():
        assert row.revoked_at == later
        assert row.family_id is not None
        assert str(row.family_id) == first["id"]
    [event] = events("token.rotation_reuse_detected")
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.organization_id == org.id
    assert event.resource_id == presented["id"]
    assert event.details["family_id"] == first["id"]
    assert sorted(event.details["revoked"]) == sorted(token["id"] for token in family)


@pytest.mark.django_db(transaction=True)
def test_a_token_rotated_out_without_grace_presented_again_still_revokes_its_family(
    admin_client, org, time_machine
):
    # Whoever rotates a stolen copy first chooses the grace: with none, the owner's next
    # self-rotation with the old token is the only sign of the theft.
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    first = rotator(admin_client)
    newest = self_rotated(first["token"], grace_seconds=0)
    assert token_get(newest["token"]).status_code == 200  # warm: live and cached
    time_machine.move_to(start + dt.timedelta(seconds=CONCURRENT_ROTATION_SECONDS + 1), tick=False)

    response = token_post(first["token"], SELF_ROTATE, {"grace_seconds": 60})

    assert_problem(response, status=401, code="TOKEN_REVOKED")
    assert_problem(token_get(newest["token"]), status=401, code="TOKEN_REVOKED")
    assert ServiceToken.objects.get(id=newest["id"]).revoked_at is not None
    [event] = events("token.rotation_reuse_detected")
    assert event.organization_id == org.id
    assert event.details["family_id"] == first["id"]


def test_presenting_a_rotated_token_again_at_once_is_a_conflict_that_revokes_nothing(
    admin_client, time_machine
):
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    old = rotator(admin_client)
    new = self_rotated(old["token"])
    time_machine.move_to(start + dt.timedelta(seconds=CONCURRENT_ROTATION_SECONDS - 1), tick=False)

    response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": 60})

    assert_problem(response, status=409, code="CONFLICT")
    assert ServiceToken.objects.count() == 2
    assert ServiceToken.objects.get(id=new["id"]).revoked_at is None
    assert ServiceToken.objects.get(id=old["id"]).revoked_reason == "rotated"
    assert not events("token.rotation_reuse_detected")
    assert token_get(old["token"]).status_code == 200
    assert token_get(new["token"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_self_rotations_of_the_newest_token_make_exactly_one_successor(admin_client):
    old = rotator(admin_client)
    assert token_get(old["token"]).status_code == 200  # warm: the token is cached
    attempts = 4
    start_together = threading.Barrier(attempts)

    @on_its_own_connection
    def rotate(_: int) -> Any:
        start_together.wait(timeout=10)
        return token_post(old["token"], SELF_ROTATE, {"grace_seconds": 600})

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        responses = list(pool.map(rotate, range(attempts)))

    made = [response for response in responses if response.status_code == 201]
    refused = [response for response in responses if response.status_code != 201]
    assert len(made) == 1, [response.content for response in responses]
    for response in refused:
        assert_problem(response, status=409, code="CONFLICT")
    [successor] = ServiceToken.objects.filter(rotated_from_id=old["id"])
    assert str(successor.id) == made[0].json()["id"]
    assert ServiceToken.objects.count() == 2
    assert len(events("token.rotated", resource_id=old["id"])) == 1
    assert not events("token.rotation_reuse_detected")
    assert token_get(made[0].json()["token"]).status_code == 200
    assert token_get(old["token"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_while_its_self_rotation_waits_for_it_stays_revoked(admin_client):
    # The self-rotation has passed authentication and waits for the token's row while an
    # admin's revocation holds it; once the revocation commits, the rotation must not
    # hand out a successor nor turn the revocation back into a rotation grace.
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks to hold the rotation at the token's row")
    token = rotator(admin_client)
    assert token_get(token["token"]).status_code == 200  # warm: the token is cached
    holding = threading.Event()
    revoke_now = threading.Event()

    @on_its_own_connection
    def revoke_while_holding_the_row() -> Any:
        with transaction.atomic():
            ServiceToken.objects.select_for_update().get(id=token["id"])
            holding.set()
            assert revoke_now.wait(timeout=10)
            return admin_client.delete(detail_url(token["id"]), {"reason": "leaked"}, format="json")

    @on_its_own_connection
    def rotate() -> Any:
        assert holding.wait(timeout=10)
        return token_post(token["token"], SELF_ROTATE, {"grace_seconds": 600})

    with ThreadPoolExecutor(max_workers=2) as pool:
        revoking = pool.submit(revoke_while_holding_the_row)
        rotating = pool.submit(rotate)
        holding.wait(timeout=10)
        wait_until_a_request_waits_for_a_row_lock()
        revoke_now.set()
        revoked, response = revoking.result(), rotating.result()

    assert revoked.status_code == 204, revoked.content
    assert response.status_code in (400, 401), response.content
    code = {400: "VALIDATION_ERROR", 401: "TOKEN_REVOKED"}[response.status_code]
    assert_problem(response, status=response.status_code, code=code)
    assert successors_of(token["id"]) == 0
    row = ServiceToken.objects.get(id=token["id"])
    assert row.revoked_reason == "leaked"
    assert row.revoked_at is not None
    assert row.revoked_at <= timezone.now()
    assert_problem(token_get(token["token"]), status=401, code="TOKEN_REVOKED")


@pytest.mark.django_db(transaction=True)
def test_a_successor_committed_while_revoke_all_waits_is_revoked_too(admin_client):
    # The self-rotation has made its successor but not committed when an emergency
    # revocation of every token starts: the successor must not be left out of it for
    # having been invisible when the revocation began.
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks to hold the revocation behind the rotation")
    token = rotator(admin_client)
    assert token_get(token["token"]).status_code == 200  # warm: the token is cached
    rotated = threading.Event()
    commit_now = threading.Event()

    @on_its_own_connection
    def rotate_and_hold_the_commit() -> Any:
        with transaction.atomic():
            response = token_post(token["token"], SELF_ROTATE, {"grace_seconds": 600})
            rotated.set()
            assert commit_now.wait(timeout=10)
            return response

    @on_its_own_connection
    def revoke_all() -> Any:
        assert rotated.wait(timeout=10)
        return admin_client.post(f"{TOKENS}/revoke-all", {"reason": "leak"}, format="json")

    with ThreadPoolExecutor(max_workers=2) as pool:
        rotating = pool.submit(rotate_and_hold_the_commit)
        revoking = pool.submit(revoke_all)
        assert rotated.wait(timeout=10)
        wait_until_a_request_waits_for_a_row_lock()
        commit_now.set()
        response, revoked = rotating.result(), revoking.result()

    assert response.status_code == 201, response.content
    assert revoked.status_code == 200, revoked.content
    assert revoked.json() == {"revoked": 2}
    successor = ServiceToken.objects.get(rotated_from_id=token["id"])
    assert successor.revoked_reason == "emergency: leak"
    assert_problem(token_get(response.json()["token"]), status=401, code="TOKEN_REVOKED")
    assert_problem(token_get(token["token"]), status=401, code="TOKEN_REVOKED")


# --- Granting token:self_rotate ---------------------------------------------------------


def test_an_admin_grants_token_self_rotate_and_it_is_listed(admin_client):
    made = create_token(admin_client, name="pipeline", scopes=["token:self_rotate"])

    listed = admin_client.get(TOKENS).json()["results"]
    shown = admin_client.get(detail_url(made["id"])).json()

    assert made["scopes"] == ["token:self_rotate"]
    assert [item["scopes"] for item in listed] == [["token:self_rotate"]]
    assert shown["scopes"] == ["token:self_rotate"]
    assert token_get(made["token"]).json()["effective_permissions"] == ["token:self_rotate"]


def test_a_member_cannot_create_a_self_rotating_token(member_client):
    response = member_client.post(
        TOKENS, {"name": "pipeline", "scopes": ["token:self_rotate"]}, format="json"
    )

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert not ServiceToken.objects.exists()


def test_token_self_rotate_does_not_stand_in_for_token_manage(admin_client):
    token = create_token(admin_client, name="pipeline", scopes=["token:self_rotate"])

    listing = token_get(token["token"], TOKENS)
    creating = token_post(token["token"], TOKENS, {"name": "more", "scopes": ["token:self_rotate"]})

    assert_problem(listing, status=403, code="PERMISSION_DENIED")
    assert_problem(creating, status=403, code="PERMISSION_DENIED")
    assert ServiceToken.objects.count() == 1


def test_token_self_rotate_cannot_be_granted_by_a_group(admin_client):
    response = admin_client.post(
        GROUPS, {"name": "rotators", "permissions": ["token:self_rotate"]}, format="json"
    )

    invalid(response, "permissions")


# --- allowed_ips: stored ----------------------------------------------------------------


def test_create_stores_the_allow_list_in_canonical_form_and_lists_it(admin_client):
    canonical = ["10.1.2.0/24", "192.0.2.7/32", "2001:db8::/32", "2001:db8::1/128"]

    made = create_token(
        admin_client, allowed_ips=["10.1.2.0/24", " 192.0.2.7 ", "2001:DB8::/32", "2001:db8:0::1"]
    )

    assert made["allowed_ips"] == canonical
    assert ServiceToken.objects.get(id=made["id"]).allowed_ips == canonical
    [listed] = admin_client.get(TOKENS).json()["results"]
    assert listed["allowed_ips"] == canonical
    assert admin_client.get(detail_url(made["id"])).json()["allowed_ips"] == canonical
    [event] = events("token.created", resource_id=made["id"])
    assert event.details["allowed_ips"] == canonical


@pytest.mark.parametrize(
    "allowed_ips",
    [["999.1.1.1"], ["10.0.0.7/24"], [""], [f"10.0.{n}.0/24" for n in range(33)], "10.0.0.1"],
    ids=["bad-address", "host-bits-set", "empty-entry", "33-entries", "not-a-list"],
)
def test_create_refuses_a_bad_allow_list_and_creates_nothing(admin_client, allowed_ips):
    response = admin_client.post(
        TOKENS,
        {"name": "ci", "scopes": ["image:read"], "allowed_ips": allowed_ips},
        format="json",
    )

    invalid(response, "allowed_ips")
    assert not ServiceToken.objects.exists()
    assert not events("token.created")


def test_patch_replaces_the_allow_list_or_clears_it_and_is_audited(admin_client):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])

    replaced = admin_client.patch(
        detail_url(token["id"]), {"allowed_ips": ["2001:db8::/48", "198.51.100.7"]}, format="json"
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["allowed_ips"] == ["2001:db8::/48", "198.51.100.7/32"]
    cleared = admin_client.patch(detail_url(token["id"]), {"allowed_ips": []}, format="json")

    assert cleared.status_code == 200, cleared.content
    assert cleared.json()["allowed_ips"] == []
    assert ServiceToken.objects.get(id=token["id"]).allowed_ips == []
    first, second = events("token.updated", resource_id=token["id"])
    assert first.details["allowed_ips"] == {
        "from": [ALLOWED_NET],
        "to": ["2001:db8::/48", "198.51.100.7/32"],
    }
    assert second.details["allowed_ips"] == {"from": ["2001:db8::/48", "198.51.100.7/32"], "to": []}


@pytest.mark.parametrize("allowed_ips", [["10.0.0.7/24"], ["999.1.1.1"], [""]])
def test_patch_refuses_a_bad_allow_list_and_changes_nothing(admin_client, allowed_ips):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])

    response = admin_client.patch(
        detail_url(token["id"]), {"allowed_ips": allowed_ips}, format="json"
    )

    invalid(response, "allowed_ips")
    assert ServiceToken.objects.get(id=token["id"]).allowed_ips == [ALLOWED_NET]
    assert not events("token.updated")


def test_another_organizations_admin_cannot_change_the_allow_list(outsider_client, admin_client):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])

    response = outsider_client.patch(detail_url(token["id"]), {"allowed_ips": []}, format="json")

    assert_problem(response, status=404, code="NOT_FOUND")
    assert ServiceToken.objects.get(id=token["id"]).allowed_ips == [ALLOWED_NET]


# --- allowed_ips: enforced --------------------------------------------------------------


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_a_token_works_from_an_allowed_address_and_is_refused_from_another(admin_client, header):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])
    credentials = (
        {"HTTP_AUTHORIZATION": f"Bearer {token['token']}"}
        if header == "bearer"
        else {"HTTP_X_API_KEY": token["token"]}
    )

    inside = APIClient().get(ORG_CURRENT, REMOTE_ADDR=INSIDE, **credentials)
    outside = APIClient().get(ORG_CURRENT, REMOTE_ADDR=OUTSIDE, **credentials)

    assert inside.status_code == 200, inside.content
    body = assert_problem(outside, status=403, code="IP_NOT_ALLOWED")
    assert OUTSIDE in body["detail"]


def test_a_refused_address_is_audited_once_a_minute_per_token(admin_client, org, time_machine):
    start = next_minute()
    time_machine.move_to(start, tick=False)
    token = create_token(admin_client, name="first", allowed_ips=[ALLOWED_NET])
    other = create_token(admin_client, name="second", allowed_ips=[ALLOWED_NET])

    for second in (1, 30):
        time_machine.move_to(start + dt.timedelta(seconds=second), tick=False)
        refused = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR=OUTSIDE)
        assert_problem(refused, status=403, code="IP_NOT_ALLOWED")
    assert_problem(
        token_get(other["token"], ORG_CURRENT, REMOTE_ADDR=OUTSIDE),
        status=403,
        code="IP_NOT_ALLOWED",
    )

    [event] = events("token.ip_denied", resource_id=token["id"])
    assert event.outcome == AuditEvent.Outcome.DENIED
    assert event.organization_id == org.id
    assert event.actor_type == "service_token"
    assert event.actor_id == token["id"]
    assert event.ip == OUTSIDE
    assert event.details["ip"] == OUTSIDE
    assert event.details["allowed_ips"] == [ALLOWED_NET]
    assert len(events("token.ip_denied", resource_id=other["id"])) == 1

    time_machine.move_to(start + dt.timedelta(seconds=61), tick=False)
    assert token_get(token["token"], ORG_CURRENT, REMOTE_ADDR=OUTSIDE).status_code == 403

    assert len(events("token.ip_denied", resource_id=token["id"])) == 2


def test_a_refused_address_is_not_counted_as_a_use_of_the_token(admin_client):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])
    assert token_get(token["token"], ORG_CURRENT, REMOTE_ADDR=OUTSIDE).status_code == 403

    usage = admin_client.get(usage_url(token["id"])).json()

    assert usage["usage_count"] == 0
    assert usage["last_used_at"] is None
    assert ServiceToken.objects.get(id=token["id"]).last_used_ip is None


def test_an_ipv6_client_is_checked_against_an_ipv6_network(admin_client):
    token = create_token(admin_client, allowed_ips=["2001:db8::/32"])

    inside = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="2001:db8::5")
    outside = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="2001:db9::5")
    ipv4 = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="127.0.0.1")

    assert inside.status_code == 200, inside.content
    assert_problem(outside, status=403, code="IP_NOT_ALLOWED")
    assert_problem(ipv4, status=403, code="IP_NOT_ALLOWED")


def test_an_ipv4_mapped_ipv6_client_matches_an_ipv4_network(admin_client):
    token = create_token(admin_client, allowed_ips=["10.1.2.0/24"])

    inside = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="::ffff:10.1.2.3")
    outside = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="::ffff:10.9.9.9")

    assert inside.status_code == 200, inside.content
    assert_problem(outside, status=403, code="IP_NOT_ALLOWED")


def test_an_ipv4_mapped_network_is_stored_as_the_ipv4_network_it_names(admin_client):
    token = create_token(admin_client, allowed_ips=["::ffff:10.1.2.0/120"])

    assert token["allowed_ips"] == ["10.1.2.0/24"]
    inside = token_get(token["token"], ORG_CURRENT, REMOTE_ADDR="10.1.2.3")
    assert inside.status_code == 200, inside.content


def test_behind_one_trusted_proxy_the_client_is_the_last_forwarded_address(admin_client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    allowed = token_get(
        token["token"], ORG_CURRENT, HTTP_X_FORWARDED_FOR=f"{OUTSIDE}, {INSIDE}", **proxy
    )
    forged = token_get(
        token["token"], ORG_CURRENT, HTTP_X_FORWARDED_FOR=f"{INSIDE}, {OUTSIDE}", **proxy
    )

    assert allowed.status_code == 200, allowed.content
    body = assert_problem(forged, status=403, code="IP_NOT_ALLOWED")
    assert OUTSIDE in body["detail"]


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(admin_client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])

    from_outside = token_get(
        token["token"], ORG_CURRENT, REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR=INSIDE
    )
    from_inside = token_get(
        token["token"], ORG_CURRENT, REMOTE_ADDR=INSIDE, HTTP_X_FORWARDED_FOR=OUTSIDE
    )

    assert_problem(from_outside, status=403, code="IP_NOT_ALLOWED")
    assert from_inside.status_code == 200, from_inside.content


def test_the_address_is_refused_before_any_permission_check(admin_client):
    token = create_token(admin_client, scopes=["image:read"], allowed_ips=[ALLOWED_NET])

    from_outside = token_get(token["token"], TOKENS, REMOTE_ADDR=OUTSIDE)
    from_inside = token_get(token["token"], TOKENS, REMOTE_ADDR=INSIDE)

    assert_problem(from_outside, status=403, code="IP_NOT_ALLOWED")
    assert_problem(from_inside, status=403, code="PERMISSION_DENIED")
    assert len(events("authz.denied")) == 1


def test_a_token_cannot_self_rotate_from_a_refused_address(admin_client):
    token = rotator(admin_client, allowed_ips=[ALLOWED_NET])

    response = token_post(token["token"], SELF_ROTATE, {"grace_seconds": 60}, REMOTE_ADDR=OUTSIDE)

    assert_problem(response, status=403, code="IP_NOT_ALLOWED")
    assert successors_of(token["id"]) == 0


@pytest.mark.parametrize("by", ["admin", "itself"])
def test_the_allow_list_survives_rotation(admin_client, by):
    old = rotator(admin_client, allowed_ips=[ALLOWED_NET, "2001:db8::/32"])

    if by == "admin":
        response = admin_client.post(rotate_url(old["id"]), {"grace_seconds": 60}, format="json")
    else:
        response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": 60}, REMOTE_ADDR=INSIDE)

    assert response.status_code == 201, response.content
    new = response.json()
    assert new["allowed_ips"] == [ALLOWED_NET, "2001:db8::/32"]
    assert ServiceToken.objects.get(id=new["id"]).allowed_ips == [ALLOWED_NET, "2001:db8::/32"]
    assert token_get(new["token"], REMOTE_ADDR=INSIDE).status_code == 200
    refused = token_get(new["token"], REMOTE_ADDR=OUTSIDE)
    assert_problem(refused, status=403, code="IP_NOT_ALLOWED")


@pytest.mark.django_db(transaction=True)
def test_a_new_allow_list_applies_from_the_tokens_next_request(admin_client):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])
    assert token_get(token["token"], REMOTE_ADDR=INSIDE).status_code == 200  # warm: cached

    moved = admin_client.patch(
        detail_url(token["id"]), {"allowed_ips": ["198.51.100.0/24"]}, format="json"
    )
    assert moved.status_code == 200, moved.content

    old_place = token_get(token["token"], REMOTE_ADDR=INSIDE)
    assert_problem(old_place, status=403, code="IP_NOT_ALLOWED")
    assert token_get(token["token"], REMOTE_ADDR=OUTSIDE).status_code == 200

    cleared = admin_client.patch(detail_url(token["id"]), {"allowed_ips": []}, format="json")
    assert cleared.status_code == 200, cleared.content

    assert token_get(token["token"], REMOTE_ADDR="192.0.2.200").status_code == 200


# --- Token policy: GET, PATCH /orgs/current/token-policy --------------------------------


def test_an_admin_reads_the_token_policy(admin_client):
    response = admin_client.get(POLICY)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["max_lifetime_days"] is None
    assert body["require_allowed_ips"] is False
    assert body["service_max_lifetime_days"] == 365


def test_an_admin_changes_the_token_policy_and_it_is_audited(admin_client, admin, org):
    response = admin_client.patch(
        POLICY, {"max_lifetime_days": 10, "require_allowed_ips": True}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["max_lifetime_days"] == 10
    assert response.json()["require_allowed_ips"] is True
    org.refresh_from_db()
    assert org.token_max_lifetime_days == 10
    assert org.require_allowed_ips is True
    assert admin_client.get(POLICY).json() == response.json()
    [event] = events("token.policy_changed")
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.organization_id == org.id
    assert event.actor_type == "user"
    assert event.actor_id == str(admin.id)
    assert event.details == {
        "max_lifetime_days": {"from": None, "to": 10},
        "require_allowed_ips": {"from": False, "to": True},
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"max_lifetime_days": 0}, "max_lifetime_days"),
        ({"max_lifetime_days": 366}, "max_lifetime_days"),
        ({"max_lifetime_days": "x"}, "max_lifetime_days"),
        ({}, None),
        ({"require_allowed_ips": "maybe"}, "require_allowed_ips"),
    ],
    ids=["zero-days", "366-days", "not-a-number", "empty", "not-a-boolean"],
)
def test_the_token_policy_refuses_bad_input_and_changes_nothing(admin_client, org, payload, field):
    response = admin_client.patch(POLICY, payload, format="json")

    invalid(response, field)
    org.refresh_from_db()
    assert org.token_max_lifetime_days is None
    assert org.require_allowed_ips is False
    assert not events("token.policy_changed")


@pytest.mark.parametrize("role_client", ["member_client", "viewer_client"])
@pytest.mark.parametrize("method", ["get", "patch"])
def test_roles_without_org_admin_cannot_read_or_change_the_token_policy(
    request, org, role_client, method
):
    client = request.getfixturevalue(role_client)

    response = getattr(client, method)(POLICY, {"max_lifetime_days": 1}, format="json")

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert "org:admin" in body["detail"]
    org.refresh_from_db()
    assert org.token_max_lifetime_days is None
    assert not events("token.policy_changed")


def test_another_organizations_admin_reads_and_changes_only_their_own_policy(
    admin_client, outsider_client, org, other_org
):
    assert admin_client.patch(POLICY, {"max_lifetime_days": 10}, format="json").status_code == 200

    theirs = outsider_client.get(POLICY)
    changed = outsider_client.patch(
        POLICY, {"max_lifetime_days": 5, "require_allowed_ips": True}, format="json"
    )

    assert theirs.json()["max_lifetime_days"] is None
    assert changed.status_code == 200, changed.content
    org.refresh_from_db()
    other_org.refresh_from_db()
    assert (org.token_max_lifetime_days, org.require_allowed_ips) == (10, False)
    assert (other_org.token_max_lifetime_days, other_org.require_allowed_ips) == (5, True)
    assert admin_client.get(POLICY).json()["max_lifetime_days"] == 10


def test_changing_one_policy_setting_leaves_the_other_alone(admin_client, org):
    assert (
        admin_client.patch(POLICY, {"require_allowed_ips": True}, format="json").status_code == 200
    )

    response = admin_client.patch(POLICY, {"max_lifetime_days": 10}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["max_lifetime_days"] == 10
    assert response.json()["require_allowed_ips"] is True
    org.refresh_from_db()
    assert (org.token_max_lifetime_days, org.require_allowed_ips) == (10, True)
    last = events("token.policy_changed")[-1]
    assert last.details == {"max_lifetime_days": {"from": None, "to": 10}}


def test_a_form_encoded_body_is_refused_and_changes_nothing(admin_client, org):
    response = admin_client.patch(
        POLICY, "max_lifetime_days=10", content_type="application/x-www-form-urlencoded"
    )

    assert_problem(response, status=415, code="UNSUPPORTED_MEDIA_TYPE")
    org.refresh_from_db()
    assert org.token_max_lifetime_days is None


def test_an_anonymous_caller_cannot_read_the_token_policy(api_client):
    assert_problem(api_client.get(POLICY), status=401, code="NOT_AUTHENTICATED")


# --- Token policy: enforced -------------------------------------------------------------


def set_policy(client: APIClient, **policy: Any) -> None:
    response = client.patch(POLICY, policy, format="json")
    assert response.status_code == 200, response.content


def test_a_maximum_lifetime_refuses_longer_tokens_and_shortens_the_default(admin_client):
    set_policy(admin_client, max_lifetime_days=10)

    too_long = admin_client.post(
        TOKENS, {"name": "ci", "scopes": ["image:read"], "expires_in_days": 30}, format="json"
    )
    invalid(too_long, "expires_in_days")
    assert not ServiceToken.objects.exists()

    made = create_token(admin_client)
    assert close_to(made["expires_at"], timezone.now() + dt.timedelta(days=10))


@pytest.mark.parametrize("by", ["admin", "itself"])
def test_rotating_an_older_long_lived_token_caps_the_successor_at_the_maximum(admin_client, by):
    old = rotator(admin_client)
    assert close_to(old["expires_at"], timezone.now() + dt.timedelta(days=90))
    set_policy(admin_client, max_lifetime_days=10)

    if by == "admin":
        response = admin_client.post(rotate_url(old["id"]), {"grace_seconds": 60}, format="json")
    else:
        response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": 60})

    assert response.status_code == 201, response.content
    expires_at = parse(response.json()["expires_at"])
    assert expires_at <= timezone.now() + dt.timedelta(days=10)
    assert close_to(response.json()["expires_at"], timezone.now() + dt.timedelta(days=10))


@pytest.mark.parametrize("body", [{}, {"allowed_ips": []}], ids=["missing", "empty"])
def test_required_allowed_ips_refuses_a_token_without_them(admin_client, body):
    set_policy(admin_client, require_allowed_ips=True)

    response = admin_client.post(
        TOKENS, {"name": "ci", "scopes": ["image:read"], **body}, format="json"
    )

    invalid(response, "allowed_ips")
    assert not ServiceToken.objects.exists()
    assert create_token(admin_client, allowed_ips=[ALLOWED_NET])["allowed_ips"] == [ALLOWED_NET]


def test_required_allowed_ips_refuses_clearing_them(admin_client):
    token = create_token(admin_client, allowed_ips=[ALLOWED_NET])
    set_policy(admin_client, require_allowed_ips=True)

    response = admin_client.patch(detail_url(token["id"]), {"allowed_ips": []}, format="json")

    invalid(response, "allowed_ips")
    assert ServiceToken.objects.get(id=token["id"]).allowed_ips == [ALLOWED_NET]
    assert not events("token.updated")


@pytest.mark.parametrize("by", ["admin", "itself"])
def test_required_allowed_ips_refuses_rotating_a_token_without_them(admin_client, by):
    old = rotator(admin_client)
    set_policy(admin_client, require_allowed_ips=True)

    if by == "admin":
        response = admin_client.post(rotate_url(old["id"]), {"grace_seconds": 60}, format="json")
    else:
        response = token_post(old["token"], SELF_ROTATE, {"grace_seconds": 60})

    invalid(response, "allowed_ips")
    assert ServiceToken.objects.count() == 1
    row = ServiceToken.objects.get(id=old["id"])
    assert row.revoked_at is None
    assert not events("token.rotated")
    assert token_get(old["token"]).json()["status"] == "active"
