"""The accounts pages of the dashboard."""

from django.urls import URLPattern, path

from accounts import views

urlpatterns: list[URLPattern] = [
    path("account/", views.account_page, name="account"),
    path("account/password/", views.password_change_page, name="account-password"),
    path("account/organization/", views.organization_switch_page, name="account-organization"),
    path("account/security/", views.security_page, name="security"),
    path("account/security/verify/", views.security_verify_page, name="security-verify"),
    path("account/security/totp/", views.security_totp_begin_page, name="security-totp"),
    path(
        "account/security/totp/<uuid:factor_id>/confirm/",
        views.security_totp_confirm_page,
        name="security-totp-confirm",
    ),
    path("account/security/passkeys/", views.security_passkey_page, name="security-passkeys"),
    path(
        "account/security/recovery-codes/",
        views.security_recovery_codes_page,
        name="security-recovery-codes",
    ),
    path(
        "account/security/factors/<uuid:factor_id>/rename/",
        views.security_factor_rename_page,
        name="security-factor-rename",
    ),
    path(
        "account/security/factors/<uuid:factor_id>/remove/",
        views.security_factor_remove_page,
        name="security-factor-remove",
    ),
    path("sessions/", views.sessions_page, name="sessions"),
    path(
        "sessions/revoke-others/", views.sessions_revoke_others_page, name="sessions-revoke-others"
    ),
    path("sessions/<uuid:session_id>/revoke/", views.session_revoke_page, name="session-revoke"),
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/new/", views.token_create_page, name="token-create"),
    path("tokens/revoke-all/", views.tokens_revoke_all_page, name="tokens-revoke-all"),
    path("tokens/<uuid:token_id>/", views.token_page, name="token"),
    path("tokens/<uuid:token_id>/secret/", views.token_secret_page, name="token-secret"),
    path("tokens/<uuid:token_id>/rotate/", views.token_rotate_page, name="token-rotate"),
    path("tokens/<uuid:token_id>/revoke/", views.token_revoke_page, name="token-revoke"),
    path(
        "tokens/<uuid:token_id>/allowed-ips/",
        views.token_allowed_ips_page,
        name="token-allowed-ips",
    ),
    path("members/", views.members_page, name="members"),
    path("members/invite/", views.member_invite_page, name="member-invite"),
    path(
        "members/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke_page,
        name="invitation-revoke",
    ),
    path("invitations/", views.invitations_page, name="invitations"),
    path(
        "invitations/<uuid:invitation_id>/accept/",
        views.invitation_accept_page,
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline/",
        views.invitation_decline_page,
        name="invitation-decline",
    ),
    path("members/<uuid:user_id>/role/", views.member_role_page, name="member-role"),
    path("members/<uuid:user_id>/remove/", views.member_remove_page, name="member-remove"),
    path("members/<uuid:user_id>/mfa-reset/", views.member_mfa_reset_page, name="member-mfa-reset"),
    path("members/mfa-policy/", views.mfa_policy_page, name="mfa-policy"),
    path("members/groups/new/", views.group_create_page, name="group-create"),
    path("members/groups/<uuid:group_id>/", views.group_page, name="group"),
    path("members/groups/<uuid:group_id>/edit/", views.group_edit_page, name="group-edit"),
    path("members/groups/<uuid:group_id>/delete/", views.group_delete_page, name="group-delete"),
    path(
        "members/groups/<uuid:group_id>/members/add/",
        views.group_member_add_page,
        name="group-member-add",
    ),
    path(
        "members/groups/<uuid:group_id>/members/<uuid:user_id>/remove/",
        views.group_member_remove_page,
        name="group-member-remove",
    ),
]
