"""A member who leaves takes their service tokens with them, for good, audited and listed."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Membership, Organization, ServiceToken
from accounts.tests.factories import TOKENS, MembershipFactory, as_token, create_token
from audit.tests.factories import audit_events as events
from config.testing.http import assert_problem, login_client, post, signed_in_browser

MEMBERS = "/api/v1/orgs/current/members"
REMOVED_REASON = "creator removed from the organization"
DEACTIVATED_REASON = "creator's account deactivated"

# A revocation reaches the token cache once it commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def second_admin(org: Organization) -> Any:
    return MembershipFactory(organization=org, role="admin", user__username="erin").user


@pytest.fixture
def erins_token(second_admin: Any) -> dict[str, Any]:
    made = create_token(login_client(second_admin), name="erins-ci")
    assert as_token(made["token"]).status_code == 200
    return made


def _listed(client: APIClient, token_id: str) -> dict[str, Any]:
    rows = client.get(TOKENS, {"page_size": 100}).json()["results"]
    return next(row for row in rows if row["id"] == token_id)


def _assert_revoked_for_good(admin_client: APIClient, made: dict[str, Any], reason: str) -> None:
    listed = _listed(admin_client, made["id"])
    assert listed["status"] == "revoked"
    assert listed["revoked_reason"] == reason
    assert listed["revoked_at"] is not None
    [event] = events("token.revoked", resource_id=made["id"])
    assert event.details["reason"] == reason
    assert_problem(as_token(made["token"]), status=401, code="TOKEN_REVOKED")


def test_removing_a_member_revokes_their_tokens_and_lists_them_revoked(
    admin_client, second_admin, erins_token
):
    response = admin_client.delete(f"{MEMBERS}/{second_admin.id}")

    assert response.status_code == 204, response.content
    _assert_revoked_for_good(admin_client, erins_token, REMOVED_REASON)
    [removed] = events("org.member_removed")
    assert removed.details["tokens_revoked"] == 1


def test_a_removed_members_token_stays_dead_when_they_are_added_again(
    admin_client, org, second_admin, erins_token
):
    assert admin_client.delete(f"{MEMBERS}/{second_admin.id}").status_code == 204

    Membership.objects.create(user=second_admin, organization=org, role="admin")

    assert login_client(second_admin).get(TOKENS).status_code == 200
    assert as_token(erins_token["token"]).status_code == 401
    assert _listed(admin_client, erins_token["id"])["status"] == "revoked"


def test_removing_a_member_on_the_members_page_revokes_their_tokens(
    admin, admin_client, second_admin, erins_token
):
    response = post(signed_in_browser("alice"), f"/members/{second_admin.id}/remove/")

    assert response.status_code == 302
    _assert_revoked_for_good(admin_client, erins_token, REMOVED_REASON)


def test_removal_spares_other_members_tokens_and_the_same_persons_tokens_elsewhere(
    admin_client, org, other_org, second_admin, erins_token
):
    alices = create_token(admin_client, name="alices-ci")
    MembershipFactory(organization=other_org, role="admin", user=second_admin)
    elsewhere = create_token(login_client(second_admin, other_org), name="erin-at-globex")

    assert admin_client.delete(f"{MEMBERS}/{second_admin.id}").status_code == 204

    assert as_token(alices["token"]).status_code == 200
    assert as_token(elsewhere["token"]).status_code == 200
    assert ServiceToken.objects.get(id=elsewhere["id"]).revoked_at is None


def test_deactivating_a_user_in_admin_revokes_their_tokens_in_every_organization(
    staff_browser, admin_client, other_org, second_admin, erins_token
):
    MembershipFactory(organization=other_org, role="admin", user=second_admin)
    elsewhere = create_token(login_client(second_admin, other_org), name="erin-at-globex")

    response = staff_browser.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [str(second_admin.pk)]},
    )

    assert response.status_code == 302
    _assert_revoked_for_good(admin_client, erins_token, DEACTIVATED_REASON)
    assert as_token(elsewhere["token"]).status_code == 401
    assert ServiceToken.objects.get(id=elsewhere["id"]).revoked_reason == DEACTIVATED_REASON
    second_admin.is_active = True  # reactivated by hand: the tokens stay revoked
    second_admin.save(update_fields=["is_active"])
    assert as_token(erins_token["token"]).status_code == 401
