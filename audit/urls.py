"""The audit pages of the dashboard."""

from django.urls import URLPattern, path

from audit import views

urlpatterns: list[URLPattern] = [
    path("audit/", views.audit_page, name="audit"),
    path("audit/verify/", views.audit_verify_page, name="audit-verify"),
]
