"""Django admin for images and jobs: staff read them; deleting an image goes through the service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.request_context import bind_staff
from images.models import Image, Job
from images.services import image_delete


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the pipeline: staff read them, never edit them by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class JobInline(admin.TabularInline):
    model = Job
    extra = 0
    fields = ("kind", "status", "attempts", "created_at", "finished_at", "error_code")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "filename",
        "organization",
        "status",
        "label",
        "size_bytes",
        "uploaded_by_display",
    )
    list_filter = ("status", "label", "content_type")
    search_fields = ("id", "filename", "sha256", "uploaded_by_display", "organization__slug")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    inlines = (JobInline,)

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        bind_staff(request)
        image_delete(image=obj)  # audited, and its files go once the deletion commits

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        bind_staff(request)
        for image in queryset:
            image_delete(image=image)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "status",
        "organization",
        "image",
        "attempts",
        "error_code",
    )
    list_filter = ("status", "kind", "error_code")
    search_fields = ("id", "image__id", "image__filename", "request_id", "organization__slug")
    list_select_related = ("organization", "image")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a job goes with its image
