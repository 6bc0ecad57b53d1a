"""The base of commands that act on one person, named on the command line, for a reason."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import User
from accounts.selectors import user_by_login
from config.commands import SystemCommand


class PersonCommand(SystemCommand):
    """`manage.py <command> USERNAME_OR_EMAIL [--reason R]`, acting as the system.

    A subclass sets the reason recorded when none is given and where it is
    recorded, and acts in `handle_person`.
    """

    reason_default = ""
    reason_help = "recorded in the audit"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login", help="username or email")
        parser.add_argument("--reason", default=self.reason_default, help=self.reason_help)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_login(login=options["login"])
        if user is None:
            raise CommandError(f"No user {options['login']!r}.")
        reason = options["reason"].strip()[:64]
        if not reason:
            raise CommandError("--reason must not be empty.")
        self.handle_person(user, reason)

    def handle_person(self, user: User, reason: str) -> None:
        raise NotImplementedError
