"""`manage.py revoke_user_sessions USERNAME_OR_EMAIL [--reason R]`: sign a person out everywhere."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.selectors import user_by_login
from accounts.services.sessions import sessions_revoke_all
from config.commands import SystemCommand


class Command(SystemCommand):
    help = (
        "End every live session of a user (browser and API, in every organization): each is "
        "refused from its next request on, and audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login", help="username or email")
        parser.add_argument("--reason", default="revoked_by_operator", help="recorded with each")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_login(login=options["login"])
        if user is None:
            raise CommandError(f"No user {options['login']!r}.")
        reason = options["reason"].strip()[:64]
        if not reason:
            raise CommandError("--reason must not be empty.")
        ended = sessions_revoke_all(user=user, reason=reason)
        self.stdout.write(f"Ended {ended} session(s) of {user.username}.")
