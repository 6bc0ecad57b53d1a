"""`manage.py revoke_user_sessions USERNAME_OR_EMAIL [--reason R]`: sign a person out everywhere."""

from __future__ import annotations

from accounts.management.person_command import PersonCommand
from accounts.models import User
from accounts.services.sessions import sessions_revoke_all


class Command(PersonCommand):
    help = (
        "End every live session of a user (browser and API, in every organization): each is "
        "refused from its next request on, and audited."
    )
    reason_default = "revoked_by_operator"
    reason_help = "recorded with each"

    def handle_person(self, user: User, reason: str) -> None:
        ended = sessions_revoke_all(user=user, reason=reason)
        self.stdout.write(f"Ended {ended} session(s) of {user.username}.")
