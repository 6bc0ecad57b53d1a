"""`manage.py revoke_service_token ID_OR_PREFIX --reason R`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.token_lookup import token_by_id_or_prefix
from accounts.services.tokens import token_revoke
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Revoke a service token now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="token id or prefix (sk_...)")
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["reason"].strip():
            raise CommandError("--reason may not be empty.")
        token = token_by_id_or_prefix(options["token"])
        if token_revoke(token=token, reason=options["reason"]):
            self.stdout.write(f"Revoked {token.name} ({token.prefix}…).")
        else:
            self.stdout.write(f"{token.name} ({token.prefix}…) was already revoked; unchanged.")
