"""`manage.py add_member USERNAME SLUG --role ROLE`: membership in another organization."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Membership, Role
from accounts.selectors import organization_by_slug_or_id, user_by_login
from accounts.services.organizations import member_add
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Add an existing user to an organization with a role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--groups", default="", help="comma-separated group names")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_login(login=options["username"])
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        org = organization_by_slug_or_id(value=options["slug"])
        if org is None:
            raise CommandError(f"No organization {options['slug']!r}.")
        existing = Membership.objects.filter(user=user, organization=org).first()
        if existing is not None:
            if existing.role != options["role"]:
                raise CommandError(
                    f"{user.username} is already a member of {org.slug} as {existing.role}; "
                    "change the role through the API or admin."
                )
            self.stdout.write(f"{user.username} is already a member of {org.slug}; unchanged.")
            return
        groups = [g.strip() for g in options["groups"].split(",") if g.strip()]
        member_add(organization=org, user=user, role=options["role"], groups=groups)
        self.stdout.write(f"Added {user.username} to {org.slug} as {options['role']}")
