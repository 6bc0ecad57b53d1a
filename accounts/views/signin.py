"""Signing in and out of the dashboard."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.authz.pages import SECURITY_PAGE
from accounts.errors import (
    AuthenticationFailed,
    MfaChallengeInvalid,
    MfaCodeInvalid,
    MfaRequired,
    TooManyLoginAttempts,
)
from accounts.identity.authentication import BROWSER_SESSION_KEY
from accounts.models import Session
from accounts.selectors import session_get
from accounts.services.second_factors import FactorProof
from accounts.services.sessions import (
    SignIn,
    auth_login,
    auth_login_mfa,
    session_browser_key_set,
    session_revoke,
)

# The sign-in waiting for its second factor, kept in the (not yet signed-in) Django session.
MFA_CHALLENGE_KEY = "vantage_mfa_challenge"
MFA_METHODS_KEY = "vantage_mfa_methods"
MFA_NEXT_KEY = "vantage_mfa_next"
VERIFY_URL = "/login/verify/"


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
            return _locked_out(request, "accounts/login.html", context, exc)
        except MfaRequired as exc:
            request.session[MFA_CHALLENGE_KEY] = exc.challenge
            request.session[MFA_METHODS_KEY] = exc.methods
            request.session[MFA_NEXT_KEY] = _next_url(request)
            return redirect(VERIFY_URL)
        except AuthenticationFailed as exc:
            context["error"] = exc.detail
            return render(request, "accounts/login.html", context, status=401)
        return _signed_in(request, sign_in, _next_url(request))
    return render(request, "accounts/login.html", context)


def _locked_out(
    request: HttpRequest, template: str, context: dict[str, Any], exc: TooManyLoginAttempts
) -> HttpResponse:
    context["error"] = exc.detail
    context["retry_after"] = exc.headers.get("Retry-After")
    response = render(request, template, context, status=429)
    response["Retry-After"] = exc.headers.get("Retry-After", "")
    return response


def _signed_in(request: HttpRequest, sign_in: SignIn, target: str) -> HttpResponse:
    """Tie this browser to the new login Session and go on to `target`."""
    _end_browser_session(request, reason="replaced")
    login(request, sign_in.session.user, backend="accounts.backends.LoginBackend")
    request.session[BROWSER_SESSION_KEY] = str(sign_in.session.id)
    request.session.save()
    session_browser_key_set(session_id=sign_in.session.id, key=request.session.session_key or "")
    return HttpResponseRedirect(target)


def factor_proof_posted(request: HttpRequest) -> FactorProof | None:
    """Return the second factor a form posted (a code, a recovery code or a passkey's answer)."""
    assertion = request.POST.get("webauthn", "")[:16384]
    if assertion:
        try:
            parsed = json.loads(assertion)
        except ValueError:
            return None
        return FactorProof(webauthn=parsed) if isinstance(parsed, dict) else None
    code = "".join(request.POST.get("code", "").split())[:16]
    recovery_code = request.POST.get("recovery_code", "").strip()[:32]
    if recovery_code:
        return FactorProof(recovery_code=recovery_code)
    return FactorProof(code=code) if code else None


def _challenge_forget(request: HttpRequest) -> None:
    for key in (MFA_CHALLENGE_KEY, MFA_METHODS_KEY, MFA_NEXT_KEY):
        request.session.pop(key, None)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_verify_page(request: HttpRequest) -> HttpResponse:
    """The sign-in's second step: a code from the app, a passkey or a recovery code."""
    challenge = request.session.get(MFA_CHALLENGE_KEY)
    if not challenge:
        return redirect("/login/")
    context = {
        "challenge": challenge,
        "methods": request.session.get(MFA_METHODS_KEY) or [],
        "error": "",
        "retry_after": None,
    }
    if request.method == "GET":
        return render(request, "accounts/login_verify.html", context)
    proof = factor_proof_posted(request)
    if proof is None:
        context["error"] = "Enter the code your authenticator app shows, or use a passkey."
        return render(request, "accounts/login_verify.html", context, status=400)
    try:
        sign_in = auth_login_mfa(challenge_id=challenge, proof=proof)
    except TooManyLoginAttempts as exc:
        return _locked_out(request, "accounts/login_verify.html", context, exc)
    except MfaCodeInvalid:
        context["error"] = "That was not accepted. Try the next code the app shows."
        return render(request, "accounts/login_verify.html", context, status=401)
    except MfaChallengeInvalid as exc:
        _challenge_forget(request)
        messages.error(request, exc.detail)
        return redirect("/login/")
    target = request.session.get(MFA_NEXT_KEY) or "/"
    _challenge_forget(request)
    return _signed_in(request, sign_in, target)


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
    principal = getattr(request, "principal", None)
    if principal is not None and principal.mfa_enrolment_required:
        # Staff too: the organization requires a second factor, and this session has none yet.
        messages.info(request, "Add a second factor first; then Django admin opens.")
        return redirect(SECURITY_PAGE)
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
