"""The identity pages of the dashboard: sign-in and sign-out, the account and its password,
sessions, the organization switch, service tokens, members, invitations and groups.

Sign-in ties a Django session to a login Session. Every other page calls the
services and selectors the API calls and parses its forms with the API's own
serializers; a refused change (bad input, a conflict, the last-admin rule) is
shown on the page it came from, with nothing changed.
"""

from accounts.views.account import (
    account_page,
    organization_switch_page,
    password_change_page,
    session_revoke_page,
    sessions_page,
    sessions_revoke_others_page,
)
from accounts.views.invitations import (
    invitation_accept_page,
    invitation_decline_page,
    invitations_page,
)
from accounts.views.members import (
    group_create_page,
    group_delete_page,
    group_edit_page,
    group_member_add_page,
    group_member_remove_page,
    group_page,
    invitation_revoke_page,
    member_invite_page,
    member_mfa_reset_page,
    member_remove_page,
    member_role_page,
    members_page,
    mfa_policy_page,
)
from accounts.views.security import (
    security_factor_remove_page,
    security_factor_rename_page,
    security_page,
    security_passkey_page,
    security_recovery_codes_page,
    security_totp_begin_page,
    security_totp_confirm_page,
    security_verify_page,
)
from accounts.views.signin import (
    admin_login_page,
    login_page,
    login_verify_page,
    logout_page,
)
from accounts.views.token_secret import token_secret_page
from accounts.views.tokens import (
    token_allowed_ips_page,
    token_create_page,
    token_page,
    token_revoke_page,
    token_rotate_page,
    tokens_page,
    tokens_revoke_all_page,
)

__all__ = [
    "account_page",
    "admin_login_page",
    "group_create_page",
    "group_delete_page",
    "group_edit_page",
    "group_member_add_page",
    "group_member_remove_page",
    "group_page",
    "invitation_accept_page",
    "invitation_decline_page",
    "invitation_revoke_page",
    "invitations_page",
    "login_page",
    "login_verify_page",
    "logout_page",
    "member_invite_page",
    "member_mfa_reset_page",
    "member_remove_page",
    "member_role_page",
    "members_page",
    "mfa_policy_page",
    "organization_switch_page",
    "password_change_page",
    "security_factor_remove_page",
    "security_factor_rename_page",
    "security_page",
    "security_passkey_page",
    "security_recovery_codes_page",
    "security_totp_begin_page",
    "security_totp_confirm_page",
    "security_verify_page",
    "session_revoke_page",
    "sessions_page",
    "sessions_revoke_others_page",
    "token_allowed_ips_page",
    "token_create_page",
    "token_page",
    "token_revoke_page",
    "token_rotate_page",
    "token_secret_page",
    "tokens_page",
    "tokens_revoke_all_page",
]
