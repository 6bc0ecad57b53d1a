"""What every identity page shares: form parsing with the API's serializers, refusals
shown beside their form, and small lookups."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from rest_framework import serializers

from accounts.errors import FormRejected, LastAdmin
from accounts.identity.principal import Principal
from accounts.models import User
from accounts.selectors import person_get
from config.errors import Conflict, DomainError, InvalidInput, NotFound

# --- What every page of this module shares -------------------------------------------

SESSIONS_PER_PAGE = 25
TOKENS_PER_PAGE = 25
MEMBERS_PER_PAGE = 50
GROUPS_PER_PAGE = 50
INVITATIONS_PER_PAGE = 25
USAGE_DAYS = 30
GRACE_CHOICES = (
    (0, "No grace: the old token stops working now"),
    (900, "15 minutes"),
    (3600, "1 hour"),
    (21600, "6 hours"),
    (86400, "24 hours"),
)
FIELD_LABELS = {
    "name": "Name",
    "scopes": "Scopes",
    "expires_in_days": "Expires in (days)",
    "allowed_ips": "Allowed IP addresses",
    "grace_seconds": "Grace period",
    "reason": "Reason",
    "user": "User",
    "email": "Email",
    "role": "Role",
    "groups": "Groups",
    "permissions": "Permissions",
    "members": "Member",
    "org": "Organization",
}


# Refusals a page shows beside the form that caused them; any other domain error
# (another organization's id: 404) is answered as an error page.
FORM_REFUSALS: tuple[type[DomainError], ...] = (InvalidInput, Conflict, LastAdmin)


def error_messages(errors: Any, field: str | None = None) -> list[str]:
    """Return a serializer's (nested) errors as sentences naming their field."""
    if isinstance(errors, dict):
        found: list[str] = []
        for key, value in errors.items():
            if isinstance(key, int):  # a list's item
                where = f"{field} (entry {key + 1})" if field else None
            elif key == "non_field_errors":
                where = field
            else:
                where = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
            found += error_messages(value, where)
        return found
    if isinstance(errors, list):
        return [message for item in errors for message in error_messages(item, field)]
    return [_sentence(str(errors), field, getattr(errors, "code", None))]


# The API's terse messages said as a person would, by field label (a list's entries
# without their number) and error code; `{input}` is the value typed, `{limit}` the bound.
SENTENCES: dict[tuple[str, str], str] = {
    ("Scopes", "min_length"): "Choose at least one scope.",
    ("Scopes", "empty"): "Choose at least one scope.",
    ("Scopes", "required"): "Choose at least one scope.",
    ("Scopes", "invalid_choice"): "“{input}” is not a scope this organization offers.",
    ("Permissions", "invalid_choice"): "“{input}” is not a permission this organization offers.",
    ("Expires in (days)", "min_value"): "A token lasts at least {limit} day: give {limit} or more.",
    (
        "Expires in (days)",
        "max_value",
    ): "A token lasts at most {limit} days: give {limit} or fewer.",
    ("Expires in (days)", "invalid"): "Give the days as a whole number, such as 30.",
    ("Grace period", "max_value"): "Choose a grace period of {limit} seconds or less.",
    ("Grace period", "invalid"): "Choose a grace period from the list.",
    ("Organization", "blank"): "Choose an organization.",
    # Only a group's name has a pattern: letters, digits, '_', '.' and '-'.
    ("Name", "invalid"): "A group name is letters, digits, '_', '.' and '-', such as editors.",
}
GENERIC_SENTENCES: dict[str, str] = {
    "required": "{field} is required.",
    "blank": "{field} cannot be empty.",
    "null": "{field} is required.",
    "max_length": "{field} can be at most {limit} characters.",
}


def _sentence(message: str, field: str | None, code: str | None) -> str:
    """Return one error as a sentence a person would write, naming its field."""
    if field is None or code is None:
        return f"{field}: {message}" if field else message
    label = re.sub(r" \(entry \d+\)$", "", field)
    typed = re.search(r'"(.*)"', message)
    limit = re.search(r"(\d+)", message)
    template = SENTENCES.get((label, code))
    # A list's max_length counts entries, not characters: that one keeps the API's words.
    if template is None and (code != "max_length" or "characters" in message):
        template = GENERIC_SENTENCES.get(code)
    if template is None:
        return f"{field}: {message}"
    return template.format(
        field=label, input=typed.group(1) if typed else "", limit=limit.group(1) if limit else ""
    )


def refusal_messages(exc: DomainError) -> list[str]:
    """Return what a refused change says, as sentences."""
    return list(getattr(exc, "messages", None) or [exc.detail])


def form_data(
    serializer_class: type[serializers.Serializer[Any]],
    data: dict[str, Any],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Return `data` validated by the API's serializer, or raise FormRejected."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        raise FormRejected(error_messages(serializer.errors))
    return dict(serializer.validated_data)


PageView = Callable[..., HttpResponse]


def post_only(parent: str) -> Callable[[PageView], PageView]:
    """Make a view a form's action: opened otherwise (after signing in again) it shows `parent`.

    `parent` may name the view's arguments, e.g. "/tokens/{token_id}/".
    """

    def decorate(view: PageView) -> PageView:
        @functools.wraps(view)
        def action(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                return redirect(parent.format(**kwargs))
            return view(request, *args, **kwargs)

        return action

    return decorate


def page_user(principal: Principal) -> User:
    """Return the person signed in to the page (a browser is always signed in by one)."""
    return person_get(user_id=principal.user_id)


def browser_session_id(principal: Principal) -> str:
    """Return the browser's login Session id (a signed-in browser always has one)."""
    if principal.session_id is None:
        raise NotFound("This browser's session has ended; sign in again.")
    return principal.session_id


def text_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
