"""System checks of the request plumbing's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

# What the admin site needs before its views run, found in BROWSER_MIDDLEWARE
# (its own checks, admin.E408-E410, look in MIDDLEWARE only).
_ADMIN_NEEDS = {
    "django.contrib.sessions.middleware.SessionMiddleware": "config.E001",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "config.E002",
    "django.contrib.messages.middleware.MessageMiddleware": "config.E003",
}


@register()
def browser_middleware_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Report what the admin site needs missing from the browser's middleware."""
    if "config.middleware.BrowserMiddleware" not in settings.MIDDLEWARE:
        return []  # Django's own admin checks then look in MIDDLEWARE
    present = [import_string(path) for path in settings.BROWSER_MIDDLEWARE]
    return [
        Error(f"'{needed}' must be in BROWSER_MIDDLEWARE for the admin site.", id=code)
        for needed, code in _ADMIN_NEEDS.items()
        if not any(issubclass(layer, import_string(needed)) for layer in present)
    ]
