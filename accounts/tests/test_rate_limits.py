"""Requests per minute by tier, embedded (SQLite, in-process moving windows); the suite
runs with the limit off, so each test here turns it on through settings."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.models import Organization
from accounts.tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, create_token
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

ME = "/api/v1/auth/me"
LIMITS = "/api/v1/images/limits"
SIGN_IN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
ORG_CURRENT = "/api/v1/orgs/current"
TOKENS = "/api/v1/tokens"
SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
)

# Travelled to by the window tests; sign-ins happen there too (a token never predates them).
T0 = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _rate_limits_on(settings: Any) -> None:
    settings.RATE_LIMIT_ENABLED = True


@pytest.fixture
def in_process_windows(settings: Any) -> None:
    """Count in this process even when the suite runs against Redis, whose clock cannot travel."""
    settings.REDIS_URL = ""


def member_of(org: Organization, role: str = "user") -> Any:
    return MembershipFactory(organization=org, role=role).user


def client_in(tier: str) -> APIClient:
    """A signed-in member of a new organization of `tier`."""
    org = OrganizationFactory(tier=tier)
    return login_client(member_of(org))


def spend(client: APIClient, count: int, path: str = ME) -> list[Any]:
    """Make `count` requests that must all be answered 200; return the responses."""
    responses = [client.get(path) for _ in range(count)]
    assert [r.status_code for r in responses] == [200] * count, responses[-1].content
    return responses


def refused(response: Any, *, window: str, limit: int) -> dict[str, Any]:
    """Assert a 429 RATE_LIMIT_EXCEEDED decided by `window` at `limit`, with its headers."""
    body = assert_problem(response, status=429, code="RATE_LIMIT_EXCEEDED")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["X-RateLimit-Limit"] == str(limit)
    assert response["X-RateLimit-Remaining"] == "0"
    assert 0 <= int(response["X-RateLimit-Reset"]) <= 60
    assert re.fullmatch(rf'"{window}";r=0;t=\d+', response["RateLimit"])
    assert f"{limit} requests per minute" in body["detail"]
    return body


def bad_sign_in(client: APIClient, attempt: int, **extra: str) -> Any:
    # A different unknown user each time, so the per-username lockout never answers.
    payload = {"username": f"nobody{attempt}", "password": "wrong"}
    return client.post(SIGN_IN, payload, format="json", **extra)


# --- 1. Each tier's numbers ---------------------------------------------------------
@pytest.mark.parametrize(("tier", "limit"), [("free", 10), ("pro", 60), ("enterprise", 300)])
def test_a_member_gets_exactly_the_tiers_requests_per_minute(tier, limit):
    client = client_in(tier)

    responses = spend(client, limit)
    response = client.get(ME)

    refused(response, window="principal", limit=limit)
    assert response["RateLimit-Policy"] == (
        f'"principal";q={limit};w=60, "organization";q={5 * limit};w=60'
    )
    remaining = [int(r["X-RateLimit-Remaining"]) for r in responses]
    assert remaining == list(range(limit - 1, -1, -1))
    assert {r["X-RateLimit-Limit"] for r in responses} == {str(limit)}


def test_refusals_say_when_to_retry_and_are_not_counted(in_process_windows):
    with time_machine.travel(T0, tick=False) as clock:
        client = client_in("free")
        spend(client, 10)
        clock.shift(20)
        refusals = [client.get(ME) for _ in range(2)]
        clock.shift(40)  # T0 + 60: the first ten have left the window
        again = spend(client, 10)

    assert [(r.status_code, r["Retry-After"], r["X-RateLimit-Reset"]) for r in refusals] == [
        (429, "40", "40"),
        (429, "40", "40"),
    ]
    assert refusals[0]["RateLimit"] == '"principal";r=0;t=40'
    assert again[-1]["X-RateLimit-Remaining"] == "0"


# --- 2. A moving window -------------------------------------------------------------
def test_requests_leave_the_window_one_by_one_after_sixty_seconds(in_process_windows):
    with time_machine.travel(T0, tick=False) as clock:
        client = client_in("free")
        spend(client, 5)
        clock.move_to(T0 + dt.timedelta(seconds=30))
        spend(client, 5)
        assert client.get(ME)["Retry-After"] == "30"

        clock.move_to(T0 + dt.timedelta(seconds=61))
        again = spend(client, 5)
        response = client.get(ME)

    assert [r["X-RateLimit-Remaining"] for r in again] == ["4", "3", "2", "1", "0"]
    refused(response, window="principal", limit=10)
    # The next to leave are the five made at t0+30: 29 s from t0+61.
    assert response["Retry-After"] == "29"


# --- 3. The organization's window ---------------------------------------------------
def test_the_organization_total_is_capped_across_its_members(settings):
    settings.RATE_LIMIT_ORGANIZATION_FACTOR = 2
    org = OrganizationFactory(tier="free")
    first, second, third = (login_client(member_of(org)) for _ in range(3))

    spend(first, 10)
    refused(first.get(ME), window="principal", limit=10)
    # One member at its limit does not stop another...
    responses = spend(second, 10)
    assert responses[0]["RateLimit-Policy"] == '"principal";q=10;w=60, "organization";q=20;w=60'
    # ...until the organization has used its 20.
    body = refused(third.get(ME), window="organization", limit=20)
    assert "organization" in body["detail"]


# --- 4. Anonymous callers, per client address ---------------------------------------
def test_sign_ins_are_limited_per_client_address():
    client = APIClient()
    responses = [bad_sign_in(client, i) for i in range(10)]
    response = bad_sign_in(client, 10)

    assert [r.status_code for r in responses] == [401] * 10
    assert [r["X-RateLimit-Remaining"] for r in responses] == [str(n) for n in range(9, -1, -1)]
    refused(response, window="client", limit=10)
    assert response["RateLimit-Policy"] == '"client";q=10;w=60'
    assert "this address's" in response.json()["detail"]


def test_another_client_address_has_its_own_window():
    for i in range(11):
        bad_sign_in(APIClient(), i)

    response = bad_sign_in(APIClient(REMOTE_ADDR="10.0.0.2"), 11)

    assert response.status_code == 401
    assert response["X-RateLimit-Remaining"] == "9"


def test_a_forged_forwarded_for_changes_nothing_without_trusted_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for i in range(10):
        bad_sign_in(APIClient(), i, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")

    refused(
        bad_sign_in(APIClient(), 10, HTTP_X_FORWARDED_FOR="198.51.100.99"),
        window="client",
        limit=10,
    )


def test_behind_one_trusted_proxy_the_rightmost_forwarded_address_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()
    # The client forges the left part; the proxy appends what it saw, on the right.
    for i in range(10):
        forwarded = f"198.51.100.{i}, 203.0.113.5"
        assert bad_sign_in(client, i, HTTP_X_FORWARDED_FOR=forwarded).status_code == 401

    same = bad_sign_in(client, 10, HTTP_X_FORWARDED_FOR="198.51.100.99, 203.0.113.5")
    other = bad_sign_in(client, 11, HTTP_X_FORWARDED_FOR="203.0.113.5, 203.0.113.6")

    refused(same, window="client", limit=10)
    assert other.status_code == 401
    assert other["X-RateLimit-Remaining"] == "9"


def test_refreshes_share_the_sign_in_window_and_other_anonymous_calls_are_not_refused():
    client = APIClient()
    for i in range(10):
        bad_sign_in(client, i)

    refused(
        client.post(REFRESH, {"refresh": "not-a-token"}, format="json"), window="client", limit=10
    )
    assert_problem(client.get(ME), status=401, code="NOT_AUTHENTICATED")


# --- 5. Sign-ins are a group of their own -------------------------------------------
def test_sign_ins_and_a_users_api_calls_from_one_address_are_counted_apart(member, member_client):
    for i in range(11):
        bad_sign_in(APIClient(), i)
    assert member_client.get(ME)["X-RateLimit-Remaining"] == "59"

    spend(member_client, 59)
    refused(member_client.get(ME), window="principal", limit=60)
    response = APIClient(REMOTE_ADDR="10.0.0.3").post(
        SIGN_IN, {"username": member.username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response["RateLimit-Policy"] == '"client";q=10;w=60'


# --- 6. Exempt endpoints --------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "extra"), [("/health", {}), ("/api/v1/health", {}), ("/metrics", SCRAPE)]
)
def test_health_and_metrics_are_never_limited(path, extra):
    client = APIClient()
    responses = [client.get(path, **extra) for _ in range(25)]

    assert {r.status_code for r in responses} == {200}
    assert not [name for r in responses for name in RATE_HEADERS if name in r]


# --- 7. An organization's own limits ------------------------------------------------
def run_set_org_limits(*args: str) -> str:
    out = io.StringIO()
    call_command("set_org_limits", *args, stdout=out)
    return out.getvalue()


def test_an_override_applies_on_the_very_next_request(org, member_client):
    spend(member_client, 3)

    output = run_set_org_limits(org.slug, "--requests-per-minute", "3")
    response = member_client.get(ME)

    refused(response, window="principal", limit=3)
    assert response["RateLimit-Policy"] == '"principal";q=3;w=60, "organization";q=15;w=60'
    assert output.splitlines() == [
        "requests_per_minute: 3  (tier pro: 60)",
        "max_file_size_bytes: 25000000",
        "uploads_per_day: 10000",
    ]


def test_reset_returns_to_the_tiers_limit(org, member_client):
    run_set_org_limits(org.slug, "--requests-per-minute", "3")
    spend(member_client, 3)

    output = run_set_org_limits(org.slug, "--reset")
    response = member_client.get(ME)

    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "60"
    assert response["X-RateLimit-Remaining"] == "56"
    assert "requests_per_minute: 60\n" in output
    assert "tier pro" not in output
    org.refresh_from_db()
    assert org.requests_per_minute is None


def test_an_override_is_audited_and_shown_as_the_effective_limits(org, member_client):
    run_set_org_limits(org.slug, "--requests-per-minute", "3", "--max-file-size-mb", "7")

    body = member_client.get(ORG_CURRENT).json()
    assert body["limits"] == {
        "requests_per_minute": 3,
        "uploads_per_day": 10_000,
        "max_file_size_bytes": 7_000_000,
    }
    event = AuditEvent.objects.get(action="org.limits_changed")
    assert event.actor_type == "system"
    assert event.organization_id == org.id
    assert event.details == {
        "before": {
            "requests_per_minute": None,
            "uploads_per_day": None,
            "max_file_size_bytes": None,
        },
        "after": {
            "requests_per_minute": 3,
            "uploads_per_day": None,
            "max_file_size_bytes": 7_000_000,
        },
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("acme", "--requests-per-minute", "0"), "requests_per_minute must lie between 1 and"),
        (("acme", "--uploads-per-day", "0"), "uploads_per_day must lie between 1 and"),
        (("nope", "--requests-per-minute", "3"), "No organization with slug 'nope'."),
        (("acme",), "Name at least one limit to change, or --reset."),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(org, member_client, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run_set_org_limits(*args)

    org.refresh_from_db()
    assert (org.requests_per_minute, org.uploads_per_day) == (None, None)
    assert not AuditEvent.objects.filter(action="org.limits_changed").exists()
    assert member_client.get(ME)["X-RateLimit-Limit"] == "60"


def change_form(org: Organization, **changes: str) -> dict[str, str]:
    created = org.created_at.astimezone(dt.UTC)
    data = {
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "is_active": "on",
        "token_max_lifetime_days": "",
        "requests_per_minute": "",
        "uploads_per_day": "",
        "max_file_size_bytes": "",
        "created_at_0": created.strftime("%Y-%m-%d"),
        "created_at_1": created.strftime("%H:%M:%S"),
    }
    return {**data, **changes}


def test_an_override_made_in_admin_is_audited_and_applies_at_once(staff_browser, org, member):
    client = login_client(member)
    spend(client, 3)
    url = f"/admin/accounts/organization/{org.pk}/change/"

    response = staff_browser.post(url, change_form(org, requests_per_minute="3"))

    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="org.limits_changed")
    assert event.actor_display == "root"
    assert event.details["before"]["requests_per_minute"] is None
    assert event.details["after"]["requests_per_minute"] == 3
    refused(client.get(ME), window="principal", limit=3)


def test_a_zero_override_in_admin_is_a_form_error_not_a_server_error(staff_browser, org):
    staff_browser.raise_request_exception = False
    url = f"/admin/accounts/organization/{org.pk}/change/"

    response = staff_browser.post(url, change_form(org, requests_per_minute="0"))

    assert response.status_code == 200
    assert "Between 1 and 1,000,000" in response.content.decode()
    org.refresh_from_db()
    assert org.requests_per_minute is None


# --- 8. Metrics -------------------------------------------------------------------------
def rejections(tier: str, reason: str) -> float:
    text = APIClient().get("/metrics", **SCRAPE).content.decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    wanted = ("vantage_rate_limit_rejections_total", {"tier": tier, "reason": reason})
    return sum(s.value for s in samples if (s.name, s.labels) == wanted)


def test_a_refusal_is_counted_by_tier_and_window():
    before = rejections("free", "principal")
    client = client_in("free")
    spend(client, 10)

    client.get(ME)
    client.get(ME)

    assert rejections("free", "principal") == before + 2


# --- 9. Service tokens ----------------------------------------------------------------
def token_client(creator: APIClient) -> APIClient:
    """A client authenticated by a new service token the admin `creator` makes through the API."""
    created = creator.post(TOKENS, {"name": "ci", "scopes": ["image:read"]}, format="json")
    assert created.status_code == 201, created.content
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {created.json()['token']}")
    return token


def test_a_service_token_has_a_window_of_its_own_apart_from_its_creator():
    creator = login_client(member_of(OrganizationFactory(tier="free"), "admin"))
    token = token_client(creator)

    spend(token, 10, LIMITS)
    response = token.get(LIMITS)
    own = creator.get(ME)

    refused(response, window="principal", limit=10)
    assert own.status_code == 200
    # The creator's window holds only its own two requests; the organization's all twelve.
    assert own["X-RateLimit-Remaining"] == "8"
    assert own["RateLimit-Policy"] == '"principal";q=10;w=60, "organization";q=50;w=60'


def test_an_override_reaches_the_organizations_service_tokens_at_once(org, admin_client):
    token = token_client(admin_client)
    spend(token, 2, LIMITS)

    run_set_org_limits(org.slug, "--requests-per-minute", "2")

    refused(token.get(LIMITS), window="principal", limit=2)


# --- Requests refused before the limit is reached -----------------------------------
def test_requests_refused_for_lack_of_permission_count_against_the_limit(viewer_client):
    forbidden = viewer_client.get(TOKENS)
    assert forbidden.status_code == 403

    assert viewer_client.get(ME)["X-RateLimit-Remaining"] == "58"


def test_unauthenticated_api_calls_are_limited_per_client_address():
    client = APIClient(HTTP_AUTHORIZATION="Bearer sk_" + "0" * 64)
    responses = [client.get(ME) for _ in range(11)]

    assert [r.status_code for r in responses] == [401] * 10 + [429]


def test_a_token_refused_for_its_address_costs_its_owner_nothing_of_the_limit(admin_client):

    token = create_token(admin_client, scopes=["image:read"], allowed_ips=["10.0.0.0/8"])
    inside = APIClient(REMOTE_ADDR="10.1.2.3", HTTP_X_API_KEY=token["token"])
    outside = APIClient(REMOTE_ADDR="192.0.2.9", HTTP_X_API_KEY=token["token"])
    first = inside.get(LIMITS)
    assert first.status_code == 200, first.content
    remaining = int(first["X-RateLimit-Remaining"])

    for _ in range(3):
        assert_problem(outside.get(LIMITS), status=403, code="IP_NOT_ALLOWED")

    assert int(inside.get(LIMITS)["X-RateLimit-Remaining"]) == remaining - 1
