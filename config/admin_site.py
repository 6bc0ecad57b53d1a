"""The admin site, closed to a session that must enrol a second factor first."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import apps
from django.http import HttpRequest


class AdminSite(admin.AdminSite):
    """Django's admin site; staff whose organization requires a second factor enrol one first."""

    def has_permission(self, request: HttpRequest) -> bool:
        principal = getattr(request, "principal", None)
        if principal is not None and principal.mfa_enrolment_required:
            return False
        return super().has_permission(request)


class AdminConfig(apps.AdminConfig):
    """Django's admin app with this site as its default."""

    default_site = "config.admin_site.AdminSite"
