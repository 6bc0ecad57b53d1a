"""The audit API: the organization's events, newest first, and their streamed export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz.permissions import principal_required
from audit.api.serializers import (
    AuditEventFilterSerializer,
    AuditEventSerializer,
    AuditExportSerializer,
    FiguresQuerySerializer,
    OrganizationFiguresSerializer,
)
from audit.documents import event_document
from audit.selectors import audit_event_list, organization_figures
from config.pagination import SequenceCursorPagination, paginated
from config.spreadsheet_csv import csv_row

CSV_COLUMNS = (
    "id",
    "timestamp",
    "organization_id",
    "actor_type",
    "actor_id",
    "actor_display",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
    "user_agent",
    "request_id",
    "details",
    "hash",
    "prev_hash",
)


class AuditEventPagination(SequenceCursorPagination):
    ordering = "-seq"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _events(request: Request, serializer_class: type[AuditEventFilterSerializer]) -> Any:
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    organization_id = principal_required(request).organization_id
    return audit_event_list(organization_id=organization_id, filters=filters.validated_data), (
        filters.validated_data
    )


class AuditEventListApi(APIView):
    """The organization's audit events, newest first, cursor-paginated."""

    required_permission = "audit:read"

    @extend_schema(
        parameters=[AuditEventFilterSerializer],
        responses=paginated(AuditEventSerializer, cursor=True),
        tags=["audit"],
    )
    def get(self, request: Request) -> Response:
        events, _ = _events(request, AuditEventFilterSerializer)
        paginator = AuditEventPagination()
        page: list[Any] = paginator.paginate_queryset(events, request, view=self) or []
        return paginator.get_paginated_response(AuditEventSerializer(page, many=True).data)


def _jsonl(events: Any) -> Iterator[str]:
    for event in events.iterator(chunk_size=1000):
        yield json.dumps(event_document(event), separators=(",", ":")) + "\n"


def _csv(events: Any) -> Iterator[str]:
    yield csv_row(CSV_COLUMNS)
    for event in events.iterator(chunk_size=1000):
        row: dict[str, Any] = {column: getattr(event, column, "") for column in CSV_COLUMNS}
        row["timestamp"] = event.timestamp.isoformat().replace("+00:00", "Z")
        row["details"] = json.dumps(event.details, sort_keys=True)
        yield csv_row(row[column] for column in CSV_COLUMNS)


class ExportNegotiation(DefaultContentNegotiation):
    """`?format=` names the export's format here, not a DRF renderer."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class AuditEventExportApi(APIView):
    """Every matching event, streamed as JSON lines or CSV (never held in memory at once)."""

    required_permission = "audit:read"
    content_negotiation_class = ExportNegotiation

    @extend_schema(
        parameters=[AuditExportSerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
        },
        tags=["audit"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        events, filters = _events(request, AuditExportSerializer)
        kind = filters["format"]
        content_type = "application/x-ndjson" if kind == "jsonl" else "text/csv; charset=utf-8"
        rows = _jsonl(events) if kind == "jsonl" else _csv(events)
        response = StreamingHttpResponse(rows, content_type=content_type)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{kind}"'
        response["Cache-Control"] = "no-store"
        return response


class OrganizationFiguresApi(APIView):
    """The organization's own figures: its audit events per action and outcome in a window."""

    required_permission = "metrics:read"

    @extend_schema(
        parameters=[FiguresQuerySerializer], responses=OrganizationFiguresSerializer, tags=["audit"]
    )
    def get(self, request: Request) -> Response:
        query = FiguresQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        principal = principal_required(request)
        until = timezone.now()
        since = until - timedelta(hours=query.validated_data["hours"])
        events = organization_figures(organization_id=principal.organization_id, since=since)
        body = {
            "organization_id": principal.organization_id,
            "since": since,
            "until": until,
            "events": events,
        }
        response = Response(OrganizationFiguresSerializer(body).data)
        response["Cache-Control"] = "no-store"
        return response
