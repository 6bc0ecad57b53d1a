"""POST /api/v1/authorization/check, and the decision point's sources, logs and metrics."""

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from accounts.models import Membership
from accounts.tests.factories import GroupFactory
from config.testing.http import assert_problem, login_client

CHECK = "/api/v1/authorization/check"

pytestmark = pytest.mark.django_db(transaction=True)


def _check(client, org, user, permission="image:upload"):
    return client.post(
        CHECK,
        {"org_id": str(org.id), "user_id": str(user.id), "permission": permission},
        format="json",
    )


def test_an_admin_asks_about_a_member(admin_client, org, member):
    response = _check(admin_client, org, member)

    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is True
    assert body["groups"] == []
    assert body["reason"] == "granted by role user"
    assert body["source"] in ("db", "cache", "l1")


def test_a_denial_says_why(admin_client, org, viewer):
    body = _check(admin_client, org, viewer, "image:delete").json()

    assert body["allowed"] is False
    assert body["reason"] == "role viewer does not grant image:delete"


def test_a_group_grant_is_named(admin_client, org, viewer):
    group = GroupFactory(organization=org, name="editors", permissions=["image:delete"])
    group.members.add(Membership.objects.get(user=viewer))

    body = _check(admin_client, org, viewer, "image:delete").json()

    assert body["allowed"] is True
    assert body["groups"] == ["editors"]
    assert body["reason"] == "granted by group editors"


def test_repeated_checks_are_answered_from_the_caches(admin_client, org, member):
    sources = [_check(admin_client, org, member).json()["source"] for _ in range(3)]

    # The first read loads the member from the database; the next ones find it
    # in this process's memory, still of the organization's current generation.
    assert sources == ["db", "l1", "l1"]


def test_a_change_makes_the_in_process_copy_stale(admin, admin_client, org, member):
    assert _check(admin_client, org, member, "image:delete").json()["allowed"] is True
    assert _check(admin_client, org, member, "image:delete").json()["source"] == "l1"
    demote = admin_client.patch(
        f"/api/v1/orgs/current/members/{member.id}", {"role": "viewer"}, format="json"
    )
    assert demote.status_code == 200

    body = _check(admin_client, org, member, "image:delete").json()

    assert body["allowed"] is False
    assert body["source"] == "db"


def test_a_non_member_is_not_allowed(admin_client, org, outsider):
    body = _check(admin_client, org, outsider).json()

    assert body["allowed"] is False
    assert body["reason"] == "not an active member of this organization"


def test_asking_about_another_organization_is_refused(admin_client, other_org, member):
    response = _check(admin_client, other_org, member)

    assert_problem(response, status=403, code="PERMISSION_DENIED")


def test_the_outsider_cannot_learn_about_org_members(outsider_client, org, member):
    assert_problem(_check(outsider_client, org, member), status=403, code="PERMISSION_DENIED")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"org_id": "not-a-uuid", "user_id": str(uuid.uuid4()), "permission": "image:read"},
        {"org_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "permission": "fly"},
    ],
)
def test_bad_input_is_a_validation_problem(admin_client, payload):
    assert_problem(
        admin_client.post(CHECK, payload, format="json"), status=400, code="VALIDATION_ERROR"
    )


@pytest.mark.parametrize("role_client", ["member_client", "viewer_client", "guest_client"])
def test_without_authz_check_it_is_forbidden(request, org, member, role_client):
    client = request.getfixturevalue(role_client)
    assert_problem(_check(client, org, member), status=403, code="PERMISSION_DENIED")


def test_every_decision_is_logged_and_counted(admin_client, org, member, log_lines):
    def decisions(source, outcome):
        text = (
            APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token")
        ).content.decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "vantage_authz_decisions_total" and sample.labels == {
                    "source": source,
                    "outcome": outcome,
                }:
                    return sample.value
        return 0.0

    before = decisions("l1", "denied")
    _check(admin_client, org, member, "org:admin")
    _check(admin_client, org, member, "org:admin")

    assert decisions("l1", "denied") >= before + 1
    logged = [line for line in log_lines() if line["event"] == "authorization_decision"]
    denial = next(line for line in logged if line["permission"] == "org:admin")
    assert denial["allowed"] is False
    assert denial["principal"] == f"user:{member.id}"
    assert denial["level"] == "info"
    assert isinstance(denial["duration_ms"], float)


def test_with_the_cache_disabled_every_decision_reads_the_database(
    admin_client, org, member, settings
):
    settings.AUTH_CACHE_ENABLED = False

    sources = {_check(admin_client, org, member).json()["source"] for _ in range(3)}

    assert sources == {"db"}


def test_a_service_token_with_authz_check_may_ask(admin_client, org, member):
    created = admin_client.post(
        "/api/v1/tokens", {"name": "pdp-client", "scopes": ["authz:check"]}, format="json"
    ).json()
    client = login_client(member)
    client.credentials(HTTP_X_API_KEY=created["token"])

    assert _check(client, org, member).json()["allowed"] is True
