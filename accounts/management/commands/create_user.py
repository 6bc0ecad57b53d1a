"""`manage.py create_user USERNAME --email E --org SLUG --role ROLE`: a user and a membership."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts.models import Role
from accounts.selectors import organization_by_slug_or_id
from accounts.services.organizations import member_add, user_create
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Create a user with a membership; prints a generated password once unless one is piped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--groups", default="", help="comma-separated group names")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise CommandError("No password on standard input.")
            generated = False
        else:
            password, generated = secrets.token_urlsafe(18), True
        groups = [g.strip() for g in options["groups"].split(",") if g.strip()]
        with transaction.atomic():
            user = user_create(
                username=options["username"],
                email=options["email"],
                name=options["name"],
                password=password,
            )
            member_add(organization=org, user=user, role=options["role"], groups=groups)
        self.stdout.write(
            f"Created user {user.username} ({options['role']} of {org.slug}), id {user.id}"
        )
        if generated:
            self.stdout.write(f"Password (shown once): {password}")
