"""The invitations page: what a signed-in person has been invited to, to accept or decline."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.selectors import invitation_received_get, invitations_received
from accounts.services import invitations as invitation_services
from accounts.views.forms import FORM_REFUSALS, page_user, post_only, refusal_messages


def _invitations_render(
    request: HttpRequest, *, status: int = 200, errors: list[str] | None = None
) -> HttpResponse:
    user = page_user(signed_in_principal(request))
    context = {"invitations": list(invitations_received(user=user)), "errors": errors or []}
    return render(request, "accounts/invitations.html", context, status=status)


@dashboard_page()
def invitations_page(request: HttpRequest) -> HttpResponse:
    """The open invitations addressed to the signed-in person's email address."""
    return _invitations_render(request)


@dashboard_page()
@post_only("/invitations/")
def invitation_accept_page(request: HttpRequest, invitation_id: UUID) -> HttpResponse:
    """Join the inviting organization; the organization switch then offers it."""
    user = page_user(signed_in_principal(request))
    invitation = invitation_received_get(user=user, invitation_id=str(invitation_id))
    try:
        invitation_services.invitation_accept(invitation=invitation, user=user)
    except FORM_REFUSALS as exc:
        return _invitations_render(request, status=exc.status, errors=refusal_messages(exc))
    messages.success(
        request,
        f"You joined {invitation.organization.name} as {invitation.role}. "
        "Switch to it from the organization menu.",
    )
    return redirect("/invitations/")


@dashboard_page()
@post_only("/invitations/")
def invitation_decline_page(request: HttpRequest, invitation_id: UUID) -> HttpResponse:
    """Refuse an invitation."""
    user = page_user(signed_in_principal(request))
    invitation = invitation_received_get(user=user, invitation_id=str(invitation_id))
    try:
        invitation_services.invitation_decline(invitation=invitation, user=user)
    except FORM_REFUSALS as exc:
        return _invitations_render(request, status=exc.status, errors=refusal_messages(exc))
    messages.success(request, f"You declined the invitation to {invitation.organization.name}.")
    return redirect("/invitations/")
