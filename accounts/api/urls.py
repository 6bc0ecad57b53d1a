from django.urls import path

from accounts.api import views

urlpatterns = [
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
        "orgs/current/members/<uuid:user_id>",
        views.MemberDetailApi.as_view(),
        name="org-member-detail",
    ),
    path("orgs/current/groups", views.GroupCollectionApi.as_view(), name="org-groups"),
    path(
        "orgs/current/groups/<uuid:group_id>",
        views.GroupDetailApi.as_view(),
        name="org-group-detail",
    ),
]
