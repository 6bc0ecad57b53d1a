"""`manage.py reset_mfa USERNAME_OR_EMAIL [--reason R]`: remove a person's second factors."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.selectors import default_membership, user_by_login
from accounts.services.factors import mfa_reset
from config.commands import SystemCommand


class Command(SystemCommand):
    help = (
        "Remove every second factor and recovery code of a person who lost them, and end "
        "their sessions; they sign in with their password and enrol again. Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login", help="username or email")
        parser.add_argument("--reason", default="reset_by_operator", help="recorded in the audit")

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_by_login(login=options["login"])
        if user is None:
            raise CommandError(f"No user {options['login']!r}.")
        reason = options["reason"].strip()[:64]
        if not reason:
            raise CommandError("--reason must not be empty.")
        membership = default_membership(user=user)
        removed = mfa_reset(
            user=user, organization=membership.organization if membership else None, reason=reason
        )
        self.stdout.write(
            f"Removed {removed} second factor(s) of {user.username}; their recovery codes and "
            "sessions are gone too."
        )
