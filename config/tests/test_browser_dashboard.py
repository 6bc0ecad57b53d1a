"""The dashboard in headless Chromium: what a person sees and does, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from accounts.services.sessions import auth_login
from accounts.tests.factories import PASSWORD
from config.tests.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_signs_in_and_is_offered_the_pages_of_their_role(new_page, member, screenshots):
    page = new_page()

    sign_in(page, member.username, PASSWORD)

    pages = page.get_by_role("navigation", name="Pages")
    assert pages.get_by_role("link", name="Upload").is_visible()
    assert pages.get_by_role("link", name="Gallery").is_visible()
    assert pages.get_by_role("link", name="Tokens").count() == 0
    page.screenshot(path=str(screenshots / "member-home.png"), full_page=True)


def test_a_viewer_is_offered_no_upload(new_page, viewer, screenshots):
    page = new_page()

    sign_in(page, viewer.username, PASSWORD)

    pages = page.get_by_role("navigation", name="Pages")
    assert pages.get_by_role("link", name="Gallery").is_visible()
    assert pages.get_by_role("link", name="Upload").count() == 0
    assert page.get_by_role("button", name="Upload").count() == 0
    page.screenshot(path=str(screenshots / "viewer-home.png"), full_page=True)


def _pictures(directory: Path) -> list[Path]:
    """Two pictures drawn here (a road scene and a striped sign), as JPEGs to upload."""
    road = Image.new("RGB", (640, 420), "#8fc3ea")
    draw = ImageDraw.Draw(road)
    draw.rectangle((0, 250, 640, 420), fill="#555c66")
    draw.rectangle((0, 325, 640, 335), fill="#f2f2f2")
    draw.rounded_rectangle((190, 190, 450, 290), radius=28, fill="#c0392b")
    for x in (240, 400):
        draw.ellipse((x - 32, 262, x + 32, 326), fill="#1b1b1b")
    sign = Image.new("RGB", (480, 480), "#ffffff")
    draw = ImageDraw.Draw(sign)
    for index in range(0, 480, 60):
        draw.rectangle((index, 0, index + 30, 480), fill="#f5b301")
    paths = [directory / "road.jpg", directory / "sign.jpg"]
    road.save(paths[0], quality=90)
    sign.save(paths[1], quality=90)
    return paths


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.mark.usefixtures("jobs_run_at_once", "media_root")
def test_an_admin_uploads_makes_a_token_ends_a_session_and_reads_it_all_in_the_audit_log(
    new_page, admin, tmp_path, screenshots
):
    laptop = auth_login(login=admin.username, password=PASSWORD)  # an API session elsewhere
    page = new_page()
    sign_in(page, admin.username, PASSWORD)

    # Upload two photos and watch both reach the end, with their labels.
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Upload").click()
    # Until the page has loaded, its script may not be listening for chosen files yet.
    page.wait_for_url("**/upload/", wait_until="load")
    page.locator("#upload-files").set_input_files([str(p) for p in _pictures(tmp_path)])
    rows = page.locator("#upload-list > li")
    expect(rows).to_have_count(2)
    expect(page.locator('#upload-list > li[data-state="succeeded"]')).to_have_count(2)
    for labels in rows.locator(".labels").all_inner_texts():
        assert "%" in labels, labels  # each job's predictions, with their confidences
    page.screenshot(path=str(screenshots / "upload.png"), full_page=True)

    # The gallery shows both.
    page.goto("/images/")
    expect(page.locator("img[src*='/thumbnail']")).to_have_count(2)
    page.screenshot(path=str(screenshots / "drawn-gallery.png"), full_page=True)
    page.goto("/")
    page.screenshot(path=str(screenshots / "drawn-home.png"), full_page=True)

    # A token: its secret shown once, never again.
    page.goto("/tokens/new/")
    page.get_by_label("Name").fill("nightly-import")
    page.locator('input[name="scopes"][value="image:upload"]').check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("sk_")
    assert len(secret) == 67
    page.screenshot(path=str(screenshots / "token-secret.png"), full_page=True)
    page.goto("/tokens/")
    expect(page.get_by_text("nightly-import")).to_be_visible()
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()

    # End the other session.
    page.goto("/sessions/")
    other = page.locator("tr", has=page.get_by_role("button", name=re.compile("^End the session")))
    expect(other).to_have_count(1)
    other.get_by_role("button").click()
    expect(page.get_by_role("button", name=re.compile("^End the session"))).to_have_count(0)
    laptop.session.refresh_from_db()
    assert laptop.session.revoked_at is not None

    # The audit log lists what was just done.
    page.goto("/audit/")
    actions = page.locator("table.list tbody td:nth-child(3)").all_inner_texts()
    for action in ("image.uploaded", "token.created", "auth.session_revoked"):
        assert action in actions, (action, actions)
    page.screenshot(path=str(screenshots / "audit.png"), full_page=True)
