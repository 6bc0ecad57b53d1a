"""GET /api/v1/images/limits: the tier, its limits and today's uploads against the quota."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from rest_framework.test import APIClient

from accounts.errors import QuotaExceeded
from accounts.services.quotas import upload_quota_consume
from config.testing.http import assert_problem, login_client

LIMITS = "/api/v1/images/limits"

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_reads_the_tier_limits_and_todays_usage(member_client, org):
    response = member_client.get(LIMITS)

    assert response.status_code == 200
    assert response.json() == {
        "tier": "pro",
        "rate_limit_per_minute": 60,
        "max_file_size_bytes": 25_000_000,
        "daily_limit": 10_000,
        "used_today": 0,
        "remaining_today": 10_000,
        "min_dimensions": {"width": 32, "height": 32},
        "max_dimensions": {"width": 8192, "height": 8192},
        "allowed_types": ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"],
    }


def test_every_role_may_read_its_limits(guest_client, viewer_client):
    assert guest_client.get(LIMITS).status_code == 200
    assert viewer_client.get(LIMITS).status_code == 200


def test_anonymous_is_refused():
    assert_problem(APIClient().get(LIMITS), status=401, code="NOT_AUTHENTICATED")


def test_an_override_is_reported_on_the_next_request(member_client, org):
    member_client.get(LIMITS)
    call_command("set_org_limits", org.slug, "--uploads-per-day", "3", stdout=None)

    body = member_client.get(LIMITS).json()

    assert body["daily_limit"] == 3
    assert body["rate_limit_per_minute"] == 60


def test_uploads_counted_today_are_reported_and_the_quota_holds(member_client, org):
    upload_quota_consume(organization_id=org.id, limit=3, tier="pro", count=2)
    call_command("set_org_limits", org.slug, "--uploads-per-day", "3", stdout=None)

    body = member_client.get(LIMITS).json()
    assert (body["used_today"], body["remaining_today"]) == (2, 1)

    upload_quota_consume(organization_id=org.id, limit=3, tier="pro")
    with pytest.raises(QuotaExceeded) as refused:
        upload_quota_consume(organization_id=org.id, limit=3, tier="pro")
    assert refused.value.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 86_400
    assert member_client.get(LIMITS).json()["used_today"] == 3


def test_the_quota_resets_at_utc_midnight(member, org):
    with time_machine.travel(dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC), tick=False):
        upload_quota_consume(organization_id=org.id, limit=1, tier="pro")
        with pytest.raises(QuotaExceeded) as refused:
            upload_quota_consume(organization_id=org.id, limit=1, tier="pro")
        assert refused.value.headers["Retry-After"] == "60"
    with time_machine.travel(dt.datetime(2026, 3, 2, 0, 0, 1, tzinfo=dt.UTC), tick=False):
        assert upload_quota_consume(organization_id=org.id, limit=1, tier="pro") == 1
        assert login_client(member).get(LIMITS).json()["used_today"] == 1


def _used(client: APIClient) -> int:
    return client.get(LIMITS).json()["used_today"]


@pytest.mark.integration
def test_a_warm_limits_answer_asks_the_database_nothing(member_client, django_assert_num_queries):
    member_client.get(LIMITS)  # this process learns the member view; the count is copied
    member_client.get(LIMITS)

    with django_assert_num_queries(0):
        assert _used(member_client) == 0


@pytest.mark.integration
def test_the_count_read_with_the_credential_follows_uploads_but_not_a_rolled_back_one(
    member_client, org, django_assert_num_queries
):
    assert _used(member_client) == 0
    upload_quota_consume(organization_id=org.id, limit=10, tier="pro", count=2)
    assert _used(member_client) == 2

    with transaction.atomic():
        upload_quota_consume(organization_id=org.id, limit=10, tier="pro", count=3)
        transaction.set_rollback(True)  # the upload failed after its count

    with django_assert_num_queries(0):
        assert _used(member_client) == 2
