"""The webhooks pages of the dashboard."""

from django.urls import URLPattern, path

from webhooks import views

urlpatterns: list[URLPattern] = [
    path("webhooks/", views.endpoints_page, name="webhooks"),
    path("webhooks/<uuid:endpoint_id>/", views.endpoint_page, name="webhook-endpoint"),
    path(
        "webhooks/<uuid:endpoint_id>/change/",
        views.endpoint_change_page,
        name="webhook-endpoint-change",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/rotate/",
        views.endpoint_rotate_page,
        name="webhook-endpoint-rotate",
    ),
    path("webhooks/<uuid:endpoint_id>/ping/", views.endpoint_ping_page, name="webhook-ping"),
    path(
        "webhooks/<uuid:endpoint_id>/delete/",
        views.endpoint_delete_page,
        name="webhook-endpoint-delete",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/resend/",
        views.delivery_resend_page,
        name="webhook-delivery-resend-page",
    ),
]
