"""A new token's secret in the dashboard: post/redirect/get, shown once, and names kept apart.

Creating or rotating a token answers with a redirect; the page it leads to shows
the secret once, carried there by a short-lived signed cookie, and loaded again
says how to get a new secret instead. Nothing readable of the secret is kept on
the server. A live token's name cannot be given to a second token.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session as DjangoSession
from django.core import signing
from django.test import Client
from django.utils import timezone

from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import ServiceToken
from accounts.services import tokens as token_services
from accounts.tokens.format import token_digest
from audit.models import AuditEvent
from config.testing.http import csrf_token, signed_in_browser

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"sk_[0-9a-f]{64}")
COOKIE = "vantage_token_secret"
SHOWN_ONCE = "was shown once"


def post(client: Client, path: str, data: dict[str, Any], **extra: Any) -> Any:
    """Send a form as the page does: with the CSRF token the page embeds."""
    return client.post(path, {**data, "csrfmiddlewaretoken": csrf_token(client)}, **extra)


def html(response: Any) -> str:
    return response.content.decode()


def issue(org: Any, creator: Any, name: str = "pipeline") -> token_services.IssuedToken:
    return token_services.token_create(
        organization=org, name=name, scopes=["image:read"], created_by=creator
    )


def create(client: Client, name: str = "nightly-import", **extra: Any) -> Any:
    return post(client, "/tokens/new/", {"name": name, "scopes": ["image:upload"]}, **extra)


# --- Post/redirect/get ---------------------------------------------------------------------


def test_creating_a_token_redirects_to_a_page_showing_its_secret_once(org, admin):
    client = signed_in_browser("alice")

    sent = create(client)

    assert sent.status_code == 302
    token = ServiceToken.objects.get()
    assert sent["Location"] == f"/tokens/{token.id}/secret/"
    assert not SECRET.search(html(sent))
    shown = client.get(sent["Location"])
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    (secret,) = set(SECRET.findall(html(shown)))
    assert token_digest(secret) == token.digest
    assert "Token nightly-import created" in html(shown)

    again = client.get(sent["Location"])

    assert again.status_code == 200
    assert "no-store" in again["Cache-Control"]
    page = html(again)
    assert not SECRET.search(page)
    assert SHOWN_ONCE in page
    assert "Rotate the token" in page
    assert f'href="/tokens/{token.id}/"' in page
    assert ServiceToken.objects.count() == 1
    assert AuditEvent.objects.filter(action="token.created").count() == 1


def test_the_secret_travels_in_a_short_lived_strict_cookie_only_to_the_tokens_page(org, admin):
    client = signed_in_browser("alice")

    sent = create(client)

    token = ServiceToken.objects.get()
    cookie = sent.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == f"/tokens/{token.id}/secret/"
    assert 0 < int(cookie["max-age"]) <= 120
    assert not cookie["secure"]  # this request came over plain HTTP
    assert not SECRET.search(cookie.value)
    # Never kept on the server in a readable form: only its digest is.
    assert all(not SECRET.search(str(s.get_decoded())) for s in DjangoSession.objects.all())
    shown = client.get(sent["Location"])
    assert shown.cookies[COOKIE]["max-age"] == 0  # deleted by the page that shows it
    assert shown.cookies[COOKIE]["path"] == f"/tokens/{token.id}/secret/"


def test_over_https_the_secrets_cookie_is_secure(org, admin):
    client = signed_in_browser("alice")

    # Over HTTPS, Django's CSRF check also wants the form's page as the referrer.
    sent = create(client, secure=True, HTTP_REFERER="https://testserver/tokens/new/")

    assert sent.status_code == 302
    assert sent.cookies[COOKIE]["secure"]


def test_rotating_redirects_to_a_page_showing_the_successors_secret_once(org, admin):
    issued = issue(org, admin, "deployer")
    client = signed_in_browser("alice")

    sent = post(client, f"/tokens/{issued.token.id}/rotate/", {"grace_seconds": "600"})

    assert sent.status_code == 302
    successor = ServiceToken.objects.get(rotated_from=issued.token)
    assert successor.name == "deployer"
    assert sent["Location"] == f"/tokens/{successor.id}/secret/"
    shown = client.get(sent["Location"])
    (secret,) = set(SECRET.findall(html(shown)))
    assert token_digest(secret) == successor.digest
    assert "Token deployer rotated" in html(shown)
    again = html(client.get(sent["Location"]))
    assert not SECRET.search(again)
    assert SHOWN_ONCE in again
    assert "issued by rotation" in again
    assert ServiceToken.objects.count() == 2


def test_a_cookie_with_a_forged_or_misdirected_value_shows_no_secret(org, admin):
    first, second = issue(org, admin, "first"), issue(org, admin, "second")
    client = signed_in_browser("alice")
    session_id = str(client.session[BROWSER_SESSION_KEY])

    def signed(token: ServiceToken, secret: str) -> str:
        value = {"token": str(token.id), "session": session_id, "secret": secret, "rotated": False}
        return signing.dumps(value, salt="accounts.views.tokens.secret")

    cases = {
        "unsigned": "sk_" + "0" * 64,
        "any text, signed": signed(second.token, "You have won a prize"),
        "another token's secret": signed(second.token, first.secret),
        "for another token": signed(first.token, first.secret),
    }
    for case, value in cases.items():
        client.cookies[COOKIE] = value
        page = html(client.get(f"/tokens/{second.token.id}/secret/"))
        assert SHOWN_ONCE in page, case
        assert "prize" not in page, case
        assert not SECRET.search(page), case
    client.cookies[COOKIE] = signed(second.token, second.secret)
    assert second.secret in html(client.get(f"/tokens/{second.token.id}/secret/"))


def test_the_secrets_cookie_serves_only_the_browser_session_it_was_made_for(org, admin):
    maker = signed_in_browser("alice")
    sent = create(maker)
    other = signed_in_browser("alice")  # the same person, another sign-in

    other.cookies[COOKIE] = sent.cookies[COOKIE].value
    page = html(other.get(sent["Location"]))

    assert not SECRET.search(page)
    assert SHOWN_ONCE in page


def test_the_secret_is_not_shown_after_two_minutes(org, admin, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client = signed_in_browser("alice")
    sent = create(client)

    time_machine.shift(timedelta(seconds=121))
    page = html(client.get(sent["Location"]))

    assert not SECRET.search(page)
    assert SHOWN_ONCE in page


def test_another_organizations_admin_gets_not_found_for_the_secret_page(org, admin, outsider):
    sent = create(signed_in_browser("alice"))

    response = signed_in_browser("mallory").get(sent["Location"])

    assert response.status_code == 404
    assert "nightly-import" not in html(response)


def test_a_member_without_token_manage_may_not_open_the_secret_page(org, admin, member):
    sent = create(signed_in_browser("alice"))

    response = signed_in_browser("bob").get(sent["Location"])

    assert response.status_code == 403
    assert not SECRET.search(html(response))


# --- One live token per name ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["nightly-import", "  Nightly-Import "])
def test_a_live_tokens_name_is_refused_with_the_reason_beside_it_and_the_form_kept(
    org, admin, name
):
    live = issue(org, admin, "nightly-import")
    client = signed_in_browser("alice")

    response = post(
        client,
        "/tokens/new/",
        {
            "name": name,
            "scopes": ["image:upload", "image:read"],
            "expires_in_days": "12",
            "allowed_ips": "10.0.0.0/8",
        },
    )

    assert response.status_code == 409
    page = html(response)
    assert "The token was not created:" in page
    beside = re.search(r'<p class="field-error" id="token-name-error">([^<]+)</p>', page)
    assert beside, page
    assert "A live token is already named" in beside.group(1)
    assert f"{live.token.prefix}…" in beside.group(1)
    assert 'aria-describedby="token-name-error token-name-hint"' in page
    assert f'value="{name}"' in page
    assert 'name="scopes" value="image:upload" checked' in page
    assert 'name="scopes" value="image:read" checked' in page
    assert 'value="12"' in page
    assert ">10.0.0.0/8</textarea>" in page
    assert ServiceToken.objects.count() == 1
    assert AuditEvent.objects.filter(action="token.created").count() == 1
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_the_name_of_a_revoked_or_expired_token_may_be_used_again(org, admin, ended):
    old = issue(org, admin, "nightly-import").token
    if ended == "revoked":
        token_services.token_revoke(token=old, reason="retired")
    else:
        ServiceToken.objects.filter(id=old.id).update(expires_at=timezone.now())
    client = signed_in_browser("alice")

    sent = create(client)

    assert sent.status_code == 302
    assert ServiceToken.objects.filter(name="nightly-import").count() == 2


def test_a_rotated_token_keeps_its_name_and_the_name_stays_taken(org, admin):
    issued = issue(org, admin, "deployer")
    client = signed_in_browser("alice")
    rotated = post(client, f"/tokens/{issued.token.id}/rotate/", {"grace_seconds": "0"})
    assert rotated.status_code == 302

    refused = create(client, "deployer")

    assert refused.status_code == 409
    assert list(ServiceToken.objects.values_list("name", flat=True)) == ["deployer"] * 2


def test_another_organization_may_use_the_same_name(org, admin, other_org, outsider):
    issue(org, admin, "nightly-import")

    sent = create(signed_in_browser("mallory"))

    assert sent.status_code == 302
    assert ServiceToken.objects.filter(organization=other_org).count() == 1
