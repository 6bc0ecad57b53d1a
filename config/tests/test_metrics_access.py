"""Installation-wide monitoring is for the scrape token and staff; an organization reads its own."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Membership
from accounts.tests.factories import UserFactory, create_token
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client

SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}
HEALTH = "/api/v1/health/auth"
FIGURES = "/api/v1/orgs/current/metrics"
PDP_URL = "https://pdp.internal.example/api/v1/authorization/check"


@pytest.fixture
def staff_client(org: Any) -> APIClient:
    staff: Any = UserFactory(username="root", is_staff=True)
    Membership.objects.create(user=staff, organization=org, role="viewer")
    return login_client(staff)


@pytest.fixture
def remote_decision_point(settings: Any) -> None:
    settings.AUTH_API_URL = PDP_URL


def _sign_in_fails(username: str, times: int = 1) -> None:
    for _ in range(times):
        response = APIClient().post(
            "/api/v1/auth/token", {"username": username, "password": "wrong"}, format="json"
        )
        assert response.status_code == 401


@pytest.mark.parametrize("path", ["/metrics", HEALTH])
def test_an_organization_admin_cannot_read_installation_wide_monitoring(
    org, admin_client, remote_decision_point, path
):
    response = admin_client.get(path)

    body = assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert FIGURES in body["detail"]
    assert PDP_URL not in response.content.decode()
    assert AuditEvent.objects.filter(action="authz.denied", organization_id=org.id).exists()


@pytest.mark.parametrize("path", ["/metrics", HEALTH])
def test_a_token_holding_metrics_read_cannot_read_installation_wide_monitoring(admin_client, path):
    secret = create_token(admin_client, scopes=["metrics:read"])["token"]

    response = APIClient().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert_problem(response, status=403, code="PERMISSION_DENIED")


def test_staff_and_the_scrape_token_read_the_metrics(staff_client, api_client):
    for response in (staff_client.get("/metrics"), api_client.get("/metrics", **SCRAPE)):
        assert response.status_code == 200
        assert b"vantage_auth_logins_total" in response.content


def test_staff_and_the_scrape_token_read_the_authorization_health(
    staff_client, api_client, remote_decision_point
):
    for response in (staff_client.get(HEALTH), api_client.get(HEALTH, **SCRAPE)):
        assert response.status_code == 200
        assert response.json()["auth_api"]["url"] == PDP_URL


def test_an_admin_reads_their_organizations_figures_and_no_other(
    org, admin_client, member, outsider, outsider_client
):
    _sign_in_fails(member.username, times=3)
    _sign_in_fails(outsider.username, times=1)

    response = admin_client.get(FIGURES)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["organization_id"] == str(org.id)
    figures = {(row["action"], row["outcome"]): row["count"] for row in body["events"]}
    assert figures[("auth.login_failed", "failure")] == 3
    theirs = outsider_client.get(FIGURES).json()["events"]
    assert {(r["action"], r["outcome"]): r["count"] for r in theirs}[
        ("auth.login_failed", "failure")
    ] == 1


def test_a_token_holding_metrics_read_reads_its_organizations_figures(admin_client):
    secret = create_token(admin_client, scopes=["metrics:read"])["token"]

    response = APIClient().get(FIGURES, {"hours": 1}, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role_client", ["member_client", "viewer_client"])
def test_figures_need_metrics_read(request, role_client):
    response = request.getfixturevalue(role_client).get(FIGURES)

    assert_problem(response, status=403, code="PERMISSION_DENIED")


@pytest.mark.parametrize("hours", ["0", "721", "soon"])
def test_figures_refuse_a_window_out_of_range(admin_client, hours):
    response = admin_client.get(FIGURES, {"hours": hours})

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "hours"
