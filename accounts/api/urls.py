from django.urls import path

from accounts.api import authorization_views, invitation_views, token_views, views

urlpatterns = [
    path(
        "authorization/check",
        authorization_views.AuthorizationCheckApi.as_view(),
        name="authorization-check",
    ),
    path(
        "health/auth",
        authorization_views.AuthorizationHealthApi.as_view(),
        name="authorization-health",
    ),
    path("tokens", token_views.TokenCollectionApi.as_view(), name="tokens"),
    path("tokens/revoke-all", token_views.TokenRevokeAllApi.as_view(), name="tokens-revoke-all"),
    path("tokens/expiring", token_views.TokenExpiringApi.as_view(), name="tokens-expiring"),
    path("tokens/self", token_views.TokenSelfApi.as_view(), name="token-self"),
    path("tokens/self/rotate", token_views.TokenSelfRotateApi.as_view(), name="token-self-rotate"),
    path("tokens/<uuid:token_id>", token_views.TokenDetailApi.as_view(), name="token-detail"),
    path(
        "tokens/<uuid:token_id>/rotate", token_views.TokenRotateApi.as_view(), name="token-rotate"
    ),
    path("tokens/<uuid:token_id>/usage", token_views.TokenUsageApi.as_view(), name="token-usage"),
    path("auth/token", views.TokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", views.MeApi.as_view(), name="auth-me"),
    path("auth/switch-org", views.OrgSwitchApi.as_view(), name="auth-switch-org"),
    path("auth/sessions", views.SessionCollectionApi.as_view(), name="auth-sessions"),
    path(
        "auth/sessions/revoke-all",
        views.SessionRevokeAllApi.as_view(),
        name="auth-sessions-revoke-all",
    ),
    path(
        "auth/sessions/<uuid:session_id>",
        views.SessionDetailApi.as_view(),
        name="auth-session-detail",
    ),
    path("orgs/current", views.OrgCurrentApi.as_view(), name="org-current"),
    path("orgs/current/members", views.MemberCollectionApi.as_view(), name="org-members"),
    path(
        "orgs/current/token-policy", token_views.TokenPolicyApi.as_view(), name="org-token-policy"
    ),
    path(
        "orgs/current/members/<uuid:user_id>",
        views.MemberDetailApi.as_view(),
        name="org-member-detail",
    ),
    path(
        "orgs/current/invitations",
        invitation_views.InvitationCollectionApi.as_view(),
        name="org-invitations",
    ),
    path(
        "orgs/current/invitations/<uuid:invitation_id>",
        invitation_views.InvitationDetailApi.as_view(),
        name="org-invitation-detail",
    ),
    path(
        "invitations",
        invitation_views.ReceivedInvitationCollectionApi.as_view(),
        name="invitations",
    ),
    path(
        "invitations/<uuid:invitation_id>/accept",
        invitation_views.ReceivedInvitationAcceptApi.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline",
        invitation_views.ReceivedInvitationDeclineApi.as_view(),
        name="invitation-decline",
    ),
    path("orgs/current/groups", views.GroupCollectionApi.as_view(), name="org-groups"),
    path(
        "orgs/current/groups/<uuid:group_id>",
        views.GroupDetailApi.as_view(),
        name="org-group-detail",
    ),
]
