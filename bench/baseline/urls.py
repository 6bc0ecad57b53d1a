"""One DRF view answering a JSON document the size of the project's profile answer."""

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class BareApi(APIView):
    """DRF with no authentication, permission or throttle."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response(PROFILE)


PROFILE: dict[str, Any] = {
    "id": "6f1c2e0a-9b8d-4c55-8e3a-1f2b3c4d5e6f",
    "username": "bench",
    "email": "bench@example.com",
    "name": "Bench Baseline",
    "organization": {"id": "0b7c5d2e-4f60-4a8e-9d1c-2e3f4a5b6c7d", "name": "Bench", "tier": "pro"},
    "role": "admin",
}

urlpatterns = [path("bare", BareApi.as_view())]
