"""The dashboard in headless Chromium: what a person sees and does, end to end."""

from __future__ import annotations

import pytest

from accounts.tests.factories import PASSWORD
from config.tests.browser import chromium, jobs_run_at_once, new_page, screenshots, sign_in

# Fixtures, used by name.
__all__ = ["chromium", "jobs_run_at_once", "screenshots"]

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_signs_in_and_is_offered_the_pages_of_their_role(
    chromium, live_server, member, screenshots
):
    page = new_page(chromium, live_server)

    sign_in(page, member.username, PASSWORD)

    pages = page.get_by_role("navigation", name="Pages")
    assert pages.get_by_role("link", name="Upload").is_visible()
    assert pages.get_by_role("link", name="Gallery").is_visible()
    assert pages.get_by_role("link", name="Tokens").count() == 0
    page.screenshot(path=str(screenshots / "member-home.png"), full_page=True)


def test_a_viewer_is_offered_no_upload(chromium, live_server, viewer, screenshots):
    page = new_page(chromium, live_server)

    sign_in(page, viewer.username, PASSWORD)

    pages = page.get_by_role("navigation", name="Pages")
    assert pages.get_by_role("link", name="Gallery").is_visible()
    assert pages.get_by_role("link", name="Upload").count() == 0
    assert page.get_by_role("button", name="Upload").count() == 0
    page.screenshot(path=str(screenshots / "viewer-home.png"), full_page=True)
