from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditCheckpoint, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit trail is evidence: admins read it, never edit it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "action", "outcome", "actor_display", "organization_display", "ip")
    list_filter = ("outcome", "actor_type", "action")
    search_fields = ("action", "actor_id", "actor_display", "resource_id", "request_id")
    date_hierarchy = "timestamp"
    ordering = ("-seq",)
    show_full_result_count = False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("chain", "position", "purged_events", "created_at")
