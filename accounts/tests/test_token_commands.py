"""The service token commands, the token periodic tasks and the token admin.

Every command runs through `call_command` as an operator would run it. What it
did is checked where it matters: the token works (or is refused) on the real
API, the database rows, and the audit log (actor `system` for commands).
These tests run with real commits (transaction=True) because a token's new
state reaches the authentication cache only once its change commits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Membership, ServiceToken, TokenUsageDay
from accounts.tasks import token_expiry_notify_task, token_usage_flush_task
from accounts.tests.commands import create, run, token_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tokens.format import token_checksum, token_digest, token_prefix
from audit.tests.factories import audit_events as events
from config.testing.http import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_LINE = re.compile(r"^sk_[0-9a-f]{64}$")
HEX64 = re.compile(r"[0-9a-f]{64}")
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
ORG_URL = "/api/v1/orgs/current"


# --- helpers -----------------------------------------------------------------------


def call_api(secret: str, path: str = ORG_URL) -> Any:
    return APIClient().get(path, HTTP_X_API_KEY=secret)


def crafted_token(org: Any, creator: Any, name: str, hex_start: str) -> tuple[str, ServiceToken]:
    """A valid token whose hex begins with `hex_start`, so two can share a short prefix."""
    body = hex_start + secrets.token_hex(28)[len(hex_start) :]
    secret = f"sk_{body}{token_checksum(body)}"
    token = ServiceToken.objects.create(
        organization=org,
        name=name,
        scopes=["image:read"],
        created_by=creator,
        expires_at=timezone.now() + dt.timedelta(days=30),
        prefix=token_prefix(secret),
        digest=token_digest(secret),
    )
    return secret, token


# --- create_service_token ------------------------------------------------------------


def test_create_prints_the_secret_alone_on_the_last_line_and_it_authenticates(org, admin):
    secret, out = create("acme", "ci-deploy")

    lines = out.splitlines()
    assert SECRET_LINE.fullmatch(lines[-1])
    assert all(secret not in line for line in lines[:-1])
    response = call_api(secret)
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "acme"
    token = token_for(secret)
    assert token.name == "ci-deploy"
    assert token.organization == org
    assert token.scopes == ["image:read"]
    assert token.prefix == secret[:12]


def test_create_stores_only_the_digest_of_the_secret(org, admin):
    secret, _ = create("acme", "ci-deploy")

    token = token_for(secret)
    assert token.digest != secret
    assert not ServiceToken.objects.filter(digest=secret).exists()


def test_create_audits_token_created_as_the_system(org, admin):
    secret, _ = create("acme", "ci-deploy", "image:read,image:upload", "--expires-in-days", "30")

    token = token_for(secret)
    [event] = events("token.created")
    assert event.actor_type == "system"
    assert event.outcome == "success"
    assert event.organization_id == org.id
    assert event.resource_type == "service_token"
    assert event.resource_id == str(token.id)
    assert event.details["scopes"] == ["image:read", "image:upload"]
    assert event.details["expires_in_days"] == 30
    assert secret not in json.dumps(event.details)


def test_create_honours_expires_in_days(org, admin, time_machine):
    time_machine.move_to(T0, tick=False)

    secret, _ = create("acme", "short", "image:read", "--expires-in-days", "3")

    assert token_for(secret).expires_at == T0 + dt.timedelta(days=3)


def test_create_without_created_by_binds_the_token_to_the_first_active_admin(org, member, admin):
    secret, out = create("acme", "ci")

    assert token_for(secret).created_by == admin
    assert "alice" in out


def test_create_without_created_by_skips_an_inactive_first_admin(org, admin):
    second = MembershipFactory(organization=org, role="admin", user__username="erin").user
    Membership.objects.filter(user=admin).update(created_at=T0 - dt.timedelta(days=30))
    Membership.objects.filter(user=second).update(created_at=T0)
    admin.is_active = False
    admin.save(update_fields=["is_active"])

    secret, _ = create("acme", "ci")

    assert token_for(secret).created_by == second


def test_create_with_created_by_bounds_the_token_by_that_members_permissions(org, admin, member):
    secret, _ = create("acme", "narrow", "token:manage,image:read", "--created-by", "bob")

    token = token_for(secret)
    assert token.created_by == member
    assert sorted(token.scopes) == ["image:read", "token:manage"]
    assert_problem(call_api(secret, "/api/v1/tokens"), status=403, code="PERMISSION_DENIED")
    assert call_api(secret).status_code == 200


def test_create_by_an_admin_gives_the_token_its_admin_scope(org, admin):
    secret, _ = create("acme", "manager", "token:manage")

    assert call_api(secret, "/api/v1/tokens").status_code == 200


@pytest.mark.parametrize("days", ["400", "366", "-5"])
def test_create_refuses_a_lifetime_outside_the_allowed_range(org, admin, days):
    with pytest.raises(CommandError, match="expires_in_days"):
        create("acme", "too-long", "image:read", "--expires-in-days", days)

    assert not ServiceToken.objects.exists()
    assert not events("token.created")


def test_create_refuses_a_lifetime_of_zero_days(org, admin):
    with pytest.raises(CommandError, match="expires_in_days"):
        create("acme", "zero", "image:read", "--expires-in-days", "0")

    assert not ServiceToken.objects.exists()


def test_create_in_an_unknown_organization_fails(org, admin):
    with pytest.raises(CommandError, match="nowhere"):
        create("nowhere", "ci")

    assert not ServiceToken.objects.exists()


def test_create_with_an_unknown_scope_fails(org, admin):
    with pytest.raises(CommandError, match="image:fly"):
        create("acme", "ci", "image:read,image:fly")

    assert not ServiceToken.objects.exists()


def test_create_with_no_scope_at_all_fails(org, admin):
    with pytest.raises(CommandError):
        create("acme", "ci", " , ")

    assert not ServiceToken.objects.exists()


def test_create_with_created_by_a_non_member_fails(org, admin, outsider):
    with pytest.raises(CommandError, match="mallory"):
        create("acme", "ci", "image:read", "--created-by", "mallory")

    assert not ServiceToken.objects.exists()


def test_create_with_created_by_an_unknown_user_fails(org, admin):
    with pytest.raises(CommandError, match="nobody"):
        create("acme", "ci", "image:read", "--created-by", "nobody")


def test_create_in_an_org_without_an_admin_and_no_created_by_fails(db):
    lonely = OrganizationFactory(slug="lonely")
    MembershipFactory(organization=lonely, role="user", user__username="walter")

    with pytest.raises(CommandError, match="admin"):
        create("lonely", "ci")

    assert not ServiceToken.objects.exists()


# --- list_service_tokens -------------------------------------------------------------


def test_list_shows_id_prefix_status_and_name_but_never_a_secret(org, admin):
    live_secret, _ = create("acme", "live-bot")
    dead_secret, _ = create("acme", "dead-bot")
    run("revoke_service_token", str(token_for(dead_secret).id), "--reason", "leaked")

    out = run("list_service_tokens", "--org", "acme")

    expected = ((live_secret, "live-bot", "active"), (dead_secret, "dead-bot", "revoked"))
    for secret, name, status in expected:
        token = token_for(secret)
        [line] = [line for line in out.splitlines() if str(token.id) in line]
        assert token.prefix in line
        assert name in line
        assert status in line
        assert secret not in out
        assert token.digest not in out
    assert not HEX64.search(out)


def test_list_status_revoked_shows_only_revoked_tokens(org, admin):
    live_secret, _ = create("acme", "live-bot")
    dead_secret, _ = create("acme", "dead-bot")
    run("revoke_service_token", str(token_for(dead_secret).id), "--reason", "leaked")

    out = run("list_service_tokens", "--org", "acme", "--status", "revoked")

    assert str(token_for(dead_secret).id) in out
    assert str(token_for(live_secret).id) not in out
    assert "live-bot" not in out


def test_list_shows_only_the_given_organizations_tokens(org, admin, other_org, outsider):
    create("acme", "acme-bot")
    create("globex", "globex-bot")

    out = run("list_service_tokens", "--org", "acme")

    assert "acme-bot" in out
    assert "globex-bot" not in out


def test_list_json_is_a_list_of_token_records_without_secret_or_digest(org, admin):
    secret, _ = create("acme", "json-bot")

    out = run("list_service_tokens", "--org", "acme", "--json")

    rows = json.loads(out)
    assert isinstance(rows, list)
    [row] = rows
    assert isinstance(row, dict)
    assert "token" not in row
    assert "digest" not in row
    token = token_for(secret)
    assert row["id"] == str(token.id)
    assert row["prefix"] == token.prefix
    assert row["name"] == "json-bot"
    assert row["status"] == "active"
    assert secret not in out
    assert not HEX64.search(out)


def test_list_json_status_filter_on_an_org_without_matches_is_an_empty_list(org, admin):
    create("acme", "live-bot")

    out = run("list_service_tokens", "--org", "acme", "--status", "revoked", "--json")

    assert json.loads(out) == []


def test_list_in_an_unknown_organization_fails(org):
    with pytest.raises(CommandError, match="nowhere"):
        run("list_service_tokens", "--org", "nowhere")


def test_list_with_an_unknown_status_fails(org):
    with pytest.raises(CommandError):
        run("list_service_tokens", "--org", "acme", "--status", "bogus")


# --- revoke_service_token ------------------------------------------------------------


def test_revoke_by_id_refuses_the_token_from_the_next_request_and_audits(org, admin):
    secret, _ = create("acme", "doomed")
    assert call_api(secret).status_code == 200  # its record is cached now
    token = token_for(secret)

    out = run("revoke_service_token", str(token.id), "--reason", "leaked in a log")

    assert "Revoked" in out
    assert_problem(call_api(secret), status=401, code="TOKEN_REVOKED")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_reason == "leaked in a log"
    [event] = events("token.revoked")
    assert event.actor_type == "system"
    assert event.organization_id == org.id
    assert event.resource_id == str(token.id)
    assert event.details["reason"] == "leaked in a log"


def test_revoke_by_prefix_refuses_the_token(org, admin):
    secret, _ = create("acme", "doomed")
    other_secret, _ = create("acme", "bystander")
    assert call_api(secret).status_code == 200
    token = token_for(secret)

    run("revoke_service_token", token.prefix, "--reason", "rotated out")

    assert_problem(call_api(secret), status=401, code="TOKEN_REVOKED")
    assert call_api(other_secret).status_code == 200
    [event] = events("token.revoked")
    assert event.actor_type == "system"
    assert event.resource_id == str(token.id)


def test_revoking_an_already_revoked_token_is_unchanged_and_not_audited_again(org, admin):
    secret, _ = create("acme", "doomed")
    token = token_for(secret)
    run("revoke_service_token", str(token.id), "--reason", "first")

    out = run("revoke_service_token", str(token.id), "--reason", "second")

    assert "unchanged" in out
    assert len(events("token.revoked")) == 1
    token.refresh_from_db()
    assert token.revoked_reason == "first"


def test_revoke_with_an_unknown_id_fails(org, admin):
    with pytest.raises(CommandError, match="No service token"):
        run("revoke_service_token", str(uuid.uuid4()), "--reason", "x")


def test_revoke_with_an_unknown_prefix_fails(org, admin):
    secret, _ = create("acme", "bot")
    unknown = "sk_" + ("0" if secret[3] != "0" else "1") * 9

    with pytest.raises(CommandError, match="No service token"):
        run("revoke_service_token", unknown, "--reason", "x")


def test_revoke_with_neither_an_id_nor_a_prefix_fails(org, admin):
    with pytest.raises(CommandError):
        run("revoke_service_token", "hello", "--reason", "x")


def test_revoke_with_a_prefix_matching_two_tokens_fails_and_revokes_neither(org, admin):
    first_secret, _ = crafted_token(org, admin, "one", "abc1")
    second_secret, _ = crafted_token(org, admin, "two", "abc2")

    with pytest.raises(CommandError, match="2 tokens"):
        run("revoke_service_token", "sk_abc", "--reason", "x")

    assert call_api(first_secret).status_code == 200
    assert call_api(second_secret).status_code == 200
    assert not events("token.revoked")

    run("revoke_service_token", "sk_abc1", "--reason", "x")

    assert_problem(call_api(first_secret), status=401, code="TOKEN_REVOKED")
    assert call_api(second_secret).status_code == 200


def test_revoke_without_a_reason_fails_and_revokes_nothing(org, admin):
    secret, _ = create("acme", "bot")

    with pytest.raises(CommandError):
        run("revoke_service_token", str(token_for(secret).id))

    assert call_api(secret).status_code == 200


@pytest.mark.parametrize("reason", ["", "   "])
def test_revoke_with_an_empty_reason_fails_and_revokes_nothing(org, admin, reason):
    secret, _ = create("acme", "bot")

    with pytest.raises(CommandError, match="reason"):
        run("revoke_service_token", str(token_for(secret).id), "--reason", reason)

    assert call_api(secret).status_code == 200
    assert not events("token.revoked")


# --- rotate_service_token ------------------------------------------------------------


def test_rotate_prints_a_working_successor_alone_on_the_last_line(org, admin):
    old_secret, _ = create("acme", "rotating-bot", "image:read,image:upload")
    old = token_for(old_secret)

    out = run("rotate_service_token", str(old.id))

    new_secret = out.splitlines()[-1]
    assert SECRET_LINE.fullmatch(new_secret)
    assert new_secret != old_secret
    assert all(new_secret not in line for line in out.splitlines()[:-1])
    assert call_api(new_secret).status_code == 200
    new = token_for(new_secret)
    assert new.name == "rotating-bot"
    assert sorted(new.scopes) == ["image:read", "image:upload"]
    assert new.rotated_from_id == old.id
    [event] = events("token.rotated")
    assert event.actor_type == "system"
    assert event.resource_id == str(old.id)
    assert event.details["successor_id"] == str(new.id)


def test_rotate_keeps_the_old_token_working_for_the_default_hour_only(org, admin, time_machine):
    time_machine.move_to(T0, tick=False)
    old_secret, _ = create("acme", "rotating-bot")
    assert call_api(old_secret).status_code == 200

    new_secret = run("rotate_service_token", token_for(old_secret).prefix).splitlines()[-1]

    assert token_for(old_secret).revoked_at == T0 + dt.timedelta(seconds=3600)
    time_machine.move_to(T0 + dt.timedelta(minutes=59), tick=False)
    assert call_api(old_secret).status_code == 200
    time_machine.move_to(T0 + dt.timedelta(hours=2), tick=False)
    assert_problem(call_api(old_secret), status=401, code="TOKEN_REVOKED")
    assert call_api(new_secret).status_code == 200


def test_rotate_with_no_grace_refuses_the_old_token_at_once(org, admin):
    old_secret, _ = create("acme", "rotating-bot")
    assert call_api(old_secret).status_code == 200

    out = run("rotate_service_token", str(token_for(old_secret).id), "--grace-seconds", "0")

    assert_problem(call_api(old_secret), status=401, code="TOKEN_REVOKED")
    assert call_api(out.splitlines()[-1]).status_code == 200


@pytest.mark.parametrize("grace", ["90000", "-1"])
def test_rotate_with_a_grace_out_of_range_fails_and_issues_nothing(org, admin, grace):
    old_secret, _ = create("acme", "rotating-bot")

    with pytest.raises(CommandError, match="grace_seconds"):
        run("rotate_service_token", str(token_for(old_secret).id), "--grace-seconds", grace)

    assert ServiceToken.objects.count() == 1
    assert token_for(old_secret).revoked_at is None
    assert not events("token.rotated")


def test_rotating_a_revoked_token_fails(org, admin):
    secret, _ = create("acme", "dead-bot")
    token = token_for(secret)
    run("revoke_service_token", str(token.id), "--reason", "leaked")

    with pytest.raises(CommandError, match="revoked"):
        run("rotate_service_token", str(token.id))

    assert ServiceToken.objects.count() == 1
    assert not events("token.rotated")


def test_rotate_with_an_unknown_id_fails(org, admin):
    with pytest.raises(CommandError):
        run("rotate_service_token", str(uuid.uuid4()))


# --- revoke_all_service_tokens -------------------------------------------------------


def test_revoke_all_without_yes_fails_and_revokes_nothing(org, admin):
    secret, _ = create("acme", "bot")

    with pytest.raises(CommandError, match="--yes"):
        run("revoke_all_service_tokens", "--org", "acme", "--reason", "breach")

    assert call_api(secret).status_code == 200
    assert not events("token.emergency_revoke")


def test_revoke_all_revokes_every_live_token_of_that_org_only(org, admin, other_org, outsider):
    first, _ = create("acme", "first")
    second, _ = create("acme", "second")
    already, _ = create("acme", "already")
    run("revoke_service_token", str(token_for(already).id), "--reason", "old")
    foreign, _ = create("globex", "foreign")
    for secret in (first, second, foreign):
        assert call_api(secret).status_code == 200

    out = run("revoke_all_service_tokens", "--org", "acme", "--reason", "breach", "--yes")

    assert re.search(r"\b2\b", out)
    assert_problem(call_api(first), status=401, code="TOKEN_REVOKED")
    assert_problem(call_api(second), status=401, code="TOKEN_REVOKED")
    assert call_api(foreign).status_code == 200
    assert token_for(foreign).revoked_at is None
    assert token_for(already).revoked_reason == "old"
    [event] = events("token.emergency_revoke")
    assert event.actor_type == "system"
    assert event.organization_id == org.id
    assert event.details["revoked"] == 2
    assert event.details["reason"] == "breach"


def test_revoke_all_also_ends_a_rotating_tokens_grace(org, admin, admin_client):
    old_secret, _ = create("acme", "rotating-bot")
    rotated = admin_client.post(
        f"/api/v1/tokens/{token_for(old_secret).id}/rotate", {"grace_seconds": 3600}, format="json"
    )
    assert rotated.status_code == 201, rotated.content
    new_secret = rotated.json()["token"]
    assert call_api(old_secret).status_code == 200

    out = run("revoke_all_service_tokens", "--org", "acme", "--reason", "breach", "--yes")

    assert re.search(r"\b2\b", out)
    assert_problem(call_api(old_secret), status=401, code="TOKEN_REVOKED")
    assert_problem(call_api(new_secret), status=401, code="TOKEN_REVOKED")


def test_revoke_all_in_an_unknown_organization_fails(org):
    with pytest.raises(CommandError, match="nowhere"):
        run("revoke_all_service_tokens", "--org", "nowhere", "--reason", "breach", "--yes")


def test_revoke_all_with_an_empty_reason_fails(org, admin):
    secret, _ = create("acme", "bot")

    with pytest.raises(CommandError):
        run("revoke_all_service_tokens", "--org", "acme", "--reason", " ", "--yes")

    assert call_api(secret).status_code == 200


# --- service_token_usage -------------------------------------------------------------


def test_usage_json_counts_each_request_in_all_and_per_day(org, admin):
    secret, _ = create("acme", "busy-bot")
    create("acme", "idle-bot")
    for _ in range(3):
        assert call_api(secret).status_code == 200

    out = run("service_token_usage", "--org", "acme", "--json")

    report = {entry["name"]: entry for entry in json.loads(out)}
    today = timezone.now().date().isoformat()
    assert report["busy-bot"]["id"] == str(token_for(secret).id)
    assert report["busy-bot"]["usage_count"] == 3
    assert report["busy-bot"]["daily"] == {today: 3}
    assert report["idle-bot"]["usage_count"] == 0
    assert report["idle-bot"]["daily"] == {}
    assert secret not in out
    assert token_for(secret).usage_count == 3


def test_usage_text_names_each_token_with_its_total(org, admin):
    secret, _ = create("acme", "busy-bot")
    for _ in range(2):
        call_api(secret)

    out = run("service_token_usage", "--org", "acme")

    assert "busy-bot" in out
    assert "2 in all" in out
    assert secret not in out


@pytest.mark.parametrize("days", ["0", "366"])
def test_usage_with_days_out_of_range_fails(org, admin, days):
    with pytest.raises(CommandError, match="--days"):
        run("service_token_usage", "--org", "acme", "--days", days)


def test_usage_in_an_unknown_organization_fails(org):
    with pytest.raises(CommandError, match="nowhere"):
        run("service_token_usage", "--org", "nowhere")


# --- token usage flush task ----------------------------------------------------------


def test_usage_flush_task_returns_how_many_uses_it_moved(org, admin, settings):
    settings.TOKEN_USAGE_FLUSH_IN_PROCESS = False  # nothing flushes but the task
    first, _ = create("acme", "first")
    second, _ = create("acme", "second")
    for secret in (first, first, second):
        assert call_api(secret).status_code == 200

    assert token_usage_flush_task() == 3

    assert token_for(first).usage_count == 2
    assert token_for(second).usage_count == 1
    assert TokenUsageDay.objects.get(token=token_for(first)).requests == 2
    assert token_usage_flush_task() == 0


# --- expiring_service_tokens ---------------------------------------------------------


@pytest.fixture
def expiring(org, admin, member, time_machine):
    """At T0: one token expiring in 5 days, one in 90, one revoked that would expire in 3."""
    time_machine.move_to(T0, tick=False)
    soon, _ = create("acme", "deploy-bot", "image:read", "--expires-in-days", "5")
    later, _ = create("acme", "long-lived", "image:read", "--expires-in-days", "90")
    dead, _ = create("acme", "dead-bot", "image:read", "--expires-in-days", "3")
    run("revoke_service_token", str(token_for(dead).id), "--reason", "leaked")
    return {"soon": token_for(soon), "later": token_for(later), "dead": token_for(dead)}


def test_expiring_lists_tokens_expiring_within_seven_days_by_default(expiring):
    out = run("expiring_service_tokens")

    assert "deploy-bot" in out
    assert expiring["soon"].prefix in out
    assert "long-lived" not in out
    assert "dead-bot" not in out


def test_expiring_lists_tokens_within_the_given_days(expiring):
    assert "deploy-bot" not in run("expiring_service_tokens", "--days", "4")
    assert "long-lived" in run("expiring_service_tokens", "--days", "90")


def test_expiring_without_notify_sends_nothing(expiring, mailoutbox):
    run("expiring_service_tokens")

    assert mailoutbox == []
    assert not events("token.expiring")


def test_expiring_notify_audits_and_mails_the_org_admins_once_per_token(expiring, mailoutbox):
    out = run("expiring_service_tokens", "--notify")

    assert "Sent 1 notice" in out
    [event] = events("token.expiring")
    assert event.actor_type == "system"
    assert event.organization_id == expiring["soon"].organization_id
    assert event.resource_id == str(expiring["soon"].id)
    [mail] = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert "deploy-bot" in mail.subject


def test_expiring_notify_again_sends_nothing_new(expiring, mailoutbox):
    run("expiring_service_tokens", "--notify")

    out = run("expiring_service_tokens", "--notify")

    assert "Sent 0 notice" in out
    assert len(mailoutbox) == 1
    assert len(events("token.expiring")) == 1


def test_expiring_notify_announces_again_when_less_than_a_day_is_left(
    expiring, mailoutbox, time_machine
):
    run("expiring_service_tokens", "--notify")
    time_machine.move_to(T0 + dt.timedelta(days=4, hours=13), tick=False)

    out = run("expiring_service_tokens", "--notify")

    assert "Sent 1 notice" in out
    assert len(mailoutbox) == 2
    assert "deploy-bot" in mailoutbox[1].subject
    _, second = events("token.expiring")
    assert second.actor_type == "system"
    assert second.resource_id == str(expiring["soon"].id)
    assert second.details["threshold_days"] == 1


def test_expiring_notify_never_announces_a_revoked_token(expiring, mailoutbox):
    run("expiring_service_tokens", "--notify", "--days", "30")

    assert all("dead-bot" not in mail.subject for mail in mailoutbox)
    assert all(e.resource_id != str(expiring["dead"].id) for e in events("token.expiring"))


@pytest.mark.parametrize("days", ["0", "366"])
def test_expiring_with_days_out_of_range_fails(db, days):
    with pytest.raises(CommandError, match="--days"):
        run("expiring_service_tokens", "--days", days)


def test_expiry_notify_task_returns_the_number_of_notices_sent(expiring, mailoutbox, time_machine):
    create("acme", "last-day-bot", "image:read", "--expires-in-days", "1")

    assert token_expiry_notify_task() == 2

    assert sorted(e.details["threshold_days"] for e in events("token.expiring")) == [1, 7]
    assert len(mailoutbox) == 2
    assert token_expiry_notify_task() == 0
    time_machine.move_to(T0 + dt.timedelta(days=4, hours=13), tick=False)
    assert token_expiry_notify_task() == 1
    assert len(mailoutbox) == 3
    assert "deploy-bot" in mailoutbox[2].subject


# --- Django admin ----------------------------------------------------------------------


def test_admin_lists_tokens_and_the_change_page_hides_the_digest(staff_browser, org, admin):
    secret, _ = create("acme", "admin-visible")
    token = token_for(secret)

    listing = staff_browser.get("/admin/accounts/servicetoken/")
    page = staff_browser.get(f"/admin/accounts/servicetoken/{token.pk}/change/")

    assert listing.status_code == 200
    assert b"admin-visible" in listing.content
    assert page.status_code == 200
    assert token.prefix.encode() in page.content
    assert token.digest.encode() not in page.content
    assert secret.encode() not in page.content
    assert token.digest.encode() not in listing.content


def test_admin_revoke_action_refuses_the_token_and_audits_the_staff_member(
    staff_browser, org, admin
):
    secret, _ = create("acme", "admin-revoked")
    bystander, _ = create("acme", "bystander")
    assert call_api(secret).status_code == 200
    token = token_for(secret)

    response = staff_browser.post(
        "/admin/accounts/servicetoken/",
        {"action": "revoke_tokens", "_selected_action": [str(token.pk)]},
    )

    assert response.status_code == 302
    assert_problem(call_api(secret), status=401, code="TOKEN_REVOKED")
    assert call_api(bystander).status_code == 200
    [event] = events("token.revoked")
    assert event.actor_type == "user"
    assert event.actor_display == "root"
    assert event.resource_id == str(token.id)


def test_admin_has_no_add_page_for_tokens(staff_browser):
    assert staff_browser.get("/admin/accounts/servicetoken/add/").status_code == 403
