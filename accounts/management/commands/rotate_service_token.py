"""`manage.py rotate_service_token ID_OR_PREFIX [--grace-seconds N]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from accounts.management.token_lookup import token_by_id_or_prefix
from accounts.services.token_rotations import token_rotate
from config.commands import SystemCommand


class Command(SystemCommand):
    help = "Issue a successor token; prints its secret alone on the last line (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="token id or prefix (sk_...)")
        parser.add_argument("--grace-seconds", type=int, default=3600)

    def handle(self, *args: Any, **options: Any) -> None:
        old = token_by_id_or_prefix(options["token"])
        issued = token_rotate(token=old, grace_seconds=options["grace_seconds"])
        old.refresh_from_db()
        self.stdout.write(
            f"Rotated {old.name}: {old.prefix}… works until {old.revoked_at:%Y-%m-%d %H:%M:%S} "
            f"UTC; successor {issued.token.prefix}… id {issued.token.id}. The token (shown once):"
        )
        self.stdout.write(issued.secret)
