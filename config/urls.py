"""Top-level URLs. Each app owns its API routes under /api/v1/."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from accounts import views as account_views
from accounts.api.urls import urlpatterns as accounts_api
from audit.api.urls import urlpatterns as audit_api
from classifier.api.urls import urlpatterns as classifier_api
from config.api_docs import DocsPage, SchemaApi
from config.errors import page_not_found
from config.health import HealthApi, VersionedHealthApi
from config.metrics_api import MetricsApi
from config.routes import by_first_segment
from images import views as image_views
from images.api.urls import urlpatterns as images_api
from webhooks.api.urls import urlpatterns as webhooks_api

# Each app's API routes, under /api/v1/ and grouped by their first segment.
API_V1 = by_first_segment(
    "api/v1/", [*accounts_api, *audit_api, *images_api, *classifier_api, *webhooks_api]
)

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("api/v1/health", VersionedHealthApi.as_view(), name="api-health"),
    *API_V1,
    path("api/schema/", SchemaApi.as_view(), name="api-schema"),
    path(
        "api/docs/",
        DocsPage.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    # Any other API path is unknown: answered here, not after a pass over every page's route.
    re_path(r"^api/", csrf_exempt(page_not_found), name="api-unknown"),
    # Staff sign in like everyone else, so their browser session is listed and revocable.
    path("admin/login/", account_views.admin_login_page, name="admin-login"),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg", permanent=True)),
    path("login/", account_views.login_page, name="login"),
    path("login/verify/", account_views.login_verify_page, name="login-verify"),
    path("logout/", account_views.logout_page, name="logout"),
    path("", image_views.home_page, name="home"),
    path("", include("accounts.urls")),
    path("", include("images.urls")),
    path("", include("classifier.urls")),
    path("", include("audit.urls")),
    path("", include("webhooks.urls")),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
