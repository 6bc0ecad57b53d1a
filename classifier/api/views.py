"""The classifier API: classify now, one image or a batch; vehicle reports; the models and
the providers serving them."""

from __future__ import annotations

import re
import time
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz.decision_point import ANY_PRINCIPAL
from accounts.authz.permissions import principal_required
from accounts.ratelimits.limits import RateLimitRule
from classifier.api.serializers import (
    VEHICLE_ID_PATTERN,
    BatchAnswerSerializer,
    ClassificationSerializer,
    ClassifyBatchSerializer,
    ClassifySerializer,
    ModelsMetadataSerializer,
    ProvidersSerializer,
    ReportCreateSerializer,
    VehicleReportSerializer,
)
from classifier.selectors import (
    classification_get,
    models_metadata,
    providers_status,
    vehicle_reports_for,
)
from classifier.services import (
    MAX_BATCH_FILES,
    BatchOutcome,
    vehicle_classify,
    vehicle_classify_batch,
    vehicle_report_create,
    vehicle_reports_read,
)
from config.errors import InvalidInput, NotFound
from config.pagination import PageNumberPagination, paginated
from config.parsers import JSONParser, MultiPartParser
from images.selectors import image_get
from images.uploads import UploadSizeLimitMixin

_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
# A batch costs up to 32 classifications: half the tier's requests per minute, counted apart.
BATCH_RATE_LIMIT = RateLimitRule(group="classify-batch", share=0.5)


class VehicleClassifyApi(UploadSizeLimitMixin, APIView):
    """Classify one image now; the classification is kept, the image is not."""

    required_permission = "image:upload"
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=ClassifySerializer, responses=ClassificationSerializer, tags=["classifier"]
    )
    def post(self, request: Request) -> Response:
        data = ClassifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        classification = vehicle_classify(
            principal=principal_required(request), file=upload, filename=upload.name
        )
        return Response(ClassificationSerializer(classification).data)


def _batch_result(index: int, outcome: BatchOutcome) -> dict[str, Any]:
    head = {"index": index, "filename": outcome.filename}
    error = outcome.error
    if error is not None:
        title = error.title or "Invalid file"
        problem = {
            "status": error.status,
            "code": error.code,
            "title": title,
            "detail": error.detail,
        }
        return {**head, "error": problem}
    return {**head, **ClassificationSerializer(outcome.classification).data, "error": None}


class VehicleClassifyBatchApi(UploadSizeLimitMixin, APIView):
    """Classify 1 to 32 images in one pass; a refused file fails alone, with its reason."""

    required_permission = "image:upload"
    parser_classes = [MultiPartParser]
    max_upload_files = MAX_BATCH_FILES
    rate_limit = BATCH_RATE_LIMIT

    @extend_schema(
        request=ClassifyBatchSerializer, responses=BatchAnswerSerializer, tags=["classifier"]
    )
    def post(self, request: Request) -> Response:
        started = time.perf_counter()
        files = request.FILES.getlist("files")
        outcomes = vehicle_classify_batch(
            principal=principal_required(request),
            files=[(upload, upload.name or "") for upload in files],
        )
        results = [_batch_result(index, outcome) for index, outcome in enumerate(outcomes)]
        failed = sum(1 for outcome in outcomes if outcome.error is not None)
        return Response(
            {
                "results": results,
                "succeeded": len(outcomes) - failed,
                "failed": failed,
                "total_time_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )


class VehicleReportCreateApi(APIView):
    """File a report about a vehicle, citing a classification or an image of this organization."""

    required_permission = "image:upload"
    parser_classes = [JSONParser]

    @extend_schema(
        request=ReportCreateSerializer,
        responses={201: VehicleReportSerializer},
        tags=["classifier"],
    )
    def post(self, request: Request) -> Response:
        data = ReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        principal = principal_required(request)
        fields = data.validated_data
        org = principal.organization_id
        classification = image_id = None
        if fields.get("classification_id"):
            classification = classification_get(
                organization_id=org, classification_id=fields["classification_id"]
            )
        if fields.get("image_id"):
            image_id = image_get(organization_id=org, image_id=fields["image_id"]).id
        report = vehicle_report_create(
            principal=principal,
            vehicle_id=fields["vehicle_id"],
            data=fields["data"],
            classification=classification,
            image_id=image_id,
        )
        return Response(VehicleReportSerializer(report).data, status=201)


class VehicleReportListApi(APIView):
    """The organization's reports about one vehicle, newest first."""

    required_permission = "image:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("vehicle_id", str, OpenApiParameter.PATH, pattern=VEHICLE_ID_PATTERN)
        ],
        responses=paginated(VehicleReportSerializer),
        tags=["classifier"],
    )
    def get(self, request: Request, vehicle_id: str) -> Response:
        if not _VEHICLE_ID.fullmatch(vehicle_id):
            raise InvalidInput(
                "A vehicle id is 1 to 64 letters, digits, '_' or '-'.", field="vehicle_id"
            )
        principal = principal_required(request)
        reports = vehicle_reports_for(
            organization_id=principal.organization_id, vehicle_id=vehicle_id
        ).select_related("classification")
        if not reports.exists():
            raise NotFound(f"This organization has no reports about vehicle {vehicle_id}.")
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(reports, request, view=self) or []
        vehicle_reports_read(principal=principal, vehicle_id=vehicle_id, count=len(page))
        return paginator.get_paginated_response(VehicleReportSerializer(page, many=True).data)


class ModelsMetadataApi(APIView):
    """The models the classifier's providers serve."""

    required_permission = ANY_PRINCIPAL

    @extend_schema(responses=ModelsMetadataSerializer, tags=["classifier"])
    def get(self, request: Request) -> Response:
        return Response(models_metadata())


class ClassifierProvidersApi(APIView):
    """Each provider's health, and the order in which the chain tries them."""

    required_permission = "metrics:read"

    @extend_schema(responses=ProvidersSerializer, tags=["classifier"])
    def get(self, request: Request) -> Response:
        return Response(providers_status())
