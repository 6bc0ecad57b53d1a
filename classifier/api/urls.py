from django.urls import path

from classifier.api import views

urlpatterns = [
    path("vehicle/classify", views.VehicleClassifyApi.as_view(), name="vehicle-classify"),
    path(
        "vehicle/classify-batch",
        views.VehicleClassifyBatchApi.as_view(),
        name="vehicle-classify-batch",
    ),
    path("vehicle/report", views.VehicleReportCreateApi.as_view(), name="vehicle-report-create"),
    path(
        "vehicle/report/<str:vehicle_id>",
        views.VehicleReportListApi.as_view(),
        name="vehicle-report-list",
    ),
    path("models/metadata", views.ModelsMetadataApi.as_view(), name="models-metadata"),
    path(
        "classifier/providers", views.ClassifierProvidersApi.as_view(), name="classifier-providers"
    ),
]
