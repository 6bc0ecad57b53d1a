"""The operator's side of machine identity: allow-lists from the command line, the token
policy by command and in Django admin."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import Organization
from accounts.tests.commands import create, run, token_for
from audit.tests.factories import audit_events as events
from config.testing.http import assert_problem

ORG_URL = "/api/v1/orgs/current"


def test_create_with_allowed_ips_stores_them_canonical_and_enforces_them(org, admin):
    secret, out = create(
        "acme", "runner", "image:read", "--allowed-ips", "10.1.0.0/16, 2001:db8::1"
    )

    token = token_for(secret)
    assert token.allowed_ips == ["10.1.0.0/16", "2001:db8::1/128"]
    assert "usable from 10.1.0.0/16, 2001:db8::1/128" in out
    inside = APIClient(REMOTE_ADDR="10.1.200.3").get(ORG_URL, HTTP_X_API_KEY=secret)
    assert inside.status_code == 200, inside.content
    outside = APIClient(REMOTE_ADDR="10.2.0.1").get(ORG_URL, HTTP_X_API_KEY=secret)
    assert_problem(outside, status=403, code="IP_NOT_ALLOWED")


def test_create_refuses_a_bad_network_and_creates_nothing(org, admin):
    with pytest.raises(CommandError, match="is not an IP address or network"):
        create("acme", "runner", "image:read", "--allowed-ips", "10.0.0.300")

    assert not org.service_tokens.exists()


def test_set_token_policy_changes_the_policy_and_audits_it_as_the_system(org):
    out = run(
        "set_token_policy",
        "--org",
        "acme",
        "--max-lifetime-days",
        "30",
        "--require-allowed-ips",
        "yes",
    )

    org.refresh_from_db()
    assert (org.token_max_lifetime_days, org.require_allowed_ips) == (30, True)
    assert "max_lifetime_days 30" in out
    assert "require_allowed_ips yes" in out
    [event] = events("token.policy_changed")
    assert event.actor_type == "system"
    assert event.details == {
        "max_lifetime_days": {"from": None, "to": 30},
        "require_allowed_ips": {"from": False, "to": True},
    }


def test_set_token_policy_none_lifts_the_lifetime_bound(org):
    run("set_token_policy", "--org", "acme", "--max-lifetime-days", "30")

    run("set_token_policy", "--org", "acme", "--max-lifetime-days", "none")

    org.refresh_from_db()
    assert org.token_max_lifetime_days is None
    assert len(events("token.policy_changed")) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "acme"], "Give --max-lifetime-days"),
        (["--org", "acme", "--max-lifetime-days", "0"], "between 1 and 365"),
        (["--org", "acme", "--max-lifetime-days", "366"], "between 1 and 365"),
        (["--org", "acme", "--max-lifetime-days", "soon"], "number of days"),
        (["--org", "nowhere", "--max-lifetime-days", "5"], "No organization"),
    ],
    ids=["nothing", "zero", "too-long", "not-a-number", "unknown-org"],
)
def test_set_token_policy_refuses_bad_input_and_changes_nothing(org, args, message):
    with pytest.raises(CommandError, match=message):
        run("set_token_policy", *args)

    org.refresh_from_db()
    assert (org.token_max_lifetime_days, org.require_allowed_ips) == (None, False)
    assert events("token.policy_changed") == []


def test_with_the_policy_requiring_allowed_ips_the_command_needs_them(org, admin):
    run("set_token_policy", "--org", "acme", "--require-allowed-ips", "yes")

    with pytest.raises(CommandError, match="requires allowed_ips"):
        create("acme", "runner")
    secret, _ = create("acme", "runner", "image:read", "--allowed-ips", "192.0.2.0/24")
    assert token_for(secret).allowed_ips == ["192.0.2.0/24"]


@pytest.mark.django_db(transaction=True)
def test_the_token_policy_set_in_django_admin_is_audited(staff_browser, org):
    form = {
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "is_active": "on",
        "token_max_lifetime_days": "14",
        "require_allowed_ips": "on",
    }

    response = staff_browser.post(f"/admin/accounts/organization/{org.id}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    org = Organization.objects.get(id=org.id)
    assert (org.token_max_lifetime_days, org.require_allowed_ips) == (14, True)
    [event] = events("token.policy_changed")
    assert event.actor_display == "root"


def test_django_admin_refuses_a_lifetime_bound_out_of_range(staff_browser, org):
    form = {
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "is_active": "on",
        "token_max_lifetime_days": "400",
    }

    response = staff_browser.post(f"/admin/accounts/organization/{org.id}/change/", form)

    assert response.status_code == 200
    assert "Between 1 and 365" in response.content.decode()
    org.refresh_from_db()
    assert org.token_max_lifetime_days is None


# --- revoke_user_sessions ------------------------------------------------------------


def test_revoke_user_sessions_ends_every_session_of_the_user_and_audits_each(org, member, admin):
    from config.testing.http import login_client

    first, second = login_client(member), login_client(member)
    bystander = login_client(admin)

    out = run("revoke_user_sessions", member.email, "--reason", "laptop stolen")

    assert "Ended 2 session(s) of bob." in out
    for client in (first, second):
        assert_problem(client.get("/api/v1/auth/me"), status=401, code="TOKEN_REVOKED")
    assert bystander.get("/api/v1/auth/me").status_code == 200
    revoked = events("auth.session_revoked")
    assert len(revoked) == 2
    assert {event.actor_type for event in revoked} == {"system"}
    assert {event.details["reason"] for event in revoked} == {"laptop stolen"}


@pytest.mark.parametrize(
    ("args", "message"),
    [(["nobody"], "No user"), (["bob", "--reason", " "], "must not be empty")],
    ids=["unknown-user", "empty-reason"],
)
def test_revoke_user_sessions_refuses_bad_input_and_ends_nothing(org, member, args, message):
    from config.testing.http import login_client

    client = login_client(member)

    with pytest.raises(CommandError, match=message):
        run("revoke_user_sessions", *args)

    assert client.get("/api/v1/auth/me").status_code == 200
