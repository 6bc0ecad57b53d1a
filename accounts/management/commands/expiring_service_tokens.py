"""`manage.py expiring_service_tokens [--days N] [--notify]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.services.token_expiry import token_expiry_notify, tokens_expiring
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "List tokens expiring soon; with --notify, audit and mail each once per threshold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7)
        parser.add_argument("--notify", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["days"] <= 365:
            raise CommandError("--days must be between 1 and 365.")
        tokens = tokens_expiring(organization=None, days=options["days"])
        for token in tokens:
            self.stdout.write(
                f"{token.organization.slug}  {token.name} ({token.prefix}…)  "
                f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        if not tokens:
            self.stdout.write(f"No token expires within {options['days']} days.")
        if options["notify"]:
            sent = token_expiry_notify(days=options["days"])
            self.stdout.write(f"Sent {sent} notice(s).")
