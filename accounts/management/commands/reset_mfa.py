"""`manage.py reset_mfa USERNAME_OR_EMAIL [--reason R]`: remove a person's second factors."""

from __future__ import annotations

from accounts.management.person_command import PersonCommand
from accounts.models import User
from accounts.selectors import default_membership
from accounts.services.factors import mfa_reset


class Command(PersonCommand):
    help = (
        "Remove every second factor and recovery code of a person who lost them, and end "
        "their sessions; they sign in with their password and enrol again. Audited."
    )
    reason_default = "reset_by_operator"

    def handle_person(self, user: User, reason: str) -> None:
        membership = default_membership(user=user)
        removed = mfa_reset(
            user=user, organization=membership.organization if membership else None, reason=reason
        )
        self.stdout.write(
            f"Removed {removed} second factor(s) of {user.username}; their recovery codes and "
            "sessions are gone too."
        )
