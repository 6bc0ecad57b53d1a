from django.urls import path

from accounts.api import (
    auth,
    authorization,
    groups,
    invitations,
    members,
    mfa,
    organizations,
    sessions,
    tokens,
)
from config.routes import operations

urlpatterns = [
    path(
        "authorization/check",
        authorization.AuthorizationCheckApi.as_view(),
        name="authorization-check",
    ),
    path(
        "health/auth",
        authorization.AuthorizationHealthApi.as_view(),
        name="authorization-health",
    ),
    path("tokens", operations(tokens.TokenListApi, tokens.TokenCreateApi), name="tokens"),
    path("tokens/revoke-all", tokens.TokenRevokeAllApi.as_view(), name="tokens-revoke-all"),
    path("tokens/expiring", tokens.TokenExpiringApi.as_view(), name="tokens-expiring"),
    path("tokens/self", tokens.TokenSelfApi.as_view(), name="token-self"),
    path("tokens/self/rotate", tokens.TokenSelfRotateApi.as_view(), name="token-self-rotate"),
    path(
        "tokens/<uuid:token_id>",
        operations(tokens.TokenDetailApi, tokens.TokenUpdateApi, tokens.TokenRevokeApi),
        name="token-detail",
    ),
    path("tokens/<uuid:token_id>/rotate", tokens.TokenRotateApi.as_view(), name="token-rotate"),
    path("tokens/<uuid:token_id>/usage", tokens.TokenUsageApi.as_view(), name="token-usage"),
    path("auth/token", auth.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", auth.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/token/mfa", mfa.TokenMfaApi.as_view(), name="auth-token-mfa"),
    path(
        "auth/token/mfa/webauthn-options",
        mfa.TokenMfaPasskeyOptionsApi.as_view(),
        name="auth-token-mfa-webauthn-options",
    ),
    path("auth/mfa/factors", mfa.MfaFactorCollectionApi.as_view(), name="mfa-factors"),
    path(
        "auth/mfa/factors/<uuid:factor_id>",
        operations(mfa.MfaFactorRenameApi, mfa.MfaFactorRemoveApi),
        name="mfa-factor-detail",
    ),
    path("auth/mfa/totp", mfa.MfaTotpBeginApi.as_view(), name="mfa-totp"),
    path(
        "auth/mfa/totp/<uuid:factor_id>/confirm",
        mfa.MfaTotpConfirmApi.as_view(),
        name="mfa-totp-confirm",
    ),
    path(
        "auth/mfa/webauthn/options",
        mfa.MfaPasskeyOptionsApi.as_view(),
        name="mfa-webauthn-options",
    ),
    path("auth/mfa/webauthn", mfa.MfaPasskeyRegisterApi.as_view(), name="mfa-webauthn"),
    path("auth/mfa/recovery-codes", mfa.MfaRecoveryCodesApi.as_view(), name="mfa-recovery-codes"),
    path("auth/mfa/step-up", mfa.MfaStepUpApi.as_view(), name="mfa-step-up"),
    path(
        "auth/mfa/step-up/webauthn-options",
        mfa.MfaStepUpPasskeyOptionsApi.as_view(),
        name="mfa-step-up-webauthn-options",
    ),
    path("auth/logout", auth.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", auth.MeApi.as_view(), name="auth-me"),
    path("auth/switch-org", auth.OrgSwitchApi.as_view(), name="auth-switch-org"),
    path("auth/sessions", sessions.SessionCollectionApi.as_view(), name="auth-sessions"),
    path(
        "auth/sessions/revoke-all",
        sessions.SessionRevokeAllApi.as_view(),
        name="auth-sessions-revoke-all",
    ),
    path(
        "auth/sessions/<uuid:session_id>",
        sessions.SessionDetailApi.as_view(),
        name="auth-session-detail",
    ),
    path("orgs/current", organizations.OrgCurrentApi.as_view(), name="org-current"),
    path("orgs/current/members", members.MemberCollectionApi.as_view(), name="org-members"),
    path(
        "orgs/current/token-policy",
        operations(tokens.TokenPolicyDetailApi, tokens.TokenPolicyUpdateApi),
        name="org-token-policy",
    ),
    path(
        "orgs/current/mfa-policy",
        operations(mfa.MfaPolicyDetailApi, mfa.MfaPolicyUpdateApi),
        name="org-mfa-policy",
    ),
    path(
        "orgs/current/members/<uuid:user_id>/mfa-reset",
        mfa.MemberMfaResetApi.as_view(),
        name="org-member-mfa-reset",
    ),
    path(
        "orgs/current/members/<uuid:user_id>",
        operations(members.MemberUpdateApi, members.MemberRemoveApi),
        name="org-member-detail",
    ),
    path(
        "orgs/current/invitations",
        operations(invitations.InvitationListApi, invitations.InvitationCreateApi),
        name="org-invitations",
    ),
    path(
        "orgs/current/invitations/<uuid:invitation_id>",
        invitations.InvitationDetailApi.as_view(),
        name="org-invitation-detail",
    ),
    path(
        "invitations",
        invitations.ReceivedInvitationCollectionApi.as_view(),
        name="invitations",
    ),
    path(
        "invitations/<uuid:invitation_id>/accept",
        invitations.ReceivedInvitationAcceptApi.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline",
        invitations.ReceivedInvitationDeclineApi.as_view(),
        name="invitation-decline",
    ),
    path(
        "orgs/current/groups",
        operations(groups.GroupListApi, groups.GroupCreateApi),
        name="org-groups",
    ),
    path(
        "orgs/current/groups/<uuid:group_id>",
        operations(groups.GroupUpdateApi, groups.GroupDeleteApi),
        name="org-group-detail",
    ),
]
