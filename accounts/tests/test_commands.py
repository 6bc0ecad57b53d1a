"""The identity management commands: create_org, create_user, add_member, seed_demo.

Each is run through `call_command` as an operator would run it; what it made is
checked in the database, in the audit log (actor `system`) and, for users, by
signing in through the real API with the password the command printed or read.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import Group, Membership, Organization, TotpFactor, User
from accounts.tests.factories import (
    PASSWORD,
    GroupFactory,
    OrganizationFactory,
    UserFactory,
    totp_code,
)
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
STRONG_PASSWORD = "a-long-passphrase-123"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def run(*args: Any, **options: Any) -> str:
    """Run a management command; return what it printed on stdout."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def api_sign_in(username: str, password: str, org: str | None = None) -> Any:
    body = {"username": username, "password": password}
    if org:
        body["org"] = org
    return APIClient().post(TOKEN_URL, body, format="json")


def pipe_password(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{password}\n"))


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- create_org --------------------------------------------------------------------


def test_create_org_creates_the_organization_prints_its_slug_and_id_and_audits_as_system():
    out = run("create_org", "acme", "--name", "Acme Corp", "--tier", "pro")

    org = Organization.objects.get(slug="acme")
    assert org.name == "Acme Corp"
    assert org.tier == "pro"
    assert org.is_active
    assert "acme" in out
    assert str(org.id) in out
    [event] = events("org.created")
    assert event.actor_type == "system"
    assert event.outcome == "success"
    assert event.organization_id == org.id
    assert event.resource_type == "organization"
    assert event.resource_id == str(org.id)
    assert event.details["slug"] == "acme"
    assert event.details["tier"] == "pro"


def test_create_org_defaults_to_the_free_tier():
    run("create_org", "small-shop", "--name", "Small Shop")

    assert Organization.objects.get(slug="small-shop").tier == "free"


def test_create_org_again_with_the_same_name_and_tier_is_unchanged_and_writes_nothing():
    run("create_org", "acme", "--name", "Acme Corp", "--tier", "pro")
    audit_count = AuditEvent.objects.count()

    out = run("create_org", "acme", "--name", "Acme Corp", "--tier", "pro")

    assert "unchanged" in out
    assert Organization.objects.filter(slug="acme").count() == 1
    assert AuditEvent.objects.count() == audit_count
    assert len(events("org.created")) == 1


@pytest.mark.parametrize(
    ("name", "tier"),
    [("Acme Corp", "enterprise"), ("Another Name", "pro")],
    ids=["other-tier", "other-name"],
)
def test_create_org_with_an_existing_slug_but_other_settings_fails_and_changes_nothing(name, tier):
    run("create_org", "acme", "--name", "Acme Corp", "--tier", "pro")
    audit_count = AuditEvent.objects.count()

    with pytest.raises(CommandError, match="acme"):
        run("create_org", "acme", "--name", name, "--tier", tier)

    org = Organization.objects.get(slug="acme")
    assert (org.name, org.tier) == ("Acme Corp", "pro")
    assert AuditEvent.objects.count() == audit_count


@pytest.mark.parametrize("slug", ["Bad Slug!", "UPPER", "with space", "x" * 65])
def test_create_org_refuses_an_invalid_slug(slug):
    with pytest.raises(CommandError, match="slug"):
        run("create_org", slug, "--name", "Whatever", "--tier", "free")

    assert not Organization.objects.exists()
    assert not events("org.created")


def test_create_org_refuses_an_unknown_tier():
    with pytest.raises(CommandError, match="platinum"):
        run("create_org", "acme", "--name", "Acme", "--tier", "platinum")

    assert not Organization.objects.exists()


@pytest.mark.parametrize("name", ["", "   "], ids=["empty", "blank"])
def test_create_org_refuses_an_empty_name(name):
    with pytest.raises(CommandError, match="--name"):
        run("create_org", "acme", "--name", name)

    assert not Organization.objects.exists()


def test_create_org_stores_the_name_without_surrounding_whitespace():
    run("create_org", "acme", "--name", "  Acme Corp  ", "--tier", "pro")

    assert Organization.objects.get(slug="acme").name == "Acme Corp"


def test_create_org_refuses_a_name_longer_than_the_model_allows():
    with pytest.raises(CommandError, match="name"):
        run("create_org", "acme", "--name", "N" * 201, "--tier", "free")

    assert not Organization.objects.exists()


# --- create_user -------------------------------------------------------------------


@pytest.fixture
def acme(db: None) -> Organization:
    org = OrganizationFactory(name="Acme", slug="acme")
    GroupFactory(organization=org, name="photographers", permissions=["image:upload"])
    GroupFactory(organization=org, name="editors", permissions=["image:delete"])
    return org


def test_create_user_with_a_piped_password_can_sign_in_with_it(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    out = run(
        "create_user",
        "erin",
        "--email",
        "erin@example.com",
        "--name",
        "Erin Example",
        "--org",
        "acme",
        "--role",
        "user",
        "--groups",
        "photographers,editors",
        "--password-stdin",
    )

    user = User.objects.get(username="erin")
    assert user.email == "erin@example.com"
    assert user.name == "Erin Example"
    assert user.check_password(STRONG_PASSWORD)
    assert str(user.id) in out
    assert "Password" not in out
    assert STRONG_PASSWORD not in out
    membership = Membership.objects.get(user=user, organization=acme)
    assert membership.role == "user"
    assert sorted(membership.groups.values_list("name", flat=True)) == ["editors", "photographers"]
    response = api_sign_in("erin", STRONG_PASSWORD)
    assert response.status_code == 200, response.content
    assert api_sign_in("erin", "not-the-password-at-all").status_code == 401


def test_create_user_without_a_piped_password_prints_a_strong_generated_one_once(acme):
    out = run(
        "create_user", "erin", "--email", "erin@example.com", "--org", "acme", "--role", "viewer"
    )

    match = re.search(r"^Password \(shown once\): (\S+)$", out, re.MULTILINE)
    assert match, out
    password = match.group(1)
    assert len(password) >= 16
    assert out.count(password) == 1
    user = User.objects.get(username="erin")
    assert user.check_password(password)
    assert user.password != password  # stored hashed, never in clear
    assert Membership.objects.get(user=user, organization=acme).role == "viewer"
    response = api_sign_in("erin@example.com", password)
    assert response.status_code == 200, response.content


def test_create_user_generates_a_different_password_each_time(acme):
    first = run(
        "create_user", "erin", "--email", "erin@example.com", "--org", "acme", "--role", "viewer"
    )
    second = run(
        "create_user", "fred", "--email", "fred@example.com", "--org", "acme", "--role", "viewer"
    )

    pattern = r"Password \(shown once\): (\S+)"
    assert re.search(pattern, first).group(1) != re.search(pattern, second).group(1)


def test_create_user_audits_the_user_and_the_membership_as_system(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    run(
        "create_user",
        "erin",
        "--email",
        "erin@example.com",
        "--org",
        "acme",
        "--role",
        "admin",
        "--groups",
        "editors",
        "--password-stdin",
    )

    user = User.objects.get(username="erin")
    [created] = events("user.created")
    assert created.actor_type == "system"
    assert created.resource_type == "user"
    assert created.resource_id == str(user.id)
    assert created.details["username"] == "erin"
    [added] = events("org.member_added")
    assert added.actor_type == "system"
    assert added.organization_id == acme.id
    assert added.resource_id == str(user.id)
    assert added.details["role"] == "admin"
    assert added.details["groups"] == ["editors"]


def test_create_user_in_an_unknown_organization_fails_and_creates_no_user(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    with pytest.raises(CommandError, match="nowhere"):
        run(
            "create_user",
            "erin",
            "--email",
            "erin@example.com",
            "--org",
            "nowhere",
            "--role",
            "user",
            "--password-stdin",
        )

    assert not User.objects.filter(username="erin").exists()


def test_create_user_with_a_taken_username_fails_and_leaves_the_existing_user_alone(acme):
    existing = UserFactory(username="erin", email="erin@example.com")

    with pytest.raises(CommandError, match="erin"):
        run(
            "create_user", "erin", "--email", "other@example.com", "--org", "acme", "--role", "user"
        )

    assert User.objects.filter(username="erin").count() == 1
    assert User.objects.get(username="erin").email == existing.email
    assert not Membership.objects.filter(organization=acme).exists()
    assert not events("user.created")


def test_create_user_with_a_taken_email_in_another_case_fails(acme):
    UserFactory(username="erin", email="erin@example.com")

    with pytest.raises(CommandError, match=r"(?i)email"):
        run(
            "create_user", "erin2", "--email", "ERIN@Example.COM", "--org", "acme", "--role", "user"
        )

    assert not User.objects.filter(username="erin2").exists()


def test_create_user_with_a_weak_piped_password_fails_with_the_validator_message(acme, monkeypatch):
    pipe_password(monkeypatch, "123")

    with pytest.raises(CommandError) as excinfo:
        run(
            "create_user",
            "erin",
            "--email",
            "erin@example.com",
            "--org",
            "acme",
            "--role",
            "user",
            "--password-stdin",
        )

    message = str(excinfo.value)
    assert "too short" in message
    assert "at least 10 characters" in message
    assert not User.objects.filter(username="erin").exists()
    assert not events("user.created")


def test_create_user_with_nothing_on_standard_input_fails(acme, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    with pytest.raises(CommandError, match="standard input"):
        run(
            "create_user",
            "erin",
            "--email",
            "erin@example.com",
            "--org",
            "acme",
            "--role",
            "user",
            "--password-stdin",
        )

    assert not User.objects.filter(username="erin").exists()


def test_create_user_with_an_unknown_group_creates_nothing_at_all(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    with pytest.raises(CommandError, match="ghosts"):
        run(
            "create_user",
            "erin",
            "--email",
            "erin@example.com",
            "--org",
            "acme",
            "--role",
            "user",
            "--groups",
            "editors,ghosts",
            "--password-stdin",
        )

    assert not User.objects.filter(username="erin").exists()
    assert not Membership.objects.filter(organization=acme).exists()
    assert not events("user.created")
    assert not events("org.member_added")


def test_create_user_with_an_unknown_role_fails(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    with pytest.raises(CommandError, match="overlord"):
        run(
            "create_user",
            "erin",
            "--email",
            "erin@example.com",
            "--org",
            "acme",
            "--role",
            "overlord",
            "--password-stdin",
        )

    assert not User.objects.filter(username="erin").exists()


def test_create_user_refuses_a_malformed_email(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    with pytest.raises(CommandError):
        run(
            "create_user",
            "erin",
            "--email",
            "not-an-email",
            "--org",
            "acme",
            "--role",
            "user",
            "--password-stdin",
        )

    assert not User.objects.filter(username="erin").exists()


def test_create_user_refuses_a_username_with_forbidden_characters(acme, monkeypatch):
    pipe_password(monkeypatch, STRONG_PASSWORD)

    with pytest.raises(CommandError):
        run(
            "create_user",
            "bad user!",
            "--email",
            "bad@example.com",
            "--org",
            "acme",
            "--role",
            "user",
            "--password-stdin",
        )

    assert not User.objects.filter(username="bad user!").exists()


# --- add_member --------------------------------------------------------------------


def test_add_member_gives_an_existing_user_a_role_in_another_org_and_audits_it(
    org, other_org, member
):
    out = run("add_member", "bob", "globex", "--role", "viewer")

    membership = Membership.objects.get(user=member, organization=other_org)
    assert membership.role == "viewer"
    assert Membership.objects.get(user=member, organization=org).role == "user"
    assert "bob" in out
    assert "globex" in out
    [event] = events("org.member_added")
    assert event.actor_type == "system"
    assert event.organization_id == other_org.id
    assert event.resource_id == str(member.id)
    assert event.details["role"] == "viewer"
    # The new membership is usable at once: bob signs in to globex.
    assert api_sign_in("bob", PASSWORD, org="globex").status_code == 200


def test_add_member_again_with_the_same_role_is_unchanged(other_org, member):
    run("add_member", "bob", "globex", "--role", "viewer")
    audit_count = AuditEvent.objects.count()

    out = run("add_member", "bob", "globex", "--role", "viewer")

    assert "unchanged" in out
    assert Membership.objects.filter(user=member, organization=other_org).count() == 1
    assert AuditEvent.objects.count() == audit_count


def test_add_member_with_a_different_role_fails_and_keeps_the_old_role(other_org, member):
    run("add_member", "bob", "globex", "--role", "viewer")
    audit_count = AuditEvent.objects.count()

    with pytest.raises(CommandError, match="viewer"):
        run("add_member", "bob", "globex", "--role", "admin")

    assert Membership.objects.get(user=member, organization=other_org).role == "viewer"
    assert AuditEvent.objects.count() == audit_count


@pytest.mark.parametrize(
    ("username", "slug", "missing"),
    [("nobody", "globex", "nobody"), ("bob", "nowhere", "nowhere")],
    ids=["unknown-user", "unknown-org"],
)
def test_add_member_with_an_unknown_user_or_org_fails(other_org, member, username, slug, missing):
    with pytest.raises(CommandError, match=missing):
        run("add_member", username, slug, "--role", "viewer")

    assert not Membership.objects.filter(organization=other_org).exists()
    assert not events("org.member_added")


def test_add_member_with_an_unknown_group_adds_no_membership(other_org, member):
    with pytest.raises(CommandError, match="ghosts"):
        run("add_member", "bob", "globex", "--role", "viewer", "--groups", "ghosts")

    assert not Membership.objects.filter(organization=other_org).exists()


def test_add_member_with_an_unknown_role_fails(other_org, member):
    with pytest.raises(CommandError, match="overlord"):
        run("add_member", "bob", "globex", "--role", "overlord")

    assert not Membership.objects.filter(organization=other_org).exists()


# --- seed_demo ---------------------------------------------------------------------

DEMO_ROLES = {"alice": "admin", "bob": "user", "carol": "viewer", "dave": "guest", "erin": "user"}
# "  carol / <password>   viewer (...); the group editors adds ...", or a line of the file.
CREDENTIAL_LINE = re.compile(r"^\s*(alice|bob|carol|dave|erin) / (\S+)(?:\s{3}.*)?$", re.MULTILINE)
TOTP_SECRET_LINE = re.compile(r"^\s+secret ([A-Z2-7]{32})$", re.MULTILINE)


def password_accepted(username: str, password: str) -> bool:
    """Tell whether sign-in took the password (erin is then asked for her second factor)."""
    response = api_sign_in(username, password)
    if response.status_code == 401:
        return bool(response.json()["code"] == "MFA_REQUIRED")
    return bool(response.status_code == 200)


def printed_credentials(out: str) -> dict[str, str]:
    return dict(CREDENTIAL_LINE.findall(out))


def counts() -> dict[str, int]:
    return {
        "orgs": Organization.objects.count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
        "groups": Group.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_seed_demo_creates_the_demo_org_users_of_every_role_and_groups(db):
    out = run("seed_demo")

    org = Organization.objects.get(slug="demo")
    assert org.tier == "pro"
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == DEMO_ROLES
    assert set(Group.objects.filter(organization=org).values_list("name", flat=True)) == {
        "photographers",
        "editors",
    }
    assert "demo" in out
    [created] = events("org.created")
    assert created.actor_type == "system"
    assert created.organization_id == org.id
    user_events = events("user.created")
    assert {e.details["username"] for e in user_events} == set(DEMO_ROLES)
    assert {e.actor_type for e in user_events} == {"system"}
    added = events("org.member_added")
    assert len(added) == len(DEMO_ROLES)
    assert {e.actor_type for e in added} == {"system"}


def test_seed_demo_prints_a_working_password_for_every_demo_user(db):
    out = run("seed_demo")

    credentials = printed_credentials(out)
    assert set(credentials) == set(DEMO_ROLES)
    assert len(set(credentials.values())) == len(DEMO_ROLES)
    for username, password in credentials.items():
        assert password_accepted(username, password), username


def test_seed_demo_says_each_persons_role_and_what_their_groups_add(db):
    out = run("seed_demo")

    lines = {line.split()[0]: line for line in out.splitlines() if " / " in line}
    assert lines["alice"].endswith("admin (everything, members, tokens and the audit log included)")
    assert lines["bob"].endswith("user (uploads, classifies and deletes images)")
    # A viewer who may upload and delete: the group says why.
    assert lines["carol"].endswith(
        "viewer (sees the images); the group editors adds image:delete, image:upload"
    )
    assert lines["dave"].endswith(
        "guest (signs in, sees no images); the group photographers adds image:read, image:upload"
    )


def test_seed_demo_keeps_the_credentials_in_a_private_file_under_var_dir(db):
    out = run("seed_demo")

    path = Path(settings.VAR_DIR) / "demo-credentials.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    assert printed_credentials(path.read_text()) == printed_credentials(out)


def test_seed_demo_twice_creates_nothing_new_and_prints_the_same_credentials(db):
    first = run("seed_demo")
    before = counts()

    second = run("seed_demo")

    assert counts() == before
    assert len(events("org.created")) == 1
    assert printed_credentials(second) == printed_credentials(first)
    for username, password in printed_credentials(second).items():
        assert password_accepted(username, password), username


def test_seed_demo_reset_passwords_prints_new_working_ones_and_old_ones_stop_working(db):
    old = printed_credentials(run("seed_demo"))
    before = counts()

    new = printed_credentials(run("seed_demo", "--reset-passwords"))

    assert set(new) == set(DEMO_ROLES)
    assert {k: v for k, v in counts().items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }
    for username in DEMO_ROLES:
        assert new[username] != old[username]
        refused = api_sign_in(username, old[username])
        assert refused.json()["code"] == "AUTHENTICATION_FAILED", username
        assert password_accepted(username, new[username]), username
    # What is printed afterwards is the new set, not the old one.
    assert printed_credentials(run("seed_demo")) == new


def test_seed_demo_reset_passwords_audits_each_password_change_as_system(db):
    run("seed_demo")
    since = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    run("seed_demo", "--reset-passwords")

    new_events = AuditEvent.objects.filter(seq__gt=since, resource_type="user")
    user_ids = {
        str(u) for u in User.objects.filter(username__in=DEMO_ROLES).values_list("id", flat=True)
    }
    assert {e.resource_id for e in new_events} == user_ids
    assert {e.actor_type for e in new_events} == {"system"}


def test_seed_demo_prints_a_working_password_for_a_recreated_demo_user(db):
    run("seed_demo")
    User.objects.filter(username="bob").delete()

    out = run("seed_demo")

    assert User.objects.filter(username="bob").exists()
    credentials = printed_credentials(out)
    assert "bob" in credentials, out
    assert api_sign_in("bob", credentials["bob"]).status_code == 200


def test_seed_demo_prints_the_authenticator_secret_erin_signs_in_with(db):
    out = run("seed_demo")
    [secret] = TOTP_SECRET_LINE.findall(out)
    assert f"otpauth://totp/Vantage:erin%40demo.vantage.invalid?secret={secret}" in out
    password = printed_credentials(out)["erin"]

    challenge = api_sign_in("erin", password).json()["challenge"]
    # Enrolling used the app's current code: the next one signs in.
    response = APIClient().post(
        "/api/v1/auth/token/mfa",
        {"challenge": challenge, "code": totp_code(secret, steps_ahead=1)},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert TOTP_SECRET_LINE.findall(run("seed_demo")) == [secret]
    assert TotpFactor.objects.filter(user__username="erin").count() == 1


def _seed_demo_output() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_a_service_token_that_works_and_prints_it_every_time():
    first = _seed_demo_output()
    tokens = re.findall(r"^\s+(sk_[0-9a-f]{64})$", first, flags=re.MULTILINE)
    assert len(tokens) == 1

    response = APIClient().get("/api/v1/orgs/current", HTTP_X_API_KEY=tokens[0])

    assert response.status_code == 200
    assert response.json()["slug"] == "demo"
    assert tokens[0] in _seed_demo_output()
    assert Organization.objects.get(slug="demo").service_tokens.count() == 1
