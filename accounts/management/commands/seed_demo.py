"""`manage.py seed_demo`: a demo organization with a user of every role, for a first look."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import transaction

from accounts.identity.second_factors import totp_code_now, totp_secret_open, totp_uri
from accounts.models import Group, Membership, Organization, ServiceToken, TotpFactor, User
from accounts.roles import role_permissions
from accounts.services.factors import totp_begin, totp_confirm
from accounts.services.organizations import (
    group_create,
    member_add,
    organization_create,
    password_change,
    user_create,
)
from accounts.services.tokens import token_create
from config.commands import SystemCommand

DEMO_ORG = ("demo", "Demo Fleet", Organization.Tier.PRO)
DEMO_USERS = (  # username, name, role, groups
    ("alice", "Alice Admin", "admin", ()),
    ("bob", "Bob User", "user", ()),
    ("carol", "Carol Viewer", "viewer", ("editors",)),
    ("dave", "Dave Guest", "guest", ("photographers",)),
    ("erin", "Erin Second-Factor", "user", ()),
)
# Who signs in with an authenticator app as well as a password, to try second factors.
DEMO_TOTP_USER = "erin"
DEMO_TOKEN = ("demo-pipeline", ["image:read", "image:upload"])
DEMO_TOKEN_LINE = "token demo-pipeline"  # noqa: S105 (a label in the credentials file)
DEMO_GROUPS = (
    ("photographers", ["image:read", "image:upload"]),
    ("editors", ["image:upload", "image:delete"]),
)
# What each role lets a person do, as the sign-ins printed say it.
ROLE_SUMMARIES = {
    "admin": "everything, members, tokens and the audit log included",
    "user": "uploads, classifies and deletes images",
    "viewer": "sees the images",
    "guest": "signs in, sees no images",
}


class Command(SystemCommand):
    help = (
        "Create the demo organization, its users, groups and a service token (idempotent); "
        "print the sign-ins."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords", action="store_true", help="give the demo users new passwords"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        credentials_file = Path(settings.VAR_DIR) / "demo-credentials.txt"
        known = _read_credentials(credentials_file)
        with transaction.atomic():
            org = Organization.objects.filter(slug=DEMO_ORG[0]).first() or organization_create(
                slug=DEMO_ORG[0], name=DEMO_ORG[1], tier=DEMO_ORG[2]
            )
            for name, permissions in DEMO_GROUPS:
                if not Group.objects.filter(organization=org, name=name).exists():
                    group_create(organization=org, name=name, permissions=permissions)
            changed = self._users(org, reset=options["reset_passwords"])
            secret = self._second_factor(org)
            token = self._token(org)
            if token:
                changed[DEMO_TOKEN_LINE] = token
        if changed:
            known.update(changed)
            _write_credentials(credentials_file, known)
        self.stdout.write(f"Demo organization: {org.name} ({org.slug}, tier {org.tier})")
        self.stdout.write(
            "Sign in as (username / password), each with their role and the groups that widen it:"
        )
        width = max(len(f"{name} / {known.get(name, '')}") for name, *_ in DEMO_USERS)
        for username, _, role, groups in DEMO_USERS:
            password = known.get(username, "(unknown here: run seed_demo --reset-passwords)")
            sign_in = f"{username} / {password}".ljust(width)
            self.stdout.write(f"  {sign_in}   {_who(role, groups)}")
        self.stdout.write(
            f"{DEMO_TOTP_USER} also signs in with an authenticator app: add this secret to any "
            "app (time-based, 6 digits), or the URI as a QR code:"
        )
        self.stdout.write(f"  secret {secret}")
        self.stdout.write(f"  {totp_uri(secret, account=f'{DEMO_TOTP_USER}@demo.vantage.invalid')}")
        if DEMO_TOKEN_LINE in known:
            self.stdout.write(f"Service token {DEMO_TOKEN[0]!r} ({', '.join(DEMO_TOKEN[1])}):")
            self.stdout.write(f"  {known[DEMO_TOKEN_LINE]}")

    def _second_factor(self, org: Organization) -> str:
        """Give the demo's second-factor person an authenticator app once; return its secret."""
        user = User.objects.get(username=DEMO_TOTP_USER)
        factor = TotpFactor.objects.filter(user=user, confirmed_at__isnull=False).first()
        secret = totp_secret_open(factor.secret) if factor is not None else None
        if secret is not None:
            return secret
        enrolment = totp_begin(user=user, name="Demo authenticator app")
        totp_confirm(
            user=user,
            factor_id=enrolment.factor.id,
            organization=org,
            session_id=None,
            code=totp_code_now(enrolment.secret),
        )
        return enrolment.secret

    def _token(self, org: Organization) -> str | None:
        """Create the demo pipeline's token once; return its secret when it was created now."""
        if ServiceToken.objects.filter(organization=org, name=DEMO_TOKEN[0]).exists():
            return None
        alice = User.objects.get(username="alice")
        return token_create(
            organization=org, name=DEMO_TOKEN[0], scopes=DEMO_TOKEN[1], created_by=alice
        ).secret

    def _users(self, org: Organization, *, reset: bool) -> dict[str, str]:
        """Create the missing demo users (and reset the others' passwords if asked)."""
        passwords: dict[str, str] = {}
        for username, full_name, role, groups in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                passwords[username] = secrets.token_urlsafe(12)
                user = user_create(
                    username=username,
                    email=f"{username}@demo.vantage.invalid",
                    name=full_name,
                    password=passwords[username],
                )
            elif reset:
                passwords[username] = secrets.token_urlsafe(12)
                password_change(user=user, password=passwords[username])
            if not Membership.objects.filter(user=user, organization=org).exists():
                member_add(organization=org, user=user, role=role, groups=groups)
        return passwords


def _who(role: str, groups: tuple[str, ...]) -> str:
    """Return a demo person's role and what each of their groups adds to it."""
    granted = dict(DEMO_GROUPS)
    parts = [f"{role} ({ROLE_SUMMARIES[role]})"]
    for group in groups:
        added = sorted(set(granted[group]) - role_permissions(role))
        parts.append(f"the group {group} adds {', '.join(added) or 'nothing'}")
    return "; ".join(parts)


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(" / ", 1) for line in path.read_text().splitlines() if " / " in line)
    return dict(pairs)


def _write_credentials(path: Path, credentials: dict[str, str]) -> None:
    # Created readable by the owner only, before anything is written to it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.writelines(f"{user} / {password}\n" for user, password in credentials.items())
