"""`manage.py revoke_all_service_tokens --org SLUG --reason R --yes`: emergency revocation."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.selectors import organization_by_slug_or_id
from accounts.services.tokens import tokens_revoke_all
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Revoke every service token of an organization now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True)
        parser.add_argument("--reason", required=True)
        parser.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError(
                "This revokes every token of the organization; add --yes to confirm."
            )
        org = organization_by_slug_or_id(value=options["org"])
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        revoked = tokens_revoke_all(organization=org, reason=options["reason"])
        self.stdout.write(f"Revoked {revoked} service token(s) of {org.slug}.")
