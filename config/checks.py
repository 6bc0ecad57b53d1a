"""System checks of the request plumbing's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

# What the admin site and the dashboard's forms need before their views run, found in
# BROWSER_MIDDLEWARE (Django's own checks, admin.E408-E410 and security.W003, look in
# MIDDLEWARE only).
_ADMIN_NEEDS = {
    "django.contrib.sessions.middleware.SessionMiddleware": "config.E001",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "config.E002",
    "django.contrib.messages.middleware.MessageMiddleware": "config.E003",
    "django.middleware.csrf.CsrfViewMiddleware": "config.E004",
}
_BROWSER = "config.middleware.BrowserMiddleware"
_CSRF = "django.middleware.csrf.CsrfViewMiddleware"


@register()
def browser_middleware_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Report what the admin site or the dashboard needs missing from the browser's middleware."""
    if _BROWSER not in settings.MIDDLEWARE:
        return []  # Django's own admin checks then look in MIDDLEWARE
    present = [import_string(path) for path in settings.BROWSER_MIDDLEWARE]
    return [
        Error(f"'{needed}' must be in BROWSER_MIDDLEWARE for the dashboard and admin.", id=code)
        for needed, code in _ADMIN_NEEDS.items()
        if not any(issubclass(layer, import_string(needed)) for layer in present)
    ]


@register(Tags.security, deploy=True)
def browser_csrf_cookie_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Django's security.W016, for CSRF protection that runs in BROWSER_MIDDLEWARE."""
    if _BROWSER not in settings.MIDDLEWARE or _CSRF not in settings.BROWSER_MIDDLEWARE:
        return []
    if settings.CSRF_USE_SESSIONS or settings.CSRF_COOKIE_SECURE:
        return []
    return [
        Warning(
            "CSRF_COOKIE_SECURE is not True: the CSRF cookie would travel over plain HTTP too.",
            id="config.W016",
        )
    ]
