"""The identity pages of the dashboard: account, sessions, the organization switch, service
tokens, and members and groups.

Every test goes through django.test.Client signed in at /login/ with CSRF checks
enforced, the way a browser does it, and asserts the page and the database after.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import Group, Membership, ServiceToken, Session, TokenUsageDay, User
from accounts.roles import SCOPES
from accounts.services import token_rotations
from accounts.services import tokens as token_services
from accounts.tests.factories import PASSWORD, GroupFactory, MembershipFactory, issue
from accounts.tokens.format import token_digest
from audit.models import AuditEvent
from audit.tests.factories import audit_events as actions
from config.testing.http import (
    browser,
    browser_session,
    html,
    login_client,
    post,
    signed_in_browser,
    submit_login,
)

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"sk_[0-9a-f]{64}")
NEW_PASSWORD = "a-much-longer-passphrase-77"


def queries_for(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


# --- Signed out, and what each role is offered ------------------------------------------------


SIGNED_IN_PAGES = ["/account/", "/sessions/", "/tokens/", "/tokens/new/", "/members/"]


@pytest.mark.parametrize("path", [*SIGNED_IN_PAGES, "/sessions/?page=2"])
def test_signed_out_pages_send_the_browser_to_sign_in_and_back(db, path):
    response = browser().get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert browser().get(response["Location"]).status_code == 200
    assert parse_qs(urlsplit(response["Location"]).query)["next"] == [path]


def test_signed_out_form_posts_change_nothing(org, admin):
    issued = issue(org, admin)
    client = browser()
    client.get("/login/")

    response = post(client, f"/tokens/{issued.token.id}/revoke/", {"reason": "x"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_signing_in_from_an_action_url_lands_on_its_page(org, admin):
    issued = issue(org, admin)
    client = signed_in_browser("alice")

    response = client.get(f"/tokens/{issued.token.id}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == f"/tokens/{issued.token.id}/"


@pytest.mark.parametrize("path", ["/tokens/", "/tokens/new/", "/members/"])
def test_a_viewer_is_refused_the_admin_pages(org, viewer, path):
    response = signed_in_browser("carol").get(path)

    assert response.status_code == 403
    assert "Your role may not use this page" in html(response)


def test_a_viewer_is_refused_admin_detail_pages(org, admin, viewer):
    issued = issue(org, admin)
    group = GroupFactory(organization=org, name="editors")
    client = signed_in_browser("carol")

    assert client.get(f"/tokens/{issued.token.id}/").status_code == 403
    assert client.get(f"/members/groups/{group.id}/").status_code == 403


def _viewer_posts(org: Any, admin: Any, member: Any) -> list[tuple[str, dict[str, Any]]]:
    token = issue(org, admin).token
    group = GroupFactory(organization=org, name="editors")
    return [
        ("/tokens/new/", {"name": "sneaky", "scopes": ["image:read"]}),
        (f"/tokens/{token.id}/rotate/", {"grace_seconds": "0"}),
        (f"/tokens/{token.id}/revoke/", {"reason": "x"}),
        (f"/tokens/{token.id}/allowed-ips/", {"allowed_ips": "10.0.0.0/8"}),
        ("/tokens/revoke-all/", {"reason": "x", "confirm": "acme"}),
        ("/members/invite/", {"email": "mallory@example.com", "role": "admin"}),
        (f"/members/{member.id}/role/", {"role": "admin"}),
        (f"/members/{member.id}/remove/", {}),
        ("/members/groups/new/", {"name": "sneaky", "permissions": ["org:admin"]}),
        (f"/members/groups/{group.id}/edit/", {"name": "x", "permissions": ["org:admin"]}),
        (f"/members/groups/{group.id}/delete/", {}),
        (f"/members/groups/{group.id}/members/add/", {"user_id": str(member.id)}),
    ]


def test_a_viewers_posts_to_admin_actions_are_refused_and_change_nothing(
    org, admin, member, viewer, outsider
):
    forms = _viewer_posts(org, admin, member)
    tokens_before = list(ServiceToken.objects.values_list("id", "revoked_at", "allowed_ips"))
    members_before = list(Membership.objects.values_list("id", "role"))
    groups_before = list(Group.objects.values_list("id", "name", "permissions"))
    events_before = AuditEvent.objects.count()
    client = signed_in_browser("carol")

    for path, data in forms:
        response = post(client, path, data)
        assert response.status_code == 403, path

    tokens_after = list(ServiceToken.objects.values_list("id", "revoked_at", "allowed_ips"))
    assert tokens_after == tokens_before
    assert list(Membership.objects.values_list("id", "role")) == members_before
    assert list(Group.objects.values_list("id", "name", "permissions")) == groups_before
    # Nothing but the viewer's own sign-in was recorded.
    assert list(
        AuditEvent.objects.order_by("seq")[events_before:].values_list("action", flat=True)
    ) == ["auth.login"]


@pytest.mark.parametrize("path", ["/", "/account/", "/sessions/"])
def test_a_viewer_is_offered_no_admin_links_or_buttons(org, viewer, path):
    page = html(signed_in_browser("carol").get(path))

    for admin_path in ("/tokens/", "/members/", "/audit/"):
        assert f'href="{admin_path}' not in page
        assert f'action="{admin_path}' not in page
    assert 'href="/sessions/"' in page
    assert 'href="/account/"' in page


def test_an_admin_is_offered_tokens_members_and_audit(org, admin):
    page = html(signed_in_browser("alice").get("/account/"))

    for admin_path in ("/tokens/", "/members/", "/audit/"):
        assert f'href="{admin_path}"' in page


def test_pages_load_their_styles_and_only_module_scripts(org, admin):
    issued = issue(org, admin)
    client = signed_in_browser("alice")

    for path in ("/account/", "/sessions/", "/tokens/", f"/tokens/{issued.token.id}/", "/members/"):
        response = client.get(path)
        page = html(response)
        assert "/static/css/pages-accounts.css" in page
        assert "<script>" not in page
        assert " onclick=" not in page
        assert " style=" not in page
        for tag in re.findall(r"<script[^>]*>", page):
            assert 'type="module"' in tag
            assert 'src="/static/js/' in tag
        assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("style-src")[0]


# --- Account and password ---------------------------------------------------------------------


def test_account_page_shows_the_users_details_and_organizations(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    client = signed_in_browser("bob")

    page = html(client.get("/account/"))

    assert "bob@example.com" in page
    assert "<dd>bob</dd>" in page
    assert "Acme" in page
    assert "Globex" in page
    assert "image:upload" in page
    assert 'action="/account/password/"' in page
    assert 'autocomplete="current-password"' in page


def test_password_change_ends_every_other_session_and_keeps_this_browser(org, member):
    other_browser = signed_in_browser("bob")
    api = login_client(member)
    client = signed_in_browser("bob")
    this_session = browser_session(client)

    response = post(
        client,
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    page = html(client.get("/account/"))
    assert "2 other sessions ended" in page
    this_session.refresh_from_db()
    assert this_session.revoked_at is None
    assert this_session.django_session_key == client.session.session_key
    ended = Session.objects.filter(user=member).exclude(id=this_session.id)
    assert {s.revoked_reason for s in ended} == {"password_changed"}
    assert other_browser.get("/")["Location"] == "/login/"
    assert api.get("/api/v1/auth/me").status_code == 401
    (event,) = actions("user.password_changed")
    assert event.details == {"sessions_ended": 2}
    assert event.actor_display == "bob"
    assert submit_login(browser(), "bob", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "old_password": "wrong-password",
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
            "Your current password is not right.",
        ),
        (
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD + "x",
            },
            "The two new passwords differ.",
        ),
        (
            {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"},
            "This password is too short.",
        ),
        (
            {
                "old_password": PASSWORD,
                "new_password1": "password1234",
                "new_password2": "password1234",
            },
            "This password is too common.",
        ),
        (
            {"old_password": PASSWORD, "new_password1": "", "new_password2": ""},
            "This field is required.",
        ),
    ],
    ids=["wrong-current", "mismatch", "too-short", "too-common", "empty"],
)
def test_a_refused_password_change_says_why_and_changes_nothing(org, member, fields, message):
    api = login_client(member)
    client = signed_in_browser("bob")

    response = post(client, "/account/password/", fields)

    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert PASSWORD not in page
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert not Session.objects.filter(revoked_at__isnull=False).exists()
    assert api.get("/api/v1/auth/me").status_code == 200
    assert not actions("user.password_changed")


def test_password_change_without_a_csrf_token_is_refused(org, member):
    client = signed_in_browser("bob")

    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 403
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


# --- The organization switch -------------------------------------------------------------------


def test_the_switcher_lists_the_users_organizations(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")

    page = html(signed_in_browser("bob").get("/"))

    assert 'action="/account/organization/"' in page
    assert '<option value="acme" selected>Acme (user)</option>' in page
    assert '<option value="globex">Globex (viewer)</option>' in page
    assert 'for="org-switch"' in page


def test_a_user_of_one_organization_is_offered_no_switcher(org, member):
    page = html(signed_in_browser("bob").get("/"))

    assert 'action="/account/organization/"' not in page
    assert 'action="/logout/"' in page


def test_switching_moves_the_browser_session_and_its_principal(
    org, other_org, member, django_capture_on_commit_callbacks
):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    client = signed_in_browser("bob")
    session = browser_session(client)
    assert "<code>acme</code>" in html(client.get("/"))

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/account/organization/", {"org": "globex"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    session.refresh_from_db()
    assert session.organization_id == other_org.id
    assert browser_session(client).id == session.id
    home = html(client.get("/"))
    assert "viewer of <code>globex</code>" in " ".join(home.split())
    assert "You are now working in Globex as viewer." in home
    me = client.get("/api/v1/auth/me").json()
    assert me["organization"]["id"] == str(other_org.id)
    assert me["role"] == "viewer"
    (event,) = actions("auth.org_switched")
    assert event.organization_id == other_org.id
    assert event.details == {"from_organization_id": str(org.id)}


def test_switching_to_an_organization_of_others_is_not_found(org, other_org, member, outsider):
    client = signed_in_browser("bob")
    session = browser_session(client)

    response = post(client, "/account/organization/", {"org": "globex"})

    assert response.status_code == 404
    session.refresh_from_db()
    assert session.organization_id == org.id
    assert not actions("auth.org_switched")


def test_switching_without_an_organization_changes_nothing(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    client = signed_in_browser("bob")

    response = post(client, "/account/organization/", {"org": ""})

    assert response.status_code == 302
    assert "Choose an organization." in html(client.get("/"))
    assert browser_session(client).organization_id == org.id


def test_switching_without_a_csrf_token_is_refused(org, other_org, member):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    client = signed_in_browser("bob")

    response = client.post("/account/organization/", {"org": "globex"})

    assert response.status_code == 403
    assert browser_session(client).organization_id == org.id


# --- Sessions ----------------------------------------------------------------------------------


def test_sessions_lists_browser_and_api_sessions_with_the_current_one_marked(
    org, other_org, member, viewer
):
    MembershipFactory(user=member, organization=other_org, role="viewer")
    api = login_client(member, other_org)
    Session.objects.filter(id=api.sign_in.session.id).update(
        ip="198.51.100.4", device="curl 8.5", user_agent="curl/8.5.0"
    )
    signed_in_browser("carol")  # another user's session is not listed
    client = browser()
    submit_login(client, "bob", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    current = browser_session(client)

    response = client.get("/sessions/")

    assert response.status_code == 200
    page = html(response)
    assert page.count('action="/sessions/') == 3  # two sessions and "everywhere else"
    assert f'action="/sessions/{current.id}/revoke/"' in page
    assert f'action="/sessions/{api.sign_in.session.id}/revoke/"' in page
    assert "this browser" in page
    assert "API client" in page
    assert "Browser" in page
    assert "198.51.100.4" in page
    assert "curl 8.5" in page
    assert "<code>globex</code>" in page
    assert "<code>acme</code>" in page
    assert page.index("this browser") < page.index("curl 8.5")  # newest activity first


def test_ending_another_session_refuses_it_from_then_on(org, member):
    api = login_client(member)
    client = signed_in_browser("bob")

    response = post(client, f"/sessions/{api.sign_in.session.id}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/sessions/"
    ended = Session.objects.get(id=api.sign_in.session.id)
    assert ended.revoked_reason == "revoked_by_user"
    assert api.get("/api/v1/auth/me").status_code == 401
    assert "ended" in html(client.get("/sessions/"))
    (event,) = actions("auth.session_revoked")
    assert event.resource_id == str(ended.id)
    assert event.actor_display == "bob"


def test_ending_this_browsers_session_signs_it_out(org, member):
    client = signed_in_browser("bob")
    session = browser_session(client)

    response = post(client, f"/sessions/{session.id}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    session.refresh_from_db()
    assert session.revoked_at is not None
    assert BROWSER_SESSION_KEY not in client.session
    assert client.get("/sessions/")["Location"].startswith("/login/")


def test_ending_everywhere_else_keeps_only_this_browser(org, member):
    apis = [login_client(member) for _ in range(2)]
    other_browser = signed_in_browser("bob")
    client = signed_in_browser("bob")

    response = post(client, "/sessions/revoke-others/")

    assert response.status_code == 302
    assert "3 other sessions ended" in html(client.get("/sessions/"))
    assert all(api.get("/api/v1/auth/me").status_code == 401 for api in apis)
    assert other_browser.get("/")["Location"] == "/login/"
    assert Session.objects.filter(user=member, revoked_at__isnull=True).get() == browser_session(
        client
    )
    assert len(actions("auth.session_revoked")) == 3


def test_ending_someone_elses_session_is_not_found_and_changes_nothing(org, member, outsider):
    victim = login_client(member)
    client = signed_in_browser("mallory")

    response = post(client, f"/sessions/{victim.sign_in.session.id}/revoke/")

    assert response.status_code == 404
    assert victim.get("/api/v1/auth/me").status_code == 200
    assert not actions("auth.session_revoked")


def test_the_sessions_page_costs_the_same_queries_for_many_sessions(
    org, member, django_assert_max_num_queries
):
    client = signed_in_browser("bob")
    login_client(member)
    few = queries_for(client, "/sessions/")
    for _ in range(15):
        login_client(member)

    with django_assert_max_num_queries(few):
        response = client.get("/sessions/")

    assert html(response).count("End the session on") == 16


# --- Service tokens: the list ---------------------------------------------------------------


def test_the_token_list_shows_each_tokens_state_and_never_a_secret(org, admin, member):
    active = issue(
        org,
        admin,
        "nightly-import",
        scopes=["image:read", "image:upload"],
        allowed_ips=["10.0.0.0/8"],
    )
    revoked = issue(org, admin, "old-job")
    token_services.token_revoke(token=revoked.token, reason="job retired")
    client = signed_in_browser("alice")

    response = client.get("/tokens/")

    assert response.status_code == 200
    page = html(response)
    assert "nightly-import" in page
    assert f"<code>{active.token.prefix}…</code>" in page
    assert '<span class="badge active">active</span>' in page
    assert '<span class="badge revoked">revoked</span>' in page
    assert "job retired" in page
    assert "<li>image:upload</li>" in page
    assert "<code>10.0.0.0/8</code>" in page
    assert "any address" in page
    assert "by alice" in page
    assert not SECRET.search(page)
    assert active.token.digest not in page


def test_the_token_list_draws_thirty_days_of_use(org, admin):
    issued = issue(org, admin)
    today = timezone.now().date()
    TokenUsageDay.objects.create(token=issued.token, date=today, requests=8)
    TokenUsageDay.objects.create(token=issued.token, date=today - timedelta(days=29), requests=2)
    TokenUsageDay.objects.create(token=issued.token, date=today - timedelta(days=30), requests=50)

    page = html(signed_in_browser("alice").get("/tokens/"))

    points = re.search(r'<polyline points="([^"]+)"', page).group(1).split()
    assert len(points) == 30
    assert points[0] == "0.0,20.0"  # 2 of a peak of 8
    assert points[-1] == "120.0,2.0"  # the peak, today
    assert points[15] == "62.1,26.0"  # no use that day
    assert "10 requests from" in page
    assert "at most 8 a day" in page


def test_uses_counted_since_the_last_flush_show_at_once(org, admin):
    issued = issue(org, admin)
    api = APIClient()
    for _ in range(3):
        assert api.get("/api/v1/auth/me", HTTP_X_API_KEY=issued.secret).status_code in (200, 403)

    page = html(signed_in_browser("alice").get("/tokens/"))

    assert "3 requests from" in page
    issued.token.refresh_from_db()
    assert issued.token.usage_count == 3


def test_the_token_list_shows_rotation_families_and_self_rotation(org, admin):
    first = issue(org, admin, "deployer", scopes=["image:read", "token:self_rotate"])
    api = APIClient()
    self_rotated = api.post(
        "/api/v1/tokens/self/rotate",
        {"grace_seconds": 600},
        HTTP_X_API_KEY=first.secret,
        format="json",
    )
    assert self_rotated.status_code == 201, self_rotated.content
    successor = ServiceToken.objects.get(id=self_rotated.json()["id"])

    page = html(signed_in_browser("alice").get("/tokens/"))

    assert '<span class="badge rotating">rotating</span>' in page
    link = f'<a href="/tokens/{first.token.id}/"><code>{first.token.prefix}…</code></a>'
    assert f"from {link}" in page
    assert "by deployer" in page
    assert '<span class="badge self-rotated">self-rotated</span>' in page
    assert "grace ends" in page
    assert f'rotated into <a href="/tokens/{successor.id}/">' in page
    assert successor.self_rotated


def test_the_token_list_is_paginated(org, admin):
    for n in range(27):
        issue(org, admin, f"token-{n:02}")
    client = signed_in_browser("alice")

    first, second = html(client.get("/tokens/")), html(client.get("/tokens/?page=2"))

    assert "token-26" in first
    assert "token-00" not in first
    assert "token-00" in second
    assert "Page 2 of 2" in second


def test_the_token_list_costs_the_same_queries_for_many_tokens(
    org, admin, django_assert_max_num_queries
):
    today = timezone.now().date()

    def add(count: int) -> None:
        for n in range(count):
            token = issue(org, admin, f"t{count}-{n}").token
            TokenUsageDay.objects.create(token=token, date=today, requests=n + 1)
            rotated = token_rotations.token_rotate(token=token, grace_seconds=60)
            TokenUsageDay.objects.create(token=rotated.token, date=today, requests=1)

    add(1)
    client = signed_in_browser("alice")
    few = queries_for(client, "/tokens/")
    add(10)

    with django_assert_max_num_queries(few):
        response = client.get("/tokens/")

    assert html(response).count("<polyline") == 22


def test_another_organizations_tokens_are_not_listed(org, admin, outsider, other_org):
    issue(org, admin, "acme-only")
    issue(other_org, outsider, "globex-only")

    page = html(signed_in_browser("mallory").get("/tokens/"))

    assert "globex-only" in page
    assert "acme-only" not in page


# --- Service tokens: creating one, and its secret shown once -----------------------------------


def test_the_new_token_form_offers_every_scope_to_an_admin(org, admin):
    page = html(signed_in_browser("alice").get("/tokens/new/"))

    for scope in SCOPES:
        assert f'name="scopes" value="{scope}"' in page
    assert 'for="token-name"' in page
    assert 'for="token-days"' in page
    assert 'for="token-ips"' in page


def test_the_new_token_form_offers_only_the_scopes_the_user_may_grant(org, member):
    group = GroupFactory(organization=org, name="token-keepers", permissions=["token:manage"])
    group.members.add(Membership.objects.get(user=member))
    client = signed_in_browser("bob")

    page = html(client.get("/tokens/new/"))

    offered = set(re.findall(r'name="scopes" value="([^"]+)"', page))
    assert offered == {
        "image:read",
        "image:upload",
        "image:delete",
        "member:read",
        "token:manage",
        "token:self_rotate",
    }
    response = post(client, "/tokens/new/", {"name": "x", "scopes": ["audit:read"]})
    assert response.status_code == 400
    assert "You cannot grant a scope you lack: audit:read." in html(response)
    assert not ServiceToken.objects.exists()


def test_creating_a_token_shows_its_secret_once_and_never_stores_it(org, admin):
    client = signed_in_browser("alice")

    sent = post(
        client,
        "/tokens/new/",
        {
            "name": "ci-deploy",
            "scopes": ["image:read", "image:upload"],
            "expires_in_days": "30",
            "allowed_ips": "10.0.0.0/8\r\n\r\n203.0.113.7\n",
        },
    )
    assert sent.status_code == 302
    response = client.get(sent["Location"])

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = html(response)
    (secret,) = set(SECRET.findall(page))
    token = ServiceToken.objects.get(digest=token_digest(secret))
    assert token.name == "ci-deploy"
    assert token.scopes == ["image:read", "image:upload"]
    assert token.allowed_ips == ["10.0.0.0/8", "203.0.113.7/32"]
    assert token.created_by == admin
    assert (token.expires_at - token.created_at).days == 30
    assert "it will not be shown again" in page
    assert 'data-copy="token-secret"' in page
    assert '<script type="module" src="/static/js/copy.js"></script>' in page
    # Nowhere to be found again: not in the session, its cookies, the list or the detail.
    assert secret not in str(dict(client.session.items()))
    assert all(secret not in str(s.get_decoded()) for s in DjangoSession.objects.all())
    assert all(secret not in morsel.value for morsel in client.cookies.values())
    for path in ("/tokens/", f"/tokens/{token.id}/", "/tokens/new/"):
        again = html(client.get(path))
        assert secret not in again
        assert not SECRET.search(again)
    (event,) = actions("token.created")
    assert event.resource_id == str(token.id)
    assert event.actor_display == "alice"
    assert secret not in str(event.details)


def test_the_new_secret_authenticates(org, admin):
    client = signed_in_browser("alice")
    sent = post(client, "/tokens/new/", {"name": "reader", "scopes": ["image:read"]})
    page = html(client.get(sent["Location"]))
    secret = SECRET.search(page).group(0)

    response = APIClient().get("/api/v1/tokens/self", HTTP_X_API_KEY=secret)

    assert response.status_code == 200
    assert response.json()["name"] == "reader"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "scopes": ["image:read"]}, "Name cannot be empty."),
        ({"name": "x"}, "Choose at least one scope."),
        ({"name": "x", "scopes": ["nope"]}, "“nope” is not a scope this organization offers."),
        (
            {"name": "x", "scopes": ["image:read"], "expires_in_days": "0"},
            "A token lasts at least 1 day: give 1 or more.",
        ),
        (
            {"name": "x", "scopes": ["image:read"], "expires_in_days": "soon"},
            "Give the days as a whole number, such as 30.",
        ),
        (
            {"name": "x", "scopes": ["image:read"], "allowed_ips": "10.0.0.7/24"},
            "“10.0.0.7/24” has bits set after the /24: did you mean 10.0.0.0/24?",
        ),
        (
            {"name": "x", "scopes": ["image:read"], "allowed_ips": "not-an-ip"},
            "“not-an-ip” is not an IP address or network, such as 203.0.113.0/24.",
        ),
    ],
    ids=[
        "no-name",
        "no-scopes",
        "unknown-scope",
        "zero-days",
        "not-a-number",
        "host-bits",
        "not-an-ip",
    ],
)
def test_creating_a_token_with_bad_input_says_why_and_creates_nothing(org, admin, fields, message):
    client = signed_in_browser("alice")

    response = post(client, "/tokens/new/", fields)

    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert "The token was not created:" in page
    assert f'value="{fields["name"]}"' in page  # what was typed is kept
    assert not ServiceToken.objects.exists()
    assert not actions("token.created")
    assert not SECRET.search(page)


def test_creating_a_token_follows_the_organizations_policy(org, admin):
    org.require_allowed_ips = True
    org.token_max_lifetime_days = 10
    org.save()
    client = signed_in_browser("alice")
    assert 'max="10"' in html(client.get("/tokens/new/"))

    no_list = post(client, "/tokens/new/", {"name": "x", "scopes": ["image:read"]})
    too_long = post(
        client,
        "/tokens/new/",
        {
            "name": "x",
            "scopes": ["image:read"],
            "allowed_ips": "10.0.0.0/8",
            "expires_in_days": "30",
        },
    )

    assert no_list.status_code == 400
    assert "requires allowed_ips" in html(no_list)
    assert too_long.status_code == 400
    assert "expires_in_days must be between 1 and 10" in html(too_long)
    assert not ServiceToken.objects.exists()


# --- Service tokens: one token, rotate, revoke, allow-list, revoke-all -------------------------


def test_the_token_page_shows_it_and_its_forms(org, admin):
    issued = issue(org, admin, "deployer", allowed_ips=["10.0.0.0/8"])

    page = html(signed_in_browser("alice").get(f"/tokens/{issued.token.id}/"))

    assert "deployer" in page
    assert f'action="/tokens/{issued.token.id}/rotate/"' in page
    assert f'action="/tokens/{issued.token.id}/revoke/"' in page
    assert f'action="/tokens/{issued.token.id}/allowed-ips/"' in page
    assert ">10.0.0.0/8</textarea>" in page
    assert "(this token)" in page
    assert not SECRET.search(page)


def test_rotating_shows_the_successors_secret_once_and_keeps_the_old_for_the_grace(org, admin):
    issued = issue(org, admin, "deployer", scopes=["image:read", "image:upload"])
    client = signed_in_browser("alice")
    before = timezone.now()

    sent = post(client, f"/tokens/{issued.token.id}/rotate/", {"grace_seconds": "3600"})
    assert sent.status_code == 302
    response = client.get(sent["Location"])

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    (secret,) = set(SECRET.findall(html(response)))
    successor = ServiceToken.objects.get(digest=token_digest(secret))
    assert successor.rotated_from_id == issued.token.id
    assert successor.rotated_by_display == "alice"
    assert successor.scopes == ["image:read", "image:upload"]
    issued.token.refresh_from_db()
    assert issued.token.status_at(timezone.now()) == "rotating"
    grace = issued.token.revoked_at - before
    assert timedelta(minutes=59) < grace <= timedelta(minutes=61)
    assert APIClient().get("/api/v1/tokens/self", HTTP_X_API_KEY=issued.secret).status_code == 200
    (event,) = actions("token.rotated")
    assert event.details["successor_id"] == str(successor.id)
    assert event.actor_display == "alice"
    old_page = html(client.get(f"/tokens/{issued.token.id}/"))
    assert "Old secret works until" in old_page
    assert secret not in old_page
    family = html(client.get(f"/tokens/{successor.id}/"))
    assert f'<a href="/tokens/{issued.token.id}/"><code>{issued.token.prefix}…</code></a>' in family


@pytest.mark.parametrize(
    ("grace", "message"),
    [
        ("90000", "Choose a grace period of 86400 seconds or less."),
        ("", "Choose a grace period from the list."),
    ],
)
def test_rotating_with_a_bad_grace_rotates_nothing(org, admin, grace, message):
    issued = issue(org, admin)
    client = signed_in_browser("alice")

    response = post(client, f"/tokens/{issued.token.id}/rotate/", {"grace_seconds": grace})

    assert response.status_code == 400
    assert message in html(response)
    assert ServiceToken.objects.count() == 1
    assert not actions("token.rotated")


def test_rotating_a_revoked_token_is_refused(org, admin):
    issued = issue(org, admin)
    token_services.token_revoke(token=issued.token)
    client = signed_in_browser("alice")

    response = post(client, f"/tokens/{issued.token.id}/rotate/", {"grace_seconds": "0"})

    assert response.status_code == 400
    assert "Only an active token can be rotated; this one is revoked." in html(response)
    assert ServiceToken.objects.count() == 1


def test_a_token_with_scopes_the_user_lacks_offers_no_rotate_button(org, admin, member):
    group = GroupFactory(organization=org, name="token-keepers", permissions=["token:manage"])
    group.members.add(Membership.objects.get(user=member))
    wide = issue(org, admin, "wide", scopes=["audit:read"])
    client = signed_in_browser("bob")

    page = html(client.get(f"/tokens/{wide.token.id}/"))
    refused = post(client, f"/tokens/{wide.token.id}/rotate/", {"grace_seconds": "0"})

    assert f'action="/tokens/{wide.token.id}/rotate/"' not in page
    assert "it has scopes you do not hold yourself" in page
    assert refused.status_code == 400
    assert "You cannot grant a scope you lack: audit:read." in html(refused)
    assert ServiceToken.objects.count() == 1


def test_revoking_a_token_refuses_it_from_its_next_request(org, admin):
    issued = issue(org, admin)
    client = signed_in_browser("alice")

    response = post(client, f"/tokens/{issued.token.id}/revoke/", {"reason": "leaked in a log"})

    assert response.status_code == 302
    assert response["Location"] == f"/tokens/{issued.token.id}/"
    issued.token.refresh_from_db()
    assert issued.token.revoked_reason == "leaked in a log"
    assert APIClient().get("/api/v1/tokens/self", HTTP_X_API_KEY=issued.secret).status_code == 401
    page = html(client.get(f"/tokens/{issued.token.id}/"))
    assert "is revoked" in page
    assert '<span class="badge revoked">revoked</span>' in page
    assert f'action="/tokens/{issued.token.id}/revoke/"' not in page
    (event,) = actions("token.revoked")
    assert event.details["reason"] == "leaked in a log"


def test_revoking_with_an_overlong_reason_revokes_nothing(org, admin):
    issued = issue(org, admin)

    response = post(
        signed_in_browser("alice"), f"/tokens/{issued.token.id}/revoke/", {"reason": "x" * 201}
    )

    assert response.status_code == 400
    assert "Reason can be at most 200 characters." in html(response)
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None


def test_editing_the_allow_list_replaces_it(org, admin):
    issued = issue(org, admin, allowed_ips=["10.0.0.0/8"])
    client = signed_in_browser("alice")

    response = post(
        client,
        f"/tokens/{issued.token.id}/allowed-ips/",
        {"allowed_ips": "192.0.2.0/24\n2001:db8::1"},
    )

    assert response.status_code == 302
    issued.token.refresh_from_db()
    assert issued.token.allowed_ips == ["192.0.2.0/24", "2001:db8::1/128"]
    assert "may now be used from 192.0.2.0/24, 2001:db8::1/128" in html(
        client.get(response["Location"])
    )
    (event,) = actions("token.updated")
    assert event.details["allowed_ips"] == {
        "from": ["10.0.0.0/8"],
        "to": ["192.0.2.0/24", "2001:db8::1/128"],
    }
    cleared = post(client, f"/tokens/{issued.token.id}/allowed-ips/", {"allowed_ips": ""})
    assert cleared.status_code == 302
    issued.token.refresh_from_db()
    assert issued.token.allowed_ips == []


def test_a_bad_allow_list_is_shown_with_what_was_typed_and_changes_nothing(org, admin):
    issued = issue(org, admin, allowed_ips=["10.0.0.0/8"])

    response = post(
        signed_in_browser("alice"),
        f"/tokens/{issued.token.id}/allowed-ips/",
        {"allowed_ips": "10.0.0.0/8\nnot-an-address"},
    )

    assert response.status_code == 400
    page = html(response)
    assert "“not-an-address” is not an IP address or network" in page
    assert "not-an-address</textarea>" in page
    issued.token.refresh_from_db()
    assert issued.token.allowed_ips == ["10.0.0.0/8"]
    assert not actions("token.updated")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": "leak", "confirm": ""}, "Type the organization&#x27;s slug, acme, exactly"),
        ({"reason": "leak", "confirm": "ACME"}, "Type the organization&#x27;s slug, acme, exactly"),
        ({"reason": "leak", "confirm": "globex"}, "Type the organization&#x27;s slug, acme"),
        ({"reason": "", "confirm": "acme"}, "Reason cannot be empty."),
        ({"reason": "x" * 181, "confirm": "acme"}, "Reason can be at most 180 characters."),
    ],
    ids=["empty", "wrong-case", "another-slug", "no-reason", "long-reason"],
)
def test_revoke_all_without_the_typed_confirmation_and_a_reason_revokes_nothing(
    org, admin, fields, message
):
    issued = issue(org, admin)

    response = post(signed_in_browser("alice"), "/tokens/revoke-all/", fields)

    assert response.status_code == 400
    assert message in html(response)
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert not actions("token.emergency_revoke")


def test_revoke_all_with_the_slug_typed_revokes_every_token(org, admin, outsider, other_org):
    mine = [issue(org, admin, f"t{n}") for n in range(3)]
    token_rotations.token_rotate(token=mine[0].token, grace_seconds=3600)
    theirs = issue(other_org, outsider)
    client = signed_in_browser("alice")

    response = post(client, "/tokens/revoke-all/", {"reason": "laptop stolen", "confirm": "acme"})

    assert response.status_code == 302
    assert "4 tokens revoked" in html(client.get("/tokens/"))
    now = timezone.now()
    assert all(t.status_at(now) == "revoked" for t in ServiceToken.objects.filter(organization=org))
    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None
    (event,) = actions("token.emergency_revoke")
    assert event.details == {"reason": "laptop stolen", "revoked": 4}


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("get", "", {}),
        ("post", "rotate/", {"grace_seconds": "0"}),
        ("post", "revoke/", {"reason": "x"}),
        ("post", "allowed-ips/", {"allowed_ips": "10.0.0.0/8"}),
    ],
)
@pytest.mark.usefixtures("outsider")
def test_another_organizations_token_is_not_found(org, admin, method, suffix, data):
    issued = issue(org, admin)
    client = signed_in_browser("mallory")
    path = f"/tokens/{issued.token.id}/{suffix}"

    response = client.get(path) if method == "get" else post(client, path, data)

    assert response.status_code == 404
    assert "no service token with that id" in html(response)
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert issued.token.allowed_ips == []
    assert ServiceToken.objects.count() == 1


# --- Members ---------------------------------------------------------------------------------


def test_the_members_page_shows_roles_groups_and_permissions(org, admin, member, viewer):
    group = GroupFactory(organization=org, name="editors", permissions=["image:delete"])
    group.members.add(Membership.objects.get(user=viewer))

    response = signed_in_browser("alice").get("/members/")

    assert response.status_code == 200
    page = html(response)
    for name in ("alice", "bob", "carol"):
        assert f"<strong>{name}</strong>" in page
    assert f'<select id="role-{viewer.id}" name="role">' in page
    assert '<option value="viewer" selected>viewer</option>' in page
    assert f'<a href="/members/groups/{group.id}/">editors</a>' in page
    assert "<li>image:delete</li>" in page
    assert f'action="/members/{member.id}/remove/"' in page
    assert f'<label class="visually-hidden" for="role-{member.id}">Role of bob</label>' in page


def test_the_members_page_says_what_each_group_adds_to_a_members_role(org, admin, viewer):
    editors = GroupFactory(
        organization=org, name="editors", permissions=["image:read", "image:upload", "image:delete"]
    )
    editors.members.add(Membership.objects.get(user=viewer))

    page = html(signed_in_browser("alice").get("/members/"))

    carol = page.split('data-member="carol"')[1].split("</tr>")[0]
    assert '<option value="viewer" selected>viewer</option>' in carol
    # image:read is the viewer's already: only what the group widens is named.
    assert (
        f'<a href="/members/groups/{editors.id}/">editors</a>: adds <code>image:delete</code>, '
        "<code>image:upload</code> to the role"
    ) in carol
    alice = page.split('data-member="alice"')[1].split("</tr>")[0]
    assert "none: the role alone" in alice
    assert "Upload images and classify them." in page  # what each permission allows


def test_the_new_token_page_says_what_each_scope_allows(org, admin):
    page = html(signed_in_browser("alice").get("/tokens/new/"))

    assert re.search(
        r'value="image:upload" aria-describedby="(scope-\d+-text)".*?'
        r'<span class="choice-text" id="\1">Upload images and classify them.</span>',
        page,
        re.S,
    )


def test_changing_a_role_applies_from_the_members_next_request(
    org, admin, member, django_capture_on_commit_callbacks
):
    bob_browser = signed_in_browser("bob")
    assert bob_browser.get("/tokens/").status_code == 403
    client = signed_in_browser("alice")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, f"/members/{member.id}/role/", {"role": "admin"})

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    assert Membership.objects.get(user=member).role == "admin"
    assert bob_browser.get("/tokens/").status_code == 200
    (event,) = actions("org.member_role_changed")
    assert event.details["role"] == {"from": "user", "to": "admin"}


def test_the_last_admin_cannot_be_demoted_and_the_page_says_why(org, admin, member):
    client = signed_in_browser("alice")

    response = post(client, f"/members/{admin.id}/role/", {"role": "viewer"})

    assert response.status_code == 409
    page = html(response)
    assert "alice is the last admin of Acme, so they can be neither demoted nor removed." in page
    assert "promote another member to admin first" in page
    assert Membership.objects.get(user=admin).role == "admin"
    assert not actions("org.member_role_changed")


def test_the_last_admin_cannot_be_removed_and_the_page_says_why(org, admin, member):
    client = signed_in_browser("alice")

    response = post(client, f"/members/{admin.id}/remove/")

    assert response.status_code == 409
    assert "alice is the last admin of Acme" in html(response)
    assert Membership.objects.filter(user=admin, organization=org).exists()
    assert browser_session(client).revoked_at is None


def test_an_admin_demoting_themselves_is_sent_home(
    org, admin, member, django_capture_on_commit_callbacks
):
    Membership.objects.filter(user=member).update(role="admin")
    client = signed_in_browser("alice")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, f"/members/{admin.id}/role/", {"role": "user"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/members/").status_code == 403


def test_removing_a_member_ends_their_sessions_here(org, admin, member):
    bob_browser = signed_in_browser("bob")
    client = signed_in_browser("alice")

    response = post(client, f"/members/{member.id}/remove/")

    assert response.status_code == 302
    assert not Membership.objects.filter(user=member, organization=org).exists()
    assert bob_browser.get("/")["Location"] == "/login/"
    assert "bob is no longer a member." in html(client.get("/members/"))
    (event,) = actions("org.member_removed")
    assert event.details == {"username": "bob"}


def test_an_admin_removing_themselves_is_signed_out_here(org, admin, member):
    Membership.objects.filter(user=member).update(role="admin")
    client = signed_in_browser("alice")

    response = post(client, f"/members/{admin.id}/remove/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not Membership.objects.filter(user=admin, organization=org).exists()
    assert client.get("/members/")["Location"].startswith("/login/")


@pytest.mark.parametrize("suffix", ["role/", "remove/"])
def test_another_organizations_member_is_not_found(org, admin, outsider, other_org, suffix):
    client = signed_in_browser("mallory")

    response = post(client, f"/members/{admin.id}/{suffix}", {"role": "guest"})

    assert response.status_code == 404
    assert Membership.objects.get(user=admin, organization=org).role == "admin"


def test_the_members_page_costs_the_same_queries_for_many_members(
    org, admin, django_assert_max_num_queries
):
    def add(count: int, start: int) -> None:
        for n in range(start, start + count):
            membership = MembershipFactory(organization=org, role="viewer")
            group = GroupFactory(organization=org, name=f"group-{n}", permissions=["image:read"])
            group.members.add(membership)

    add(1, 0)
    client = signed_in_browser("alice")
    few = queries_for(client, "/members/")
    add(12, 1)

    with django_assert_max_num_queries(few):
        response = client.get("/members/")

    assert html(response).count('name="role"') == 15  # 14 members and the add form


# --- Groups ----------------------------------------------------------------------------------


def test_creating_a_group(org, admin):
    client = signed_in_browser("alice")

    response = post(
        client,
        "/members/groups/new/",
        {"name": "editors", "permissions": ["image:delete", "image:upload"]},
    )

    group = Group.objects.get(organization=org, name="editors")
    assert response.status_code == 302
    assert response["Location"] == f"/members/groups/{group.id}/"
    assert group.permissions == ["image:delete", "image:upload"]
    (event,) = actions("org.group_changed")
    assert event.details["change"] == "created"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": "has space", "permissions": []}, 400, "A group name is letters, digits"),
        (
            {"name": "editors", "permissions": ["root"]},
            400,
            "“root” is not a permission this organization offers.",
        ),
        (
            {"name": "taken", "permissions": []},
            409,
            "A group named &#x27;taken&#x27; exists already.",
        ),
    ],
    ids=["bad-name", "unknown-permission", "duplicate"],
)
def test_creating_a_group_with_bad_input_creates_nothing(org, admin, fields, status, message):
    GroupFactory(organization=org, name="taken")

    response = post(signed_in_browser("alice"), "/members/groups/new/", fields)

    assert response.status_code == status
    assert message in html(response)
    assert list(Group.objects.values_list("name", flat=True)) == ["taken"]
    assert not actions("org.group_changed")


def test_the_group_page_edits_name_and_permissions(org, admin):
    group = GroupFactory(organization=org, name="editors", permissions=["image:read"])
    client = signed_in_browser("alice")
    page = html(client.get(f"/members/groups/{group.id}/"))
    assert 'name="permissions" value="image:read" checked' in page

    response = post(
        client,
        f"/members/groups/{group.id}/edit/",
        {"name": "curators", "permissions": ["image:delete"]},
    )

    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.name, group.permissions) == ("curators", ["image:delete"])
    (event,) = actions("org.group_changed")
    assert event.details["name"] == {"from": "editors", "to": "curators"}


def test_a_bad_group_edit_keeps_what_was_typed_and_changes_nothing(org, admin):
    group = GroupFactory(organization=org, name="editors", permissions=["image:read"])
    GroupFactory(organization=org, name="taken")

    response = post(
        signed_in_browser("alice"),
        f"/members/groups/{group.id}/edit/",
        {"name": "taken", "permissions": ["image:delete"]},
    )

    assert response.status_code == 409
    page = html(response)
    assert "A group named &#x27;taken&#x27; exists already." in page
    assert 'name="permissions" value="image:delete" checked' in page
    group.refresh_from_db()
    assert (group.name, group.permissions) == ("editors", ["image:read"])


def test_adding_and_taking_out_group_members(org, admin, member, viewer):
    group = GroupFactory(organization=org, name="editors", permissions=["image:delete"])
    client = signed_in_browser("alice")
    page = html(client.get(f"/members/groups/{group.id}/"))
    assert f'<option value="{viewer.id}">carol (viewer)</option>' in page

    added = post(client, f"/members/groups/{group.id}/members/add/", {"user_id": str(viewer.id)})
    post(client, f"/members/groups/{group.id}/members/add/", {"user_id": str(member.id)})

    assert added.status_code == 302
    assert {m.user.username for m in group.members.all()} == {"bob", "carol"}
    taken = post(client, f"/members/groups/{group.id}/members/{viewer.id}/remove/")
    assert taken.status_code == 302
    assert [m.user.username for m in group.members.all()] == ["bob"]
    changes = [e.details["members"] for e in actions("org.group_changed")]
    assert changes[-1] == {"from": sorted([str(member.id), str(viewer.id)]), "to": [str(member.id)]}


def test_only_members_of_the_organization_can_join_its_groups(org, admin, outsider):
    group = GroupFactory(organization=org, name="editors")
    client = signed_in_browser("alice")

    outsider_added = post(
        client, f"/members/groups/{group.id}/members/add/", {"user_id": str(outsider.id)}
    )
    garbage = post(client, f"/members/groups/{group.id}/members/add/", {"user_id": "x"})

    assert outsider_added.status_code == 400
    assert "Only members of this organization can join its groups." in html(outsider_added)
    assert garbage.status_code == 400
    assert "Must be a valid UUID." in html(garbage)
    assert not group.members.exists()


def test_deleting_a_group(org, admin, viewer):
    group = GroupFactory(organization=org, name="editors", permissions=["image:delete"])
    group.members.add(Membership.objects.get(user=viewer))
    client = signed_in_browser("alice")

    response = post(client, f"/members/groups/{group.id}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    assert not Group.objects.exists()
    assert "The group editors was deleted." in html(client.get("/members/"))
    (event,) = actions("org.group_changed")
    assert event.details["change"] == "deleted"


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [
        ("get", "", {}),
        ("post", "edit/", {"name": "mine", "permissions": []}),
        ("post", "delete/", {}),
        ("post", "members/add/", {"user_id": "USER"}),
        ("post", "members/USER/remove/", {}),
    ],
)
@pytest.mark.usefixtures("outsider")
def test_another_organizations_group_is_not_found(org, admin, method, suffix, data):
    group = GroupFactory(organization=org, name="editors")
    group.members.add(Membership.objects.get(user=admin))
    client = signed_in_browser("mallory")
    path = f"/members/groups/{group.id}/{suffix}".replace("USER", str(admin.id))
    data = {key: str(value).replace("USER", str(admin.id)) for key, value in data.items()}

    response = client.get(path) if method == "get" else post(client, path, data)

    assert response.status_code == 404
    group.refresh_from_db()
    assert group.name == "editors"
    assert list(group.members.values_list("user_id", flat=True)) == [admin.id]


def test_taking_out_someone_not_in_the_group_is_not_found(org, admin, member):
    group = GroupFactory(organization=org, name="editors")

    path = f"/members/groups/{group.id}/members/{member.id}/remove/"

    response = post(signed_in_browser("alice"), path)

    assert response.status_code == 404
    assert not actions("org.group_changed")


def test_users_are_never_deleted_by_member_pages(org, admin, member):
    post(signed_in_browser("alice"), f"/members/{member.id}/remove/")

    assert User.objects.filter(id=member.id).exists()


def test_wrong_current_passwords_count_towards_the_lockout_and_are_audited(member, settings):
    settings.AUTH_LOCKOUT_USERNAME_FAILURES = 3
    client = signed_in_browser(member.username)
    wrong = {
        "old_password": "wrong-password",
        "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    }

    for _ in range(3):
        assert post(client, "/account/password/", wrong).status_code == 400
    locked = post(client, "/account/password/", {**wrong, "old_password": PASSWORD})

    assert locked.status_code == 400
    assert "Too many failed sign-in attempts" in html(locked)
    member.refresh_from_db()
    assert not member.check_password(NEW_PASSWORD)
    events = actions("auth.login_failed")
    assert [event.details["reason"] for event in events] == ["wrong_current_password"] * 3
