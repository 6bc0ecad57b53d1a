"""The account page: details, password, organization switch; and the user's sessions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.api.serializers import (
    OrgSwitchSerializer,
)
from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.errors import FormRejected, PermissionDenied, TooManyLoginAttempts
from accounts.models import User
from accounts.selectors import (
    session_get,
    session_list,
    session_live_get,
    user_memberships,
)
from accounts.services import organizations as org_services
from accounts.services.sessions import (
    org_switch,
    password_confirm,
    session_browser_key_set,
    session_revoke,
    sessions_revoke_all,
)
from accounts.views.forms import (
    SESSIONS_PER_PAGE,
    browser_session_id,
    form_data,
    page_user,
    plural,
    post_only,
)
from config.errors import InvalidInput, NotFound

# --- Account and password ------------------------------------------------------------


class PasswordChangeForm(forms.Form):
    """The current password and the new one twice; the service judges the new one's strength."""

    old_password = forms.CharField(strip=False, max_length=1024)
    new_password1 = forms.CharField(strip=False, max_length=1024)
    new_password2 = forms.CharField(strip=False, max_length=1024)

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_old_password(self) -> str:
        password: str = self.cleaned_data["old_password"]
        try:
            right = password_confirm(user=self.user, password=password)
        except TooManyLoginAttempts as exc:
            raise forms.ValidationError(exc.detail) from exc
        if not right:
            raise forms.ValidationError("Your current password is not right.")
        return password

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("new_password1"), cleaned.get("new_password2")
        if first and second and first != second:
            self.add_error("new_password2", "The two new passwords differ.")
        return cleaned


def _account_render(
    request: HttpRequest, form: PasswordChangeForm, *, status: int = 200
) -> HttpResponse:
    principal = signed_in_principal(request)
    context = {
        "account": form.user,
        "form": form,
        "memberships": user_memberships(user_id=principal.user_id),
        "groups": sorted(principal.groups),
        "permissions": sorted(principal.permissions),
    }
    return render(request, "accounts/account.html", context, status=status)


@dashboard_page()
def account_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's details and organizations, and the password form."""
    return _account_render(request, PasswordChangeForm(page_user(signed_in_principal(request))))


@dashboard_page()
@post_only("/account/")
def password_change_page(request: HttpRequest) -> HttpResponse:
    """Change the password; every other session of the user ends, this one stays."""
    principal = signed_in_principal(request)
    session_id = browser_session_id(principal)
    # The Django session's user, loaded before its password hash changes: loaded after,
    # it would no longer match the session, which would be flushed (signed out).
    user = request.user
    if not isinstance(user, User) or str(user.pk) != principal.user_id:
        raise PermissionDenied("Sign in again to change your password.")
    form = PasswordChangeForm(user, request.POST)
    if not form.is_valid():
        return _account_render(request, form, status=400)
    try:
        ended = org_services.password_change(
            user=form.user,
            password=form.cleaned_data["new_password1"],
            keep_session_id=session_id,
        )
    except InvalidInput as exc:
        form.add_error("new_password1", exc.detail)
        return _account_render(request, form, status=400)
    # The new password hash would sign this browser out too; keep it, under a new key.
    update_session_auth_hash(request, form.user)
    session_browser_key_set(session_id=session_id, key=request.session.session_key or "")
    messages.success(request, f"Your password was changed; {plural(ended, 'other session')} ended.")
    return redirect("/account/")


@dashboard_page()
@post_only("/")
def organization_switch_page(request: HttpRequest) -> HttpResponse:
    """Move this browser's login Session to another organization of the user."""
    principal = signed_in_principal(request)
    session = session_get(session_id=browser_session_id(principal))
    if session is None:
        raise NotFound("This browser's session has ended; sign in again.")
    try:
        org = form_data(OrgSwitchSerializer, {"org": request.POST.get("org", "")})["org"]
    except FormRejected as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("/")
    membership = org_switch(session=session, org=org).membership
    messages.success(
        request,
        f"You are now working in {membership.organization.name} as {membership.role}.",
    )
    return redirect("/")


# --- Sessions ------------------------------------------------------------------------


@dashboard_page()
def sessions_page(request: HttpRequest) -> HttpResponse:
    """The user's live sessions on every device, browser and API, this one marked."""
    principal = signed_in_principal(request)
    sessions = session_list(user_id=principal.user_id)
    page = Paginator(sessions, SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(session, str(session.id) == principal.session_id) for session in page]
    return render(request, "accounts/sessions.html", {"page": page, "rows": rows})


@dashboard_page()
@post_only("/sessions/")
def session_revoke_page(request: HttpRequest, session_id: UUID) -> HttpResponse:
    """End one of the user's sessions; ending this browser's signs it out."""
    principal = signed_in_principal(request)
    session = session_live_get(user_id=principal.user_id, session_id=session_id)
    session_revoke(session=session, reason="revoked_by_user")
    if str(session.id) == principal.session_id:
        logout(request)
        return redirect("/login/")
    messages.success(request, f"The session on {session.device or 'an unknown device'} ended.")
    return redirect("/sessions/")


@dashboard_page(step_up=True)
@post_only("/sessions/")
def sessions_revoke_others_page(request: HttpRequest) -> HttpResponse:
    """End every session of the user but this browser's."""
    principal = signed_in_principal(request)
    ended = sessions_revoke_all(
        user=page_user(principal),
        reason="revoked_by_user",
        keep_session_id=browser_session_id(principal),
    )
    messages.success(request, f"{plural(ended, 'other session')} ended.")
    return redirect("/sessions/")
