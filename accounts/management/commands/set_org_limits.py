"""`manage.py set_org_limits SLUG [--requests-per-minute N] [--uploads-per-day N]
[--max-file-size-mb N] [--reset]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Organization
from accounts.ratelimits.tiers import organization_limits, tier_limits
from accounts.services.organizations import organization_limits_set
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Override an organization's tier limits one by one; --reset returns to the tier's."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--requests-per-minute", type=int)
        parser.add_argument("--uploads-per-day", type=int)
        parser.add_argument("--max-file-size-mb", type=int)
        parser.add_argument(
            "--reset", action="store_true", help="drop every override before applying the others"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["slug"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {options['slug']!r}.")
        size_mb = options["max_file_size_mb"]
        overrides = {
            "requests_per_minute": options["requests_per_minute"],
            "uploads_per_day": options["uploads_per_day"],
            "max_file_size_bytes": size_mb * 1_000_000 if size_mb is not None else None,
        }
        if not options["reset"] and all(value is None for value in overrides.values()):
            raise CommandError("Name at least one limit to change, or --reset.")
        org = organization_limits_set(organization=org, reset=options["reset"], **overrides)
        tier = tier_limits(org.tier)
        for name, value in organization_limits(org).items():
            note = "" if value == tier[name] else f"  (tier {org.tier}: {tier[name]})"
            self.stdout.write(f"{name}: {value}{note}")
