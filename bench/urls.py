"""The project's URLs plus the bare views that serve as baselines."""

from django.urls import include, path
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

# The project's error views answer here too.
from config.urls import handler400, handler403, handler404, handler500  # noqa: F401


class BareApi(APIView):
    """The least a DRF view can do: the baseline every API benchmark is compared with."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AuthenticatedApi(APIView):
    """The same view behind the project's default authentication and permission check."""

    required_permission = "image:read"

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AuthenticatedOnlyApi(APIView):
    """The same view authenticated, without asking the decision point."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("bench/authenticated-only", AuthenticatedOnlyApi.as_view()),
    path("bench/bare", BareApi.as_view()),
    path("bench/authenticated", AuthenticatedApi.as_view()),
    path("", include("config.urls")),
]
