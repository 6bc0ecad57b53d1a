"""The members, invitations and groups pages (org:admin)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.api.invitation_serializers import InvitationCreateSerializer
from accounts.api.serializers import GroupWriteSerializer, MemberUpdateSerializer
from accounts.authz.pages import dashboard_page, signed_in_principal
from accounts.errors import LastAdmin, PermissionDenied
from accounts.models import Group, Membership, MfaPolicy, Role
from accounts.roles import PERMISSION_DESCRIPTIONS, PERMISSIONS, role_permissions
from accounts.selectors import (
    group_get,
    group_list,
    invitation_get,
    invitation_list,
    member_factor_kinds,
    member_get,
    member_list,
    organization_get,
)
from accounts.services import factors as factor_services
from accounts.services import invitations as invitation_services
from accounts.services import organizations as org_services
from accounts.views.forms import (
    FORM_REFUSALS,
    GROUPS_PER_PAGE,
    INVITATIONS_PER_PAGE,
    MEMBERS_PER_PAGE,
    form_data,
    page_user,
    post_only,
    refusal_messages,
)
from config.errors import NotFound

# --- Members and groups --------------------------------------------------------------------


def _last_admin_explained(membership: Membership, exc: LastAdmin) -> list[str]:
    return [
        f"{membership.user.username} is the last admin of {membership.organization.name}, "
        f"so they can be neither demoted nor removed. {exc.detail}"
    ]


def _widened(membership: Membership) -> list[tuple[Any, list[str]]]:
    """Return each of the member's groups with the permissions it adds to their role."""
    held = role_permissions(membership.role)
    return [(group, sorted(set(group.permissions) - held)) for group in membership.groups.all()]


def _members_render(
    request: HttpRequest,
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    values: Any = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    members = member_list(organization_id=principal.organization_id)
    groups = group_list(organization_id=principal.organization_id)
    invitations = invitation_list(organization_id=principal.organization_id)
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    factors = member_factor_kinds(organization_id=principal.organization_id)
    context = {
        "members": page,
        "member_rows": [
            (membership, _widened(membership), factors.get(str(membership.user_id), []))
            for membership in page
        ],
        "mfa_policy": organization_get(organization_id=principal.organization_id).mfa_policy,
        "mfa_policies": MfaPolicy.choices,
        "invitations": Paginator(invitations, INVITATIONS_PER_PAGE).get_page(
            request.GET.get("invitations_page")
        ),
        "groups": Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("groups_page")),
        "roles": Role.values,
        "permissions": [(name, PERMISSION_DESCRIPTIONS[name]) for name in PERMISSIONS],
        "invitation_days": settings.INVITATION_EXPIRY_DAYS,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, "accounts/members.html", context, status=status)


@dashboard_page("org:admin")
def members_page(request: HttpRequest) -> HttpResponse:
    """The organization's members with their roles and groups, and its groups."""
    return _members_render(request)


@dashboard_page("org:admin", step_up=True)
@post_only("/members/")
def member_invite_page(request: HttpRequest) -> HttpResponse:
    """Invite an email address with a role and groups; the person accepts or declines."""
    principal = signed_in_principal(request)
    values = {
        "email": request.POST.get("email", "").strip(),
        "role": request.POST.get("role", ""),
        "groups": request.POST.getlist("groups"),
    }
    try:
        data = form_data(InvitationCreateSerializer, values)
        invitation = invitation_services.invitation_create(
            organization=organization_get(organization_id=principal.organization_id),
            email=data["email"],
            role=data["role"],
            groups=data.get("groups", []),
            invited_by=page_user(principal),
        )
    except FORM_REFUSALS as exc:
        return _members_render(
            request, status=exc.status, errors={"invite": refusal_messages(exc)}, values=values
        )
    messages.success(request, f"{invitation.email} was invited as {invitation.role}.")
    return redirect("/members/")


@dashboard_page("org:admin")
@post_only("/members/")
def invitation_revoke_page(request: HttpRequest, invitation_id: UUID) -> HttpResponse:
    """Withdraw a pending invitation."""
    invitation = invitation_get(
        organization_id=signed_in_principal(request).organization_id,
        invitation_id=str(invitation_id),
    )
    try:
        invitation_services.invitation_revoke(invitation=invitation)
    except FORM_REFUSALS as exc:
        return _members_render(
            request, status=exc.status, errors={"invitations": refusal_messages(exc)}
        )
    messages.success(request, f"The invitation of {invitation.email} was revoked.")
    return redirect("/members/")


@dashboard_page("org:admin", step_up=True)
@post_only("/members/")
def member_role_page(request: HttpRequest, user_id: UUID) -> HttpResponse:
    """Change a member's role; the last admin keeps theirs."""
    principal = signed_in_principal(request)
    membership = member_get(organization_id=principal.organization_id, user_id=str(user_id))
    try:
        data = form_data(MemberUpdateSerializer, {"role": request.POST.get("role", "")})
        org_services.member_update(membership=membership, role=data["role"])
    except LastAdmin as exc:
        return _members_render(
            request, status=exc.status, errors={"members": _last_admin_explained(membership, exc)}
        )
    except FORM_REFUSALS as exc:
        return _members_render(
            request, status=exc.status, errors={"members": refusal_messages(exc)}
        )
    messages.success(request, f"{membership.user.username} is now {membership.role}.")
    # Demoting yourself may take this page away from you.
    return redirect("/" if str(membership.user_id) == principal.user_id else "/members/")


@dashboard_page("org:admin")
@post_only("/members/")
def member_remove_page(request: HttpRequest, user_id: UUID) -> HttpResponse:
    """Remove a member: their sessions in this organization end now."""
    principal = signed_in_principal(request)
    membership = member_get(organization_id=principal.organization_id, user_id=str(user_id))
    try:
        org_services.member_remove(membership=membership)
    except LastAdmin as exc:
        return _members_render(
            request, status=exc.status, errors={"members": _last_admin_explained(membership, exc)}
        )
    if str(membership.user_id) == principal.user_id:
        logout(request)  # this browser's session in the organization has ended
        return redirect("/login/")
    messages.success(request, f"{membership.user.username} is no longer a member.")
    return redirect("/members/")


@dashboard_page("org:admin", step_up=True)
@post_only("/members/")
def group_create_page(request: HttpRequest) -> HttpResponse:
    """Create a group granting permissions to its members."""
    principal = signed_in_principal(request)
    values = {
        "name": request.POST.get("name", "").strip(),
        "permissions": request.POST.getlist("permissions"),
    }
    try:
        data = form_data(GroupWriteSerializer, values)
        group = org_services.group_create(
            organization=organization_get(organization_id=principal.organization_id),
            name=data["name"],
            permissions=data["permissions"],
        )
    except FORM_REFUSALS as exc:
        return _members_render(
            request,
            status=exc.status,
            errors={"group": refusal_messages(exc)},
            values={"group": values},
        )
    messages.success(request, f"The group {group.name} was created.")
    return redirect(f"/members/groups/{group.id}/")


def _group_render(
    request: HttpRequest,
    group_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    values: Any = None,
) -> HttpResponse:
    principal = signed_in_principal(request)
    group = group_get(organization_id=principal.organization_id, group_id=str(group_id))
    in_group = sorted(group.members.all(), key=lambda membership: membership.user.username)
    joined = {membership.user_id for membership in in_group}
    others = [
        membership
        for membership in member_list(organization_id=principal.organization_id)
        if membership.user_id not in joined
    ]
    context = {
        "group": group,
        "in_group": in_group,
        "others": others,
        "permissions": [(name, PERMISSION_DESCRIPTIONS[name]) for name in PERMISSIONS],
        "errors": errors or {},
        "values": values or {"name": group.name, "permissions": group.permissions},
    }
    return render(request, "accounts/group.html", context, status=status)


@dashboard_page("org:admin")
def group_page(request: HttpRequest, group_id: UUID) -> HttpResponse:
    """One group: its permissions and members, and the forms that change them."""
    return _group_render(request, group_id)


@dashboard_page("org:admin", step_up=True)
@post_only("/members/groups/{group_id}/")
def group_edit_page(request: HttpRequest, group_id: UUID) -> HttpResponse:
    """Rename a group or change its permissions."""
    group = group_get(
        organization_id=signed_in_principal(request).organization_id, group_id=str(group_id)
    )
    values = {
        "name": request.POST.get("name", "").strip(),
        "permissions": request.POST.getlist("permissions"),
    }
    try:
        data = form_data(GroupWriteSerializer, values)
        org_services.group_update(group=group, name=data["name"], permissions=data["permissions"])
    except FORM_REFUSALS as exc:
        return _group_render(
            request,
            group_id,
            status=exc.status,
            errors={"edit": refusal_messages(exc)},
            values=values,
        )
    messages.success(request, f"The group {data['name']} was saved.")
    return redirect(f"/members/groups/{group.id}/")


@dashboard_page("org:admin")
@post_only("/members/groups/{group_id}/")
def group_delete_page(request: HttpRequest, group_id: UUID) -> HttpResponse:
    """Delete a group; its members lose what it granted on their next request."""
    group = group_get(
        organization_id=signed_in_principal(request).organization_id, group_id=str(group_id)
    )
    org_services.group_delete(group=group)
    messages.success(request, f"The group {group.name} was deleted.")
    return redirect("/members/")


def _group_members_set(request: HttpRequest, group: Group, user_ids: list[str]) -> HttpResponse:
    try:
        data = form_data(GroupWriteSerializer, {"members": user_ids}, partial=True)
        org_services.group_update(group=group, members=data["members"])
    except FORM_REFUSALS as exc:
        return _group_render(
            request, group.id, status=exc.status, errors={"members": refusal_messages(exc)}
        )
    messages.success(request, f"The members of {group.name} were saved.")
    return redirect(f"/members/groups/{group.id}/")


@dashboard_page("org:admin", step_up=True)
@post_only("/members/groups/{group_id}/")
def group_member_add_page(request: HttpRequest, group_id: UUID) -> HttpResponse:
    """Add a member of the organization to the group."""
    group = group_get(
        organization_id=signed_in_principal(request).organization_id, group_id=str(group_id)
    )
    current = [str(membership.user_id) for membership in group.members.all()]
    return _group_members_set(request, group, [*current, request.POST.get("user_id", "")])


@dashboard_page("org:admin")
@post_only("/members/groups/{group_id}/")
def group_member_remove_page(request: HttpRequest, group_id: UUID, user_id: UUID) -> HttpResponse:
    """Take a member out of the group."""
    group = group_get(
        organization_id=signed_in_principal(request).organization_id, group_id=str(group_id)
    )
    current = [str(membership.user_id) for membership in group.members.all()]
    if str(user_id) not in current:
        raise NotFound("This group has no member with that id.")
    remaining = [member for member in current if member != str(user_id)]
    return _group_members_set(request, group, remaining)


@dashboard_page("org:admin", step_up=True)
@post_only("/members/")
def member_mfa_reset_page(request: HttpRequest, user_id: UUID) -> HttpResponse:
    """Remove a member's second factors (they lost them); their sessions end."""
    principal = signed_in_principal(request)
    membership = member_get(organization_id=principal.organization_id, user_id=user_id)
    try:
        removed = factor_services.member_mfa_reset(membership=membership, reason="admin_reset")
    except PermissionDenied as exc:
        messages.error(request, str(exc.detail))
        return redirect("/members/")
    messages.success(
        request,
        f"{membership.user.username}'s second factors were reset ({removed} removed); "
        "their sessions ended.",
    )
    if str(membership.user_id) == principal.user_id:
        logout(request)
        return redirect("/login/")
    return redirect("/members/")


@dashboard_page("org:admin", step_up=True)
@post_only("/members/")
def mfa_policy_page(request: HttpRequest) -> HttpResponse:
    """Set which members must sign in with a second factor."""
    principal = signed_in_principal(request)
    try:
        organization = factor_services.mfa_policy_set(
            organization=organization_get(organization_id=principal.organization_id),
            policy=request.POST.get("mfa_policy", ""),
        )
    except FORM_REFUSALS as exc:
        return _members_render(request, status=exc.status, errors={"mfa": refusal_messages(exc)})
    label = dict(MfaPolicy.choices)[organization.mfa_policy]
    messages.success(request, f"A second factor is now required of: {label} (from next sign-in).")
    return redirect("/members/")
