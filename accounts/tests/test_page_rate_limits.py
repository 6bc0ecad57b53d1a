"""Dashboard page loads per minute by tier, in windows of their own apart from the API's.

A signed-in browser is counted per principal (and per organization) like an
API caller, so a script cannot read through the pages what the API refuses;
past the figure it gets the dashboard's own 429 page with the wait.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.services.organizations import organization_limits_set
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from config.testing.http import csrf_token, login_client, signed_in_browser

pytestmark = pytest.mark.django_db(transaction=True)

GALLERY = "/images/"
ME = "/api/v1/auth/me"
DOCS = "docs/api.md"


@pytest.fixture(autouse=True)
def _rate_limits_on(settings: Any) -> None:
    settings.RATE_LIMIT_ENABLED = True


def browser_in(tier: str, username: str = "pat") -> tuple[Client, Any]:
    """A signed-in browser of a member of a new organization of `tier`, and the member."""
    org = OrganizationFactory(tier=tier)
    user = MembershipFactory(organization=org, role="user", user__username=username).user
    return signed_in_browser(username), user


def load(client: Client, count: int, path: str = GALLERY) -> list[Any]:
    """Load a page `count` times; every load must be answered 200."""
    responses = [client.get(path) for _ in range(count)]
    assert [r.status_code for r in responses] == [200] * count, responses[-1].content[:500]
    return responses


def assert_styled_429(response: Any, *, limit: int) -> None:
    """A refused page: 429 with Retry-After, in the dashboard's look, saying how long to wait."""
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "css/vantage.css" in page
    assert 'class="topbar"' in page
    assert 'aria-label="Pages"' in page
    assert f"limit of {limit} pages a minute" in page
    in_words = "1 minute" if wait == 60 else f"{wait} second{'' if wait == 1 else 's'}"
    assert f"Try again in {in_words}." in page
    assert response["X-RateLimit-Limit"] == str(limit)
    assert response["X-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize(("tier", "limit"), [("free", 30), ("pro", 60), ("enterprise", 120)])
def test_pages_past_the_tiers_figure_answer_the_styled_429_with_retry_after(tier, limit):
    client, _ = browser_in(tier)

    responses = load(client, limit)
    refused = client.get(GALLERY)

    assert_styled_429(refused, limit=limit)
    assert [int(r["X-RateLimit-Remaining"]) for r in responses][-3:] == [2, 1, 0]
    assert refused["RateLimit-Policy"] == (
        f'"principal";q={limit};w=60, "organization";q={5 * limit};w=60'
    )
    # Every page is counted in the same window, not only the one loaded over and over.
    assert_styled_429(client.get("/sessions/"), limit=limit)


def test_a_principal_refused_by_the_api_is_refused_by_the_pages_too(settings):
    """The finding: 429 on the API, then 30 page loads in a row all answered 200."""
    client, user = browser_in("free")
    organization_limits_set(organization=user.memberships.get().organization, requests_per_minute=1)
    api = login_client(user)
    assert api.get(ME).status_code == 200
    assert api.get(ME).status_code == 429

    statuses = [client.get(GALLERY).status_code for _ in range(31)]

    assert statuses == [200] * 30 + [429]


def test_the_api_and_the_pages_are_counted_in_windows_of_their_own():
    client, user = browser_in("free")
    api = login_client(user)

    # The API's ten requests of the minute leave every page load of the minute...
    assert [api.get(ME).status_code for _ in range(11)] == [200] * 10 + [429]
    load(client, 30)
    assert client.get(GALLERY).status_code == 429
    # ...and the pages' thirty leave nothing of the API's, which refills on its own.
    browser_api = client.get(ME)
    assert browser_api.status_code == 429
    assert browser_api["X-RateLimit-Limit"] == "10"


def test_the_pages_refused_leave_the_api_its_whole_window():
    client, user = browser_in("free")
    load(client, 30)
    assert client.get(GALLERY).status_code == 429

    responses = [login_client(user).get(ME) for _ in range(10)]

    assert [r.status_code for r in responses] == [200] * 10
    assert responses[0]["X-RateLimit-Remaining"] == "9"


def test_signing_out_and_in_and_health_are_never_starved_by_the_page_window():
    client, _ = browser_in("free")
    load(client, 30)
    assert client.get(GALLERY).status_code == 429

    assert client.get("/health").status_code == 200
    assert client.post("/logout/", {"csrfmiddlewaretoken": csrf_token(client)}).status_code == 302
    assert client.get("/login/").status_code == 200
    again = signed_in_browser("pat")
    # Signed in again, the same person's page window is still full: a new session is no escape.
    assert again.get(GALLERY).status_code == 429


def test_each_person_has_a_page_window_of_their_own():
    client, user = browser_in("free")
    MembershipFactory(organization=user.memberships.get().organization, user__username="quinn")
    load(client, 30)

    assert client.get(GALLERY).status_code == 429
    assert signed_in_browser("quinn").get(GALLERY).status_code == 200


def test_pages_are_not_limited_when_rate_limits_are_off(settings):
    settings.RATE_LIMIT_ENABLED = False
    client, _ = browser_in("free")

    load(client, 35)


def test_the_page_figures_are_documented_per_tier(settings):
    docs = (settings.BASE_DIR / DOCS).read_text(encoding="utf-8")
    table = docs.split("## Tiers", 1)[1].strip().split("\n\n", 1)[0]
    section = docs.split("### Rate limits and quotas", 1)[1].split("\n### ", 1)[0]

    assert "pages / min" in table
    for tier, figure in settings.TIER_PAGES_PER_MINUTE.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {tier} |"))
        assert f"| {figure} |" in row
        assert f"{tier} {figure}" in section
