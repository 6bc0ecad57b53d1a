from django.urls import path

from config.routes import operations
from webhooks.api import views

urlpatterns = [
    path(
        "webhooks/endpoints",
        operations(views.EndpointListApi, views.EndpointCreateApi),
        name="webhook-endpoints",
    ),
    path(
        "webhooks/endpoints/<uuid:endpoint_id>",
        operations(views.EndpointDetailApi, views.EndpointUpdateApi, views.EndpointDeleteApi),
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
