from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks/endpoints", views.EndpointCollectionApi.as_view(), name="webhook-endpoints"),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>",
        views.EndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/rotate-secret",
        views.EndpointSecretRotateApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/ping",
        views.EndpointPingApi.as_view(),
        name="webhook-endpoint-ping",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/deliveries",
        views.DeliveryCollectionApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/resend",
        views.DeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
    path(
        "webhooks/event-types",
        views.EventTypeCollectionApi.as_view(),
        name="webhook-event-types",
    ),
]
