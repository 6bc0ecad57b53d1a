"""Invitations in headless Chromium: an admin invites, the invited person accepts or declines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Invitation, Membership
from accounts.tests.factories import PASSWORD, GroupFactory
from config.tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def _invite(page: Any, email: str, role: str) -> None:
    page.goto("/members/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(f"{email} was invited as {role}.")).to_be_visible()


@pytest.mark.usefixtures("member")
def test_an_invitation_is_sent_accepted_and_the_organization_offered(
    new_page, org, admin, outsider, screenshots
):
    GroupFactory(organization=org, name="editors", permissions=["image:upload"])
    alice = new_page()
    sign_in(alice, admin.username, PASSWORD)
    _invite(alice, "mallory@example.com", "user")
    row = alice.locator("tr", has_text="mallory@example.com")
    expect(row.locator('[data-status="pending"]')).to_be_visible()
    alice.screenshot(path=str(screenshots / "members-invitations.png"), full_page=True)

    # Someone else in the organization is offered nothing.
    bob = new_page()
    sign_in(bob, "bob", PASSWORD)
    bob.get_by_role("navigation", name="Pages").get_by_role("link", name="Invitations").click()
    expect(bob.get_by_text("No open invitations.")).to_be_visible()

    mallory = new_page()
    sign_in(mallory, outsider.username, PASSWORD)
    mallory.get_by_role("navigation", name="Pages").get_by_role("link", name="Invitations").click()
    expect(mallory.get_by_text("Acme", exact=True)).to_be_visible()
    mallory.screenshot(path=str(screenshots / "invitations.png"), full_page=True)
    mallory.get_by_role("button", name="Accept the invitation to Acme").click()
    expect(mallory.get_by_text("You joined Acme as user.")).to_be_visible()
    expect(mallory.get_by_text("No open invitations.")).to_be_visible()
    assert Membership.objects.get(organization=org, user=outsider).role == "user"
    # The organization switch offers the organization just joined.
    switch = mallory.get_by_label("Organization")
    switch.select_option("acme")
    mallory.get_by_role("button", name="Switch").click()
    signed_in_as = mallory.get_by_role("navigation", name="Account").locator("span.muted")
    expect(signed_in_as).to_have_text(re.compile(r"· acme$"))

    alice.reload()
    expect(row.locator('[data-status="accepted"]')).to_be_visible()
    alice.goto("/members/")
    expect(alice.locator("strong", has_text=re.compile("^mallory$"))).to_be_visible()


def test_an_invitation_is_declined_revoked_or_expires_and_joins_nobody(
    new_page, org, admin, outsider
):
    alice = new_page()
    sign_in(alice, admin.username, PASSWORD)
    _invite(alice, "mallory@example.com", "viewer")
    _invite(alice, "erin@example.com", "guest")

    # Revoking asks first, then the invitation can no longer be accepted.
    alice.once("dialog", lambda dialog: dialog.accept())
    alice.get_by_role("button", name="Revoke the invitation of erin@example.com").click()
    expect(alice.get_by_text("The invitation of erin@example.com was revoked.")).to_be_visible()
    erin_row = alice.locator("tr", has_text="erin@example.com")
    expect(erin_row.locator('[data-status="revoked"]')).to_be_visible()

    mallory = new_page()
    sign_in(mallory, outsider.username, PASSWORD)
    mallory.goto("/invitations/")
    mallory.once("dialog", lambda dialog: dialog.accept())
    mallory.get_by_role("button", name="Decline the invitation to Acme").click()
    expect(mallory.get_by_text("You declined the invitation to Acme.")).to_be_visible()
    alice.reload()
    mallory_row = alice.locator("tr", has_text="mallory@example.com")
    expect(mallory_row.locator('[data-status="declined"]')).to_be_visible()

    # Invited again, and then the invitation runs out before it is answered.
    _invite(alice, "mallory@example.com", "viewer")
    Invitation.objects.filter(state="pending").update(expires_at=timezone.now())
    mallory.goto("/invitations/")
    expect(mallory.get_by_text("No open invitations.")).to_be_visible()
    alice.reload()
    expect(alice.locator('[data-status="expired"]')).to_have_count(1)
    assert not Membership.objects.filter(organization=org, user=outsider).exists()
