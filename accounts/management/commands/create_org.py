"""`manage.py create_org SLUG --name NAME --tier free|pro|enterprise`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.text import slugify

from accounts.models import Organization
from accounts.services.organizations import organization_create
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Create an organization (unchanged if it exists with the same name and tier)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--tier", default="free", choices=Organization.Tier.values)

    def handle(self, *args: Any, **options: Any) -> None:
        slug, name, tier = options["slug"], options["name"].strip(), options["tier"]
        if slugify(slug) != slug or len(slug) > 64:
            raise CommandError(f"{slug!r} is not a valid slug (lowercase letters, digits, -).")
        if not name:
            raise CommandError("--name may not be empty.")
        existing = Organization.objects.filter(slug=slug).first()
        if existing is not None:
            if (existing.name, existing.tier) != (name, tier):
                raise CommandError(
                    f"Organization {slug} exists already as {existing.name!r} on tier "
                    f"{existing.tier}; it was not changed."
                )
            self.stdout.write(f"Organization {slug} exists already; unchanged.")
            return
        org = organization_create(name=name, slug=slug, tier=tier)
        self.stdout.write(
            f"Created organization {org.slug} ({org.name}, tier {org.tier}), id {org.id}"
        )
