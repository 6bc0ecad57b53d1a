from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from classifier.models import Classification, VehicleReport


class RecordAdmin(admin.ModelAdmin):
    """What the classifier concluded is a record: admins read it and may delete it, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Classification)
class ClassificationAdmin(RecordAdmin):
    list_display = (
        "created_at",
        "organization",
        "top_label",
        "is_vehicle",
        "provider",
        "principal_display",
        "processing_time_ms",
    )
    list_filter = ("is_vehicle", "top_label", "provider")
    search_fields = ("id", "upload_sha256", "principal", "principal_display")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False


@admin.register(VehicleReport)
class VehicleReportAdmin(RecordAdmin):
    list_display = ("created_at", "organization", "vehicle_id", "reported_by_display")
    search_fields = ("vehicle_id", "reported_by_display")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
