"""A new token's secret in headless Chromium: reloading or going back never makes another."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import ServiceToken
from accounts.tests.factories import PASSWORD
from config.tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = re.compile(r"sk_[0-9a-f]{64}")


def test_reloading_and_going_back_from_the_secret_make_no_second_token(
    new_page, admin, screenshots
):
    page = new_page()
    sign_in(page, admin.username, PASSWORD)
    page.goto("/tokens/new/")
    page.get_by_label("Name").fill("nightly-import")
    page.locator('input[name="scopes"][value="image:upload"]').check()

    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#token-secret")).to_have_text(SECRET)
    secret = page.locator("#token-secret").inner_text().strip()
    page.screenshot(path=str(screenshots / "token-secret-shown.png"), full_page=True)

    page.reload()

    assert ServiceToken.objects.count() == 1
    expect(page.get_by_role("heading", level=1)).to_contain_text("was shown once")
    expect(page.get_by_role("link", name="Go to the token to rotate it")).to_be_visible()
    assert secret not in page.content()
    assert not SECRET.search(page.content())
    page.screenshot(path=str(screenshots / "token-secret-shown-once.png"), full_page=True)

    page.go_back()
    page.wait_for_load_state()
    assert secret not in page.content()
    page.go_forward()
    page.wait_for_load_state()
    assert secret not in page.content()

    assert ServiceToken.objects.count() == 1
    page.goto("/tokens/")
    expect(page.get_by_role("row", name=re.compile("nightly-import"))).to_have_count(1)
