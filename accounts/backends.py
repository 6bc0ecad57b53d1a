"""Sign-in by username or email, in the same time whether the account exists or not.

It stays at this dotted path: Django keeps it in every signed-in browser's session,
and a new path would sign every browser and admin out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.models import User
from accounts.selectors import user_by_login


class LoginBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or password is None:
            return None
        user = user_by_login(login=username)
        if user is None:
            # Hash anyway, so an unknown name costs what a wrong password costs.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
