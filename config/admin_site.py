"""The admin site, closed to a session that must enrol a second factor first, and what its
actions share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.contrib.admin import apps
from django.http import HttpRequest

from config.errors import DomainError
from config.request_context import bind_staff

Selected = TypeVar("Selected")


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


def each_through_service(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    selected: Iterable[Selected],
    service: Callable[[Selected], object],
) -> int:
    """Run an admin action's service on each selected object as the staff member.

    Each refusal (a domain error) is told to them beside its object, and the rest go on;
    returns how many the service acted on.
    """
    bind_staff(request)
    done = 0
    for item in selected:
        try:
            service(item)
        except DomainError as exc:
            model_admin.message_user(request, f"{item}: {exc.detail}", messages.ERROR)
        else:
            done += 1
    return done
