"""An allow-list that allows every address, or nearly, is refused wherever allow-lists are set."""

from __future__ import annotations

import re

import pytest
from django.core.management.base import CommandError

from accounts.models import Organization, ServiceToken
from accounts.tests.commands import create
from accounts.tests.factories import TOKENS, create_token, detail_url, invalid, issue
from audit.tests.factories import audit_events as events
from config.testing.http import html, post, signed_in_browser

WHOLE_SPACE = [
    ["0.0.0.0/0", "::/0"],
    ["0.0.0.0/0"],
    ["::/0"],
    ["::ffff:0.0.0.0/96"],
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["::/1", "8000::/1", "10.0.0.0/8"],
    # Nearly every address: every public IPv4 and IPv6 client but a few.
    ["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3", "2000::/3"],
    [f"{first}.0.0.0/8" for first in (11, 12, 13, 14, 15)],
]
IDS = [
    "both",
    "ipv4",
    "ipv6",
    "ipv4-mapped",
    "two-halves-v4",
    "two-halves-v6",
    "nearly-all",
    "five-slash-8",
]
REFUSAL = re.compile(r"allows? (every (IPv\d )?address|\d+% of all IPv\d addresses)")


@pytest.fixture
def required(org: Organization) -> Organization:
    org.require_allowed_ips = True
    org.save(update_fields=["require_allowed_ips"])
    return org


@pytest.mark.parametrize("allowed_ips", WHOLE_SPACE, ids=IDS)
def test_create_refuses_an_allow_list_of_every_address(required, admin_client, allowed_ips):
    response = admin_client.post(
        TOKENS, {"name": "ci", "scopes": ["image:read"], "allowed_ips": allowed_ips}, format="json"
    )

    body = invalid(response, "allowed_ips")
    assert REFUSAL.search(body["errors"][0]["message"]), body
    assert not ServiceToken.objects.exists()
    assert not events("token.created")


@pytest.mark.parametrize("allowed_ips", WHOLE_SPACE, ids=IDS)
def test_patch_refuses_an_allow_list_of_every_address(required, admin_client, allowed_ips):
    token = create_token(admin_client, allowed_ips=["203.0.113.0/24"])

    response = admin_client.patch(
        detail_url(token["id"]), {"allowed_ips": allowed_ips}, format="json"
    )

    invalid(response, "allowed_ips")
    assert ServiceToken.objects.get(id=token["id"]).allowed_ips == ["203.0.113.0/24"]
    assert not events("token.updated")


def test_networks_up_to_the_widest_and_four_of_them_together_are_accepted(required, admin_client):
    wide = ["10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8", "13.0.0.0/8", "2001::/16"]
    made = create_token(admin_client, allowed_ips=wide)

    assert made["allowed_ips"] == wide


def test_the_command_refuses_an_allow_list_of_every_address(required, admin):
    with pytest.raises(CommandError, match="allows every address"):
        create("acme", "runner", "image:read", "--allowed-ips", "0.0.0.0/0,::/0")

    assert not ServiceToken.objects.exists()


def test_the_page_refuses_an_allow_list_of_every_address(required, admin):
    issued = issue(required, admin, allowed_ips=["10.0.0.0/8"])

    response = post(
        signed_in_browser("alice"),
        f"/tokens/{issued.token.id}/allowed-ips/",
        {"allowed_ips": "0.0.0.0/0\n::/0"},
    )

    assert response.status_code == 400
    assert "allows every address" in html(response)
    issued.token.refresh_from_db()
    assert issued.token.allowed_ips == ["10.0.0.0/8"]
