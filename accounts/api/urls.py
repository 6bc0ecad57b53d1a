from django.urls import path

from accounts.api import (
    auth,
    authorization,
    groups,
    invitations,
    members,
    organizations,
    sessions,
    tokens,
)

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
    path("tokens", tokens.TokenCollectionApi.as_view(), name="tokens"),
    path("tokens/revoke-all", tokens.TokenRevokeAllApi.as_view(), name="tokens-revoke-all"),
    path("tokens/expiring", tokens.TokenExpiringApi.as_view(), name="tokens-expiring"),
    path("tokens/self", tokens.TokenSelfApi.as_view(), name="token-self"),
    path("tokens/self/rotate", tokens.TokenSelfRotateApi.as_view(), name="token-self-rotate"),
    path("tokens/<uuid:token_id>", tokens.TokenDetailApi.as_view(), name="token-detail"),
    path("tokens/<uuid:token_id>/rotate", tokens.TokenRotateApi.as_view(), name="token-rotate"),
    path("tokens/<uuid:token_id>/usage", tokens.TokenUsageApi.as_view(), name="token-usage"),
    path("auth/token", auth.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", auth.TokenRefreshApi.as_view(), name="auth-token-refresh"),
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
    path("orgs/current/token-policy", tokens.TokenPolicyApi.as_view(), name="org-token-policy"),
    path(
        "orgs/current/members/<uuid:user_id>",
        members.MemberDetailApi.as_view(),
        name="org-member-detail",
    ),
    path(
        "orgs/current/invitations",
        invitations.InvitationCollectionApi.as_view(),
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
    path("orgs/current/groups", groups.GroupCollectionApi.as_view(), name="org-groups"),
    path(
        "orgs/current/groups/<uuid:group_id>",
        groups.GroupDetailApi.as_view(),
        name="org-group-detail",
    ),
]
