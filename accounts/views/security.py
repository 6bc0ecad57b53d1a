"""The Security page: the signed-in person's second factors, recovery codes and step-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.authz.pages import SECURITY_PAGE, dashboard_page, signed_in_principal
from accounts.authz.step_up import step_up_fresh
from accounts.errors import MfaCodeInvalid, TooManyLoginAttempts
from accounts.identity.principal import Principal
from accounts.selectors import (
    factor_list,
    organization_get,
    recovery_codes_remaining,
    session_current_get,
)
from accounts.services import factors as factor_services
from accounts.services.second_factors import session_step_up
from accounts.views.forms import browser_session_id, page_user, post_only
from accounts.views.signin import factor_proof_posted
from config.errors import InvalidInput


def _organization(principal: Principal) -> Any:
    return organization_get(organization_id=principal.organization_id)


def _security_render(
    request: HttpRequest, *, status: int = 200, error: str = "", recovery_codes: Any = None
) -> HttpResponse:
    principal = signed_in_principal(request)
    verified = principal.mfa_verified_at
    context = {
        "factors": factor_list(user_id=principal.user_id),
        "codes_remaining": recovery_codes_remaining(user_id=principal.user_id),
        "enrolment_required": principal.mfa_enrolment_required,
        "verified_at": datetime.fromtimestamp(verified, tz=UTC) if verified else None,
        "step_up_fresh": step_up_fresh(principal),
        "step_up_minutes": settings.MFA_STEP_UP_SECONDS // 60,
        "error": error,
        "recovery_codes": recovery_codes,
    }
    return render(request, "accounts/security.html", context, status=status)


@dashboard_page(mfa_enrolment_allowed=True)
def security_page(request: HttpRequest) -> HttpResponse:
    """Your authenticator apps and passkeys, your recovery codes, and adding more."""
    return _security_render(request)


def _totp_render(
    request: HttpRequest,
    enrolment: factor_services.TotpEnrolment,
    *,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    context = {"enrolment": enrolment, "error": error}
    return render(request, "accounts/security_totp.html", context, status=status)


@dashboard_page(step_up=True, mfa_enrolment_allowed=True)
@post_only(SECURITY_PAGE)
def security_totp_begin_page(request: HttpRequest) -> HttpResponse:
    """Start adding an authenticator app: its QR code and secret, shown this once."""
    user = page_user(signed_in_principal(request))
    enrolment = factor_services.totp_begin(user=user, name=request.POST.get("name", "")[:64])
    return _totp_render(request, enrolment)


@dashboard_page(step_up=True, mfa_enrolment_allowed=True)
@post_only(SECURITY_PAGE)
def security_totp_confirm_page(request: HttpRequest, factor_id: Any) -> HttpResponse:
    """Finish adding an authenticator app with the code it shows now."""
    principal = signed_in_principal(request)
    user = page_user(principal)
    try:
        enrolled = factor_services.totp_confirm(
            user=user,
            factor_id=factor_id,
            code=request.POST.get("code", "")[:16],
            organization=_organization(principal),
            session_id=browser_session_id(principal),
        )
    except InvalidInput as exc:
        enrolment = factor_services.totp_enrolment_show(user=user, factor_id=factor_id)
        return _totp_render(request, enrolment, status=400, error=exc.detail)
    return _enrolled(request, enrolled, "authenticator app")


def _enrolled(request: HttpRequest, enrolled: factor_services.Enrolled, what: str) -> HttpResponse:
    messages.success(request, f"The {what} {enrolled.factor.name!r} was added.")
    if enrolled.recovery_codes:
        return render(
            request, "accounts/security_codes.html", {"recovery_codes": enrolled.recovery_codes}
        )
    return redirect(SECURITY_PAGE)


@dashboard_page(step_up=True, mfa_enrolment_allowed=True)
@post_only(SECURITY_PAGE)
def security_passkey_page(request: HttpRequest) -> HttpResponse:
    """Add the passkey the browser has just created (static/js/passkeys.js)."""
    principal = signed_in_principal(request)
    try:
        credential = json.loads(request.POST.get("credential", "")[:65536] or "null")
    except ValueError:
        credential = None
    if not isinstance(credential, dict):
        return _security_render(request, status=400, error="The browser sent no passkey.")
    try:
        enrolled = factor_services.passkey_register(
            user=page_user(principal),
            name=request.POST.get("name", "")[:64],
            credential=credential,
            organization=_organization(principal),
            session_id=browser_session_id(principal),
        )
    except InvalidInput as exc:
        return _security_render(request, status=400, error=exc.detail)
    return _enrolled(request, enrolled, "passkey")


@dashboard_page()
@post_only(SECURITY_PAGE)
def security_factor_rename_page(request: HttpRequest, factor_id: Any) -> HttpResponse:
    """Give a factor another name."""
    principal = signed_in_principal(request)
    factor = factor_services.factor_rename(
        user=page_user(principal),
        factor_id=factor_id,
        name=request.POST.get("name", "")[:64],
        organization=_organization(principal),
    )
    messages.success(request, f"Renamed to {factor.name!r}.")
    return redirect(SECURITY_PAGE)


@dashboard_page(step_up=True)
@post_only(SECURITY_PAGE)
def security_factor_remove_page(request: HttpRequest, factor_id: Any) -> HttpResponse:
    """Remove a factor; with the last one go the recovery codes."""
    principal = signed_in_principal(request)
    last = factor_services.factor_remove(
        user=page_user(principal), factor_id=factor_id, organization=_organization(principal)
    )
    messages.success(
        request,
        "The factor was removed. You sign in with your password alone now."
        if last
        else "The factor was removed.",
    )
    return redirect(SECURITY_PAGE)


@dashboard_page(step_up=True)
@post_only(SECURITY_PAGE)
def security_recovery_codes_page(request: HttpRequest) -> HttpResponse:
    """Replace the recovery codes with ten new ones, shown this once."""
    principal = signed_in_principal(request)
    try:
        codes = factor_services.recovery_codes_regenerate(
            user=page_user(principal), organization=_organization(principal)
        )
    except InvalidInput as exc:
        return _security_render(request, status=400, error=exc.detail)
    return render(request, "accounts/security_codes.html", {"recovery_codes": codes})


def _next_page(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or SECURITY_PAGE
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return SECURITY_PAGE


def _verify_render(request: HttpRequest, *, status: int = 200, error: str = "") -> HttpResponse:
    principal = signed_in_principal(request)
    methods = [factor["kind"] for factor in factor_list(user_id=principal.user_id)]
    if recovery_codes_remaining(user_id=principal.user_id):
        methods.append("recovery_code")
    context = {
        "next": _next_page(request),
        "methods": methods,
        "error": error,
        "step_up_minutes": settings.MFA_STEP_UP_SECONDS // 60,
    }
    return render(request, "accounts/security_verify.html", context, status=status)


@dashboard_page()
def security_verify_page(request: HttpRequest) -> HttpResponse:
    """Prove a second factor again before a sensitive action, then go back to it."""
    if request.method != "POST":
        return _verify_render(request)
    principal = signed_in_principal(request)
    proof = factor_proof_posted(request)
    if proof is None:
        return _verify_render(request, status=400, error="Enter a code or use a passkey.")
    session = session_current_get(session_id=browser_session_id(principal))
    try:
        session_step_up(session=session, proof=proof)
    except MfaCodeInvalid:
        return _verify_render(request, status=401, error="That was not accepted; try again.")
    except TooManyLoginAttempts as exc:
        return _verify_render(request, status=429, error=exc.detail)
    messages.success(request, "Confirmed. Submit the form again to go on.")
    return HttpResponseRedirect(_next_page(request))
