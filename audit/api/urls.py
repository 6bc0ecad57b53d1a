from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit/events", views.AuditEventListApi.as_view(), name="audit-events"),
    path("audit/events/export", views.AuditEventExportApi.as_view(), name="audit-export"),
    path("orgs/current/metrics", views.OrganizationFiguresApi.as_view(), name="org-metrics"),
]
