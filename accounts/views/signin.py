"""Signing in and out of the dashboard."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.errors import AuthenticationFailed, TooManyLoginAttempts
from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import Session
from accounts.selectors import session_get
from accounts.services.sessions import auth_login, session_browser_key_set, session_revoke


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return "/"


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    """The sign-in form; on success a browser login Session and a Django session begin."""
    if getattr(request, "principal", None) is not None and request.method == "GET":
        return redirect(_next_url(request))
    context = {"next": _next_url(request), "username": "", "error": "", "retry_after": None}
    if request.method == "POST":
        username = request.POST.get("username", "")[:254]
        context["username"] = username
        try:
            sign_in = auth_login(
                login=username,
                password=request.POST.get("password", "")[:1024],
                org=request.POST.get("org") or None,
                kind=Session.Kind.BROWSER,
            )
        except TooManyLoginAttempts as exc:
            context["error"] = exc.detail
            context["retry_after"] = exc.headers.get("Retry-After")
            response = render(request, "accounts/login.html", context, status=429)
            response["Retry-After"] = exc.headers.get("Retry-After", "")
            return response
        except AuthenticationFailed as exc:
            context["error"] = exc.detail
            return render(request, "accounts/login.html", context, status=401)
        _end_browser_session(request, reason="replaced")
        login(request, sign_in.session.user, backend="accounts.backends.LoginBackend")
        request.session[BROWSER_SESSION_KEY] = str(sign_in.session.id)
        request.session.save()
        session_browser_key_set(
            session_id=sign_in.session.id, key=request.session.session_key or ""
        )
        return HttpResponseRedirect(_next_url(request))
    return render(request, "accounts/login.html", context)


def _end_browser_session(request: HttpRequest, *, reason: str) -> None:
    session_id = request.session.get(BROWSER_SESSION_KEY)
    session = session_get(session_id=session_id)
    if session is not None:
        session_revoke(session=session, reason=reason)


@never_cache
@require_http_methods(["GET", "HEAD"])
def admin_login_page(request: HttpRequest) -> HttpResponse:
    """Send admin's sign-in to the dashboard's; explain, rather than loop, to a non-staff person."""
    user = request.user
    if user.is_authenticated and not (user.is_active and user.is_staff):
        context = {
            "status": 403,
            "title": "Django admin is for staff",
            "detail": (
                "Django admin is where the installation's operators manage every "
                "organization. You are signed in as a member of an organization, not as "
                "staff: your organization's settings, members, tokens and images are in the "
                "dashboard. Staff accounts are made by an operator "
                "('manage.py createsuperuser') or by another staff member in admin."
            ),
        }
        return render(request, "errors/error.html", context, status=403)
    target = request.GET.get("next") or "/admin/"
    if not target.startswith("/admin/"):
        target = "/admin/"
    return redirect(f"/login/?{urlencode({'next': target})}")


@require_POST
@csrf_protect
def logout_page(request: HttpRequest) -> HttpResponse:
    """End the browser's login Session and its Django session."""
    _end_browser_session(request, reason="logout")
    logout(request)
    messages.success(request, "You are signed out. Sign in again below.")
    return redirect("/login/")
