"""Django admin for identity; every change that matters goes through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group as DjangoGroup
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.identity.principal import organization_changed
from accounts.models import (
    Group,
    Invitation,
    LoginFailure,
    Membership,
    Organization,
    ServiceToken,
    Session,
    User,
)
from accounts.ratelimits.tiers import LIMIT_FIELDS
from accounts.selectors import default_membership, factor_list
from accounts.services.factors import mfa_reset
from accounts.services.invitations import invitation_revoke
from accounts.services.organizations import (
    LIMIT_CEILINGS,
    member_remove,
    organization_limits_set,
    user_deactivate,
)
from accounts.services.sessions import session_revoke, sessions_revoke_all
from accounts.services.token_policies import token_policy_set
from accounts.services.tokens import token_revoke
from config.admin_site import each_through_service
from config.request_context import bind_staff

# Organizations' groups are the product's own; Django's permission groups are unused.
admin.site.unregister(DjangoGroup)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("organization", "role", "created_at")
    readonly_fields = ("organization", "role", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Profile", {"fields": ("name", "email")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        ("Second factors", {"fields": ("second_factors",)}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),
    )
    readonly_fields = ("is_active", "last_login", "date_joined", "second_factors")
    list_display = ("username", "email", "name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("username", "email", "name")
    ordering = ("username",)
    inlines = [MembershipInline]
    actions = ["deactivate_users", "end_all_sessions", "reset_second_factors"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and {"username", "name", "email"} & set(form.changed_data):
            # Requests read a member's name and address from the cached member
            # views (a profile answer, audit events): renew them everywhere.
            for org_id in obj.memberships.values_list("organization_id", flat=True):
                organization_changed(org_id)

    @admin.display(description="Second factors")
    def second_factors(self, user: User) -> str:
        """The person's authenticator apps and passkeys by name (never a secret)."""
        names = [
            f"{f['name']} ({'app' if f['kind'] == 'totp' else 'passkey'})"
            for f in factor_list(user_id=user.pk)
        ]
        return ", ".join(names) or "none"

    @admin.action(description="Deactivate (and end every session of) the selected users")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        bind_staff(request)
        for user in queryset.filter(is_active=True):
            user_deactivate(user=user)
        self.message_user(request, "The selected users are deactivated; their sessions ended.")

    @admin.action(description="End every session of the selected users")
    def end_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        bind_staff(request)
        ended = sum(sessions_revoke_all(user=u, reason="revoked_by_admin") for u in queryset)
        self.message_user(request, f"{ended} session(s) ended.")

    @admin.action(
        description="Reset the second factors (and end the sessions) of the selected users"
    )
    def reset_second_factors(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        bind_staff(request)
        removed = 0
        for user in queryset:
            membership = default_membership(user=user)
            removed += mfa_reset(
                user=user,
                organization=membership.organization if membership else None,
                reason="reset_by_staff",
            )
        self.message_user(request, f"{removed} second factor(s) removed; their sessions ended.")


POLICY_FIELDS = ("token_max_lifetime_days", "require_allowed_ips")


class OrganizationAdminForm(forms.ModelForm):
    """The organization's form, refusing a limit override the service would refuse."""

    class Meta:
        model = Organization
        fields = (
            "name",
            "slug",
            "tier",
            "is_active",
            "token_max_lifetime_days",
            "require_allowed_ips",
            *LIMIT_FIELDS,
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for name in LIMIT_FIELDS:
            value = cleaned.get(name)
            if value is not None and not 1 <= value <= LIMIT_CEILINGS[name]:
                self.add_error(
                    name, f"Between 1 and {LIMIT_CEILINGS[name]:,}, or empty for the tier's figure."
                )
        lifetime = cleaned.get("token_max_lifetime_days")
        if lifetime is not None and not 1 <= lifetime <= settings.TOKEN_MAX_LIFETIME_DAYS:
            self.add_error(
                "token_max_lifetime_days",
                f"Between 1 and {settings.TOKEN_MAX_LIFETIME_DAYS}, or empty for no bound "
                "beyond the service's.",
            )
        return cleaned


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationAdminForm
    list_display = ("slug", "name", "tier", "is_active", "created_at")
    list_filter = ("tier", "is_active")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request: HttpRequest, obj: Organization, form: Any, change: bool) -> None:
        limits = {name: getattr(obj, name) for name in LIMIT_FIELDS}
        policy = {
            "max_lifetime_days": obj.token_max_lifetime_days,
            "require_allowed_ips": obj.require_allowed_ips,
        }
        if change:  # limits and token policy change through the services, which audit them
            original = Organization.objects.get(pk=obj.pk)
            for name in (*LIMIT_FIELDS, *POLICY_FIELDS):
                setattr(obj, name, getattr(original, name))
        super().save_model(request, obj, form, change)
        # Tier or state changes reach every member's next request.
        organization_changed(obj.id)
        bind_staff(request)
        organization_limits_set(organization=obj, reset=True, **limits)
        token_policy_set(organization=obj, **policy)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__username", "user__email", "organization__slug")
    readonly_fields = ("user", "organization", "role", "created_at")
    actions = ["remove_members"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # use create_user / add_member or the API: they audit

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the action below goes through the service

    @admin.action(description="Remove the selected members (never an organization's last admin)")
    def remove_members(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        each_through_service(
            self,
            request,
            queryset.select_related("user", "organization"),
            lambda membership: member_remove(membership=membership),
        )


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "permissions", "created_at")
    list_filter = ("organization",)
    search_fields = ("name",)
    readonly_fields = ("organization", "name", "permissions", "members", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # groups are managed through the API, which audits every change


# Token ids and the browser session key let whoever reads them act as the user.
_SESSION_SECRETS = ("refresh_jti", "previous_refresh_jti", "django_session_key")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "organization",
        "kind",
        "device",
        "ip",
        "last_activity",
        "revoked_at",
        "revoked_reason",
    )
    list_filter = ("kind", "revoked_reason")
    search_fields = ("user__username", "ip", "device")
    exclude = _SESSION_SECRETS
    readonly_fields = [f.name for f in Session._meta.fields if f.name not in _SESSION_SECRETS]
    actions = ["revoke_sessions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected sessions")
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        bind_staff(request)
        ended = sum(
            session_revoke(session=s, reason="revoked_by_admin")
            for s in queryset.select_related("organization")
        )
        self.message_user(request, f"{ended} session(s) revoked.")


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ("username", "ip", "created_at")
    search_fields = ("username", "ip")
    readonly_fields = ("username", "ip", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "organization",
        "status",
        "scopes",
        "created_by",
        "expires_at",
        "last_used_at",
        "usage_count",
    )
    list_filter = ("organization", "revoked_reason")
    search_fields = ("name", "prefix", "organization__slug")
    # The digest is as good as a password to an attacker with a copy of the table.
    exclude = ("digest",)
    readonly_fields = [f.name for f in ServiceToken._meta.fields if f.name != "digest"]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API or create_service_token: the secret is shown once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the token's history stays

    @admin.display(description="status")
    def status(self, token: ServiceToken) -> str:
        return token.status_at(timezone.now())

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ServiceToken]) -> None:
        bind_staff(request)
        revoked = sum(
            token_revoke(token=token, reason=f"revoked in admin by {request.user}")
            for token in queryset
        )
        self.message_user(request, f"{revoked} token(s) revoked.")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "organization",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "responded_at",
    )
    list_filter = ("state", "organization")
    search_fields = ("email", "organization__slug")
    readonly_fields = [f.name for f in Invitation._meta.fields] + ["groups"]
    actions = ["revoke_invitations"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by an organization's admins (API, dashboard), who audit it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the invitation's history stays

    @admin.action(description="Revoke the selected pending invitations")
    def revoke_invitations(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked = each_through_service(
            self,
            request,
            queryset.select_related("organization"),
            lambda invitation: invitation_revoke(invitation=invitation),
        )
        self.message_user(request, f"{revoked} invitation(s) revoked.")
