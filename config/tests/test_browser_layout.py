"""Every page at 1366 and 390 px in headless Chromium: on a phone the menu folds behind one
button and tables become stacked rows, nothing scrolls sideways and nothing is clipped;
signing out says so; /health answers JSON to a browser."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from accounts.services.tokens import token_create
from accounts.tests.factories import PASSWORD
from config.tests.browser import sign_in
from images.models import Job
from images.tests.factories import ImageFactory
from webhooks.tests.factories import endpoint_for

pytestmark = pytest.mark.django_db(transaction=True)

PHONE, DESKTOP = 390, 1366
WIDTHS = pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
# Each page of the menu with a table on it, or none.
PAGES = {
    "Home": "/",
    "Upload": "/upload/",
    "Gallery": "/images/",
    "Classify": "/classify/",
    "Tokens": "/tokens/",
    "Members": "/members/",
    "Audit": "/audit/",
    "Providers": "/providers/",
    "Webhooks": "/webhooks/",
    "Invitations": "/invitations/",
    "Sessions": "/sessions/",
    "Account": "/account/",
}

# Every table cell wider than its table's box, and how far the page scrolls sideways.
LAYOUT = """() => ({
  sideways: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  clipped: [...document.querySelectorAll('.table-wrap')]
    .filter((wrap) => wrap.scrollWidth > wrap.clientWidth)
    .map((wrap) => wrap.querySelector('table').className),
})"""
# For each stacked table: whether its header row is shown, and each cell's label as drawn.
STACKED = """() => [...document.querySelectorAll('table.list tbody tr')].slice(0, 3).map((row) => ({
  header: row.closest('table').querySelector('thead').getBoundingClientRect().height > 2,
  cells: [...row.children].filter((cell) => cell.dataset.label).map((cell) => [
    cell.dataset.label, getComputedStyle(cell, '::before').content,
  ]),
}))"""


@pytest.fixture
def lived_in(org, admin, member):
    """An organization with something in every table: images and jobs, a token, events."""
    for label in ("car", "other_vehicle", "not_vehicle"):
        image = ImageFactory(
            organization=org,
            label=label,
            filename=f"a-long-file-name-{label}.jpg",
            classification={"vehicle_probability": 0.42},
        )
        Job.objects.create(
            organization=org, image=image, kind=Job.Kind.CLASSIFY, status=Job.Status.SUCCEEDED
        )
    token_create(
        organization=org,
        name="nightly-import-from-the-depot-cameras",
        scopes=["image:read", "image:upload"],
        created_by=admin,
        allowed_ips=["203.0.113.0/24", "2001:db8:1234:5678::/64"],
    )
    endpoint_for(
        org,
        url="https://hooks.example.com/receivers/the-depot-cameras/vantage-events",
        event_types=["job.succeeded", "job.failed", "token.expiring", "member.removed"],
        description="The depot's receiver",
    )
    return org


def _open_menu(page, width: int) -> None:
    """On a phone, open the folded menu through its one button."""
    if width != PHONE:
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        return
    button = page.get_by_role("button", name="Menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()


@WIDTHS
def test_every_page_fits_the_screen_with_the_menu_folded_on_a_phone(
    new_page, admin, lived_in, screenshots, width
):
    page = new_page(width=width)
    problems: list[str] = []  # a script the CSP refuses, or one that fails, says so here
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, admin.username, PASSWORD)

    for name, path in PAGES.items():
        page.goto("/")
        _open_menu(page, width)
        page.get_by_role("navigation", name="Pages").get_by_role("link", name=name).click()
        page.wait_for_url(f"**{path}")

        layout = page.evaluate(LAYOUT)
        assert layout["sideways"] <= 0, (path, layout)
        assert layout["clipped"] == [], (path, layout)
        if width == PHONE:
            # The menu is folded again on the new page: one button, not three lines of links.
            expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()
            for row in page.evaluate(STACKED):
                assert not row["header"], (path, row)
                for label, drawn in row["cells"]:
                    assert drawn == json.dumps(label), (path, label, drawn)
        page.screenshot(
            path=str(screenshots / f"page-{path.strip('/') or 'home'}-{width}.png"), full_page=True
        )
    assert problems == []


def test_the_menu_folds_and_unfolds_with_the_keyboard_on_a_phone(new_page, admin, screenshots):
    page = new_page(width=PHONE)
    sign_in(page, admin.username, PASSWORD)
    button = page.get_by_role("button", name="Menu")

    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    page.screenshot(path=str(screenshots / "menu-open-390.png"), full_page=True)
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Home").focus()
    page.keyboard.press("Escape")

    expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")


@WIDTHS
def test_signing_out_says_so(new_page, admin, screenshots, width):
    page = new_page(width=width)
    sign_in(page, admin.username, PASSWORD)
    _open_menu(page, width)

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url("**/login/")
    expect(page.get_by_role("status")).to_have_text("You are signed out. Sign in again below.")
    page.screenshot(path=str(screenshots / f"signed-out-{width}.png"), full_page=True)
    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)  # said once


@WIDTHS
def test_health_answers_json_to_a_browser_without_a_console_error(
    new_page, server_processes, width
):
    # Debug mode offers DRF's browsable pages, chosen when they start: a real server in it.
    (server,) = server_processes(count=1, DJANGO_DEBUG="true")
    page = new_page(width=width)
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    response = page.goto(f"http://127.0.0.1:{server.port}/health")

    assert response is not None
    assert response.headers["content-type"] == "application/json"
    assert json.loads(page.locator("body").inner_text())["status"] == "healthy"
    assert problems == []
