"""The dashboard's page guard: who may open a page, and the pages that refuse.

Pages are server-rendered views in each app's `views.py`, signed in with the
Django session (BrowserSessionMiddleware resolves `request.principal`). They
call the same services and selectors as the API, and ask the same decision
point whether the principal may do what the page does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts.authz.decision_point import decision_check
from accounts.authz.step_up import step_up_needed
from accounts.errors import PermissionDenied
from accounts.identity.principal import Principal
from accounts.ratelimits.limits import RateLimitOutcome
from accounts.ratelimits.throttling import page_load_count
from config.errors import DomainError

View = TypeVar("View", bound=Callable[..., HttpResponse])


def page_principal(request: HttpRequest) -> Principal | None:
    """Return the signed-in browser's principal, or None."""
    principal: Principal | None = getattr(request, "principal", None)
    return principal


def signed_in_principal(request: HttpRequest) -> Principal:
    """Return the page's principal (dashboard_page has made sure there is one)."""
    principal = page_principal(request)
    if principal is None:
        raise PermissionDenied("Sign in first.")
    return principal


def may(principal: Principal, permission: str) -> bool:
    """Tell whether the principal may do `permission` in its organization (the decision point)."""
    decision = decision_check(
        principal=principal, permission=permission, organization_id=principal.organization_id
    )
    return decision.allowed


def error_page(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    context = {"status": status, "title": HTTPStatus(status).phrase, "detail": detail}
    return render(request, "errors/error.html", context, status=status)


def wait_in_words(seconds: int) -> str:
    """Return a wait as a person reads it: "1 second", "42 seconds", "1 minute"."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def rate_limited_page(request: HttpRequest, outcome: RateLimitOutcome) -> HttpResponse:
    """Return the 429 page: the dashboard's look, the wait in words and in `Retry-After`."""
    binding = outcome.binding
    wait = max(1, binding.reset)
    context = {
        "status": 429,
        "title": HTTPStatus.TOO_MANY_REQUESTS.phrase,
        "limit": binding.window.limit,
        "whose": "your organization's" if binding.window.name == "organization" else "your",
        "wait": wait_in_words(wait),
    }
    response = render(request, "errors/429.html", context, status=429)
    for name, value in outcome.headers().items():
        response[name] = value
    return response


SECURITY_PAGE = "/account/security/"
STEP_UP_PAGE = "/account/security/verify/"


def _step_up_redirect(request: HttpRequest) -> HttpResponse:
    """Send the browser to prove a second factor, then back to the page the form was on."""
    referer = request.headers.get("Referer", "")
    host = request.get_host()
    back = SECURITY_PAGE
    for scheme in ("http://", "https://"):
        if referer.startswith(f"{scheme}{host}/"):
            back = referer[len(scheme) + len(host) :]
    return redirect(f"{STEP_UP_PAGE}?{urlencode({'next': back})}")


def dashboard_page(
    permission: str | None = None, *, step_up: bool = False, mfa_enrolment_allowed: bool = False
) -> Callable[[View], View]:
    """Make a view a dashboard page: signed in, rate limited, holding `permission`, never cached.

    Signed out, the browser goes to the sign-in page and comes back. Each load
    is counted in the principal's page windows (429 page past them). A page the
    principal may not use answers 403; a domain error (another organization's
    image: 404; bad input: 400) answers its status as a page. A session that
    must enrol a second factor is sent to the Security page unless the page
    allows enrolling; a `step_up` page's form first asks a person who has a
    factor for a recent second-factor check.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        @never_cache
        def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            principal = page_principal(request)
            if principal is None:
                target = request.get_full_path()
                query = "" if target == "/" else f"?{urlencode({'next': target})}"
                return redirect(f"/login/{query}")
            counted = page_load_count(request, principal)
            if counted is not None and not counted.allowed:
                return rate_limited_page(request, counted)
            if principal.mfa_enrolment_required and not mfa_enrolment_allowed:
                return redirect(SECURITY_PAGE)
            if permission is not None and not may(principal, permission):
                return error_page(request, 403, f"Your role may not use this page ({permission}).")
            if step_up and request.method == "POST" and step_up_needed(principal):
                return _step_up_redirect(request)
            try:
                return view(request, *args, **kwargs)
            except DomainError as exc:
                return error_page(request, exc.status, exc.detail)

        return page  # type: ignore[return-value]

    return decorate
