"""System checks: the decision point's configuration is refused at start when it cannot work."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def authorization_backend_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Report a decision point that is unknown or remote without its URL or token."""
    backend = settings.AUTHZ_BACKEND
    if backend not in ("local", "remote"):
        return [
            Error(f"AUTHZ_BACKEND is {backend!r}; use 'local' or 'remote'.", id="accounts.E001")
        ]
    if backend == "remote" and not (settings.AUTH_API_URL and settings.AUTH_API_TOKEN):
        return [
            Error(
                "AUTHZ_BACKEND=remote needs AUTH_API_URL (the other deployment's "
                "/api/v1/authorization/check) and AUTH_API_TOKEN (a service token "
                "with the authz:check scope).",
                id="accounts.E002",
            )
        ]
    return []
