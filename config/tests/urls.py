"""The project's URLs plus views that exercise the error plumbing from inside a view."""

from django.db import OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_POST
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import DomainError
from config.tests.tasks import record_execution


class ImageTooSmall(DomainError):
    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Image dimensions out of range"


class QuotaExceeded(DomainError):
    status = 429
    code = "QUOTA_EXCEEDED"


class ItemSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(min_value=1)
    tags = serializers.ListField(child=serializers.CharField(max_length=3), required=False)


class MarkerSerializer(serializers.Serializer):
    marker = serializers.CharField(max_length=64)


class ValidateApi(APIView):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = ItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class PrivateApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "user": str(user.pk),
                "username": user.get_username(),
                "email": getattr(user, "email", None),
            }
        )


class ForbiddenApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise PermissionDenied("Permission denied: image:upload")


class DomainErrorApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        if request.query_params.get("quota"):
            raise QuotaExceeded("Daily upload quota reached.", headers={"Retry-After": "3600"})
        raise ImageTooSmall("The image is 10x10; it must be at least 32x32.")


class ThrottledApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise Throttled(wait=12.3)


class CrashApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("internal detail: password=hunter2 at /srv/secret/path.py")


class DatabaseDownApi(APIView):
    """What any view meets while the database server cannot be reached."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise OperationalError(
            'connection to server at "10.0.0.5", port 5432 failed: Connection refused'
        )


class EnqueueApi(APIView):
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = MarkerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        marker = serializer.validated_data["marker"]
        transaction.on_commit(lambda: record_execution.delay(marker))
        return Response({"marker": marker}, status=202)


@require_POST
def plain_post_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def plain_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("internal detail of a plain view")


urlpatterns = [
    path("api/test/validate", ValidateApi.as_view()),
    path("api/test/private", PrivateApi.as_view()),
    path("api/test/forbidden", ForbiddenApi.as_view()),
    path("api/test/domain-error", DomainErrorApi.as_view()),
    path("api/test/throttled", ThrottledApi.as_view()),
    path("api/test/crash", CrashApi.as_view()),
    path("api/test/database-down", DatabaseDownApi.as_view()),
    path("api/test/enqueue", EnqueueApi.as_view()),
    path("api/test/plain-post-only", plain_post_only),
    path("api/test/plain-crash", plain_crash),
    path("test/plain-crash", plain_crash),
    path("", include("config.urls")),
]

handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
